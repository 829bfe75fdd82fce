// nprpc_interop_server: nprpc's server of the interop tests. Serves
// nprpc.interop.TestService (tests/interop/interop.proto) over every protocol
// the port speaks (gRPC included). Until the code generator writes streaming
// service bases, the methods are registered through rpc/service.h's
// MethodHandler, with blocking readers and writers over ServerStreamCore
// shaped like the generated ones (Read/Write), so the handlers stay as they
// will be.
//
//   nprpc_interop_server --port=0
//
// Prints "listening on 127.0.0.1:PORT" once it accepts (port 0 picks one),
// serves until SIGINT/SIGTERM. It behaves as grpc_cpp_server.cc and
// python_server.py do (the contract is in interop.proto), so gRPC's own
// clients (grpc_cpp_client, python_client.py) check it.
//
// Thread safety: the handlers run where the server runs blocking handlers,
// many at once; they share nothing.
#include <signal.h>

#include <algorithm>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "netpoll/mutex.h"
#include "rpc/server.h"
#include "rpc/server_context.h"
#include "rpc/service.h"
#include "rpc/stream_core.h"
#include "tests/interop/interop.pb.h"

ABSL_FLAG(int, port, 0, "port to serve on, on 127.0.0.1 (0: any)");

namespace {

using nprpc::ServerContext;
using nprpc::interop::EchoStatus;
using nprpc::interop::Empty;
using nprpc::interop::ResponseParameters;
using nprpc::interop::SimpleRequest;
using nprpc::interop::SimpleResponse;
using nprpc::interop::StreamingInputCallRequest;
using nprpc::interop::StreamingInputCallResponse;
using nprpc::interop::StreamingOutputCallRequest;
using nprpc::interop::StreamingOutputCallResponse;

// interop.proto: 4 MiB payloads travel both ways.
constexpr size_t kMaxMessageBytes = size_t{16} << 20;

// A streaming call's end as a sync handler sees it: Read() and Write() block
// until the stream's callback ran. One Read and one Write at a time.
class BlockingStream {
 public:
  explicit BlockingStream(nprpc::ServerStreamCore* core) : core_(core) {}

  bool Read(google::protobuf::Message* message) {
    return Wait([&](nprpc::StreamCallback done) { core_->Read(message, std::move(done)); });
  }
  bool Write(const google::protobuf::Message& message) {
    return Wait([&](nprpc::StreamCallback done) { core_->Write(message, std::move(done)); });
  }

 private:
  template <typename Start>
  static bool Wait(Start start) {
    struct Result {
      netpoll::Notification done;
      bool ok = false;
    };
    auto result = std::make_shared<Result>();
    start([result](bool ok) {
      result->ok = ok;
      result->done.Notify();
    });
    result->done.WaitForNotification();
    return result->ok;
  }

  nprpc::ServerStreamCore* const core_;
};

// A streaming method run by a blocking function of the call's context and
// stream, on the worker pool; its status finishes the call.
class BlockingStreamHandler final : public nprpc::MethodHandler {
 public:
  using Body = std::function<absl::Status(ServerContext&, BlockingStream&)>;
  BlockingStreamHandler(nprpc::StreamKind kind, const google::protobuf::Message* request,
                        const google::protobuf::Message* response, Body body)
      : kind_(kind), request_(request), response_(response), body_(std::move(body)) {}

  std::unique_ptr<google::protobuf::Message> NewRequest() const override {
    return std::unique_ptr<google::protobuf::Message>(request_->New());
  }
  std::unique_ptr<google::protobuf::Message> NewResponse() const override {
    return std::unique_ptr<google::protobuf::Message>(response_->New());
  }
  void Call(ServerContext& context, const google::protobuf::Message& request,
            google::protobuf::Message* response, nprpc::Responder done) override {
    done(absl::InternalError("a streaming method called as unary"));
  }
  nprpc::StreamKind stream_kind() const override { return kind_; }
  void CallStream(std::shared_ptr<nprpc::ServerStreamCore> core) override {
    BlockingStream stream(core.get());
    core->Finish(body_(core->context(), stream));
  }

 private:
  const nprpc::StreamKind kind_;
  const google::protobuf::Message* const request_;   // prototype, not owned
  const google::protobuf::Message* const response_;  // prototype, not owned
  const Body body_;
};

// Echoes the request's "x-echo-initial*" metadata as initial metadata and its
// "x-echo-trailing*" metadata as trailing metadata (interop.proto's rule).
void EchoMetadata(ServerContext& context) {
  for (const auto& [key, value] : context.request_user_fields()) {
    if (absl::StartsWith(key, "x-echo-initial")) context.response_user_fields()[key] = value;
    if (absl::StartsWith(key, "x-echo-trailing")) context.response_trailers()[key] = value;
  }
}

// Sleeps `duration`, or less when the call is cancelled first; false when it
// was.
bool SleepUnlessCancelled(ServerContext& context, absl::Duration duration) {
  auto cancelled = std::make_shared<netpoll::Notification>();
  context.OnCancel([cancelled] { cancelled->Notify(); });
  return !cancelled->WaitForNotificationWithTimeout(duration);
}

absl::Status StatusOf(const EchoStatus& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.code()), status.message());
}

// Writes one response per response_parameters entry; false when the call
// went away.
template <typename Writer>
bool Answer(ServerContext& context, const StreamingOutputCallRequest& request, Writer* writer) {
  for (const ResponseParameters& parameters : request.response_parameters()) {
    if (parameters.interval_ms() > 0 &&
        !SleepUnlessCancelled(context, absl::Milliseconds(parameters.interval_ms()))) {
      return false;
    }
    StreamingOutputCallResponse response;
    response.set_payload(std::string(parameters.size(), '\0'));
    if (!writer->Write(response)) return false;
  }
  return true;
}

// The handlers, as the generated sync base will call them.
class TestServiceImpl final {
 public:
  absl::Status EmptyCall(ServerContext& context, const Empty& request, Empty* response) {
    EchoMetadata(context);
    return absl::OkStatus();
  }

  absl::Status UnaryCall(ServerContext& context, const SimpleRequest& request,
                         SimpleResponse* response) {
    EchoMetadata(context);
    if (request.sleep_ms() > 0 &&
        !SleepUnlessCancelled(context, absl::Milliseconds(request.sleep_ms()))) {
      return absl::CancelledError("cancelled while sleeping");
    }
    if (request.response_status().code() != 0) return StatusOf(request.response_status());
    if (request.compress_response()) context.set_response_compress_type(nprpc::CompressType::kGzip);
    if (request.response_size() > 0) {
      response->set_payload(std::string(request.response_size(), '\0'));
    } else {
      response->set_payload(request.payload());
    }
    std::vector<std::string> seen;
    for (const auto& [key, value] : context.request_user_fields()) {
      if (absl::StartsWith(key, "x-")) seen.push_back(absl::StrCat(key, "=", value));
    }
    std::sort(seen.begin(), seen.end());
    for (std::string& entry : seen) response->add_seen_metadata(std::move(entry));
    return absl::OkStatus();
  }

  absl::Status StreamingOutputCall(ServerContext& context,
                                   const StreamingOutputCallRequest& request,
                                   BlockingStream* writer) {
    EchoMetadata(context);
    if (!Answer(context, request, writer)) return absl::CancelledError("cancelled");
    if (request.response_status().code() != 0) return StatusOf(request.response_status());
    return absl::OkStatus();
  }

  absl::Status StreamingInputCall(ServerContext& context, BlockingStream* reader,
                                  StreamingInputCallResponse* response) {
    EchoMetadata(context);
    StreamingInputCallRequest request;
    int64_t bytes = 0;
    int count = 0;
    while (reader->Read(&request)) {
      bytes += static_cast<int64_t>(request.payload().size());
      ++count;
    }
    if (context.IsCancelled()) return absl::CancelledError("cancelled");
    response->set_aggregated_payload_size(static_cast<int32_t>(bytes));
    response->set_message_count(count);
    return absl::OkStatus();
  }

  absl::Status FullDuplexCall(ServerContext& context, BlockingStream* stream) {
    EchoMetadata(context);
    StreamingOutputCallRequest request;
    while (stream->Read(&request)) {
      if (!Answer(context, request, stream)) return absl::CancelledError("cancelled");
      if (request.response_status().code() != 0) return StatusOf(request.response_status());
    }
    return absl::OkStatus();
  }
};

// TestService over `impl` (not owned; outlives the service).
absl::StatusOr<std::unique_ptr<nprpc::Service>> NewTestService(TestServiceImpl* impl) {
  const google::protobuf::ServiceDescriptor* descriptor =
      nprpc::interop::Empty::descriptor()->file()->FindServiceByName("TestService");
  auto service = std::make_unique<nprpc::Service>(descriptor);
  absl::Status status = service->AddMethod(
      "EmptyCall", nprpc::TypedUnary<Empty, Empty>(
                       [impl](ServerContext& context, const Empty& request, Empty* response) {
                         return impl->EmptyCall(context, request, response);
                       }));
  if (!status.ok()) return status;
  status = service->AddMethod(
      "UnaryCall",
      nprpc::TypedUnary<SimpleRequest, SimpleResponse>(
          [impl](ServerContext& context, const SimpleRequest& request, SimpleResponse* response) {
            return impl->UnaryCall(context, request, response);
          }));
  if (!status.ok()) return status;
  status = service->AddMethod(
      "StreamingOutputCall",
      std::make_unique<BlockingStreamHandler>(
          nprpc::StreamKind::kServerStreaming, &StreamingOutputCallRequest::default_instance(),
          &StreamingOutputCallResponse::default_instance(),
          [impl](ServerContext& context, BlockingStream& stream) {
            StreamingOutputCallRequest request;
            if (!stream.Read(&request)) return absl::InternalError("no request");
            return impl->StreamingOutputCall(context, request, &stream);
          }));
  if (!status.ok()) return status;
  status = service->AddMethod(
      "StreamingInputCall",
      std::make_unique<BlockingStreamHandler>(
          nprpc::StreamKind::kClientStreaming, &StreamingInputCallRequest::default_instance(),
          &StreamingInputCallResponse::default_instance(),
          [impl](ServerContext& context, BlockingStream& stream) {
            StreamingInputCallResponse response;
            absl::Status result = impl->StreamingInputCall(context, &stream, &response);
            if (result.ok() && !stream.Write(response)) {
              return absl::CancelledError("cancelled");
            }
            return result;
          }));
  if (!status.ok()) return status;
  status = service->AddMethod(
      "FullDuplexCall",
      std::make_unique<BlockingStreamHandler>(
          nprpc::StreamKind::kBidiStreaming, &StreamingOutputCallRequest::default_instance(),
          &StreamingOutputCallResponse::default_instance(),
          [impl](ServerContext& context, BlockingStream& stream) {
            return impl->FullDuplexCall(context, &stream);
          }));
  if (!status.ok()) return status;
  return service;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  // Wait for the stop signals synchronously on this thread; blocked before
  // the server starts its threads so that they inherit the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  nprpc::ServerOptions options;
  options.grpc_max_receive_message_size = kMaxMessageBytes;
  TestServiceImpl impl;
  absl::StatusOr<std::unique_ptr<nprpc::Service>> test_service = NewTestService(&impl);
  if (!test_service.ok()) {
    std::cerr << "cannot make TestService: " << test_service.status() << std::endl;
    return 1;
  }
  nprpc::Server server(options);
  absl::Status status = server.AddService(std::move(*test_service));
  if (status.ok()) status = server.Start(absl::StrCat("127.0.0.1:", absl::GetFlag(FLAGS_port)));
  if (!status.ok()) {
    std::cerr << "cannot serve: " << status << std::endl;
    return 1;
  }
  std::cout << "listening on " << server.listen_address().ToString() << std::endl;

  int sig = 0;
  sigwait(&signals, &sig);
  server.Shutdown(absl::Seconds(1));
  return 0;
}
