// grpc_cpp_server: the gRPC C++ (libgrpc++ 1.51, sync API) peer of the
// interop tests. Serves nprpc.interop.TestService (tests/interop/interop.proto)
// with every knob, and grpc.health.v1.Health.
//
//   grpc_cpp_server --port=0
//
// Prints "listening on 127.0.0.1:PORT" once it accepts (port 0 picks one),
// serves until SIGINT/SIGTERM. What the service does is the contract in
// interop.proto; python_server.py and nprpc_interop_server.cc do the same.
//
// Thread safety: gRPC runs the handlers on its own threads, any number at
// once; they share nothing but the const health table.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "proto/grpc/health/v1/health.grpc.pb.h"
#include "proto/grpc/health/v1/health.pb.h"
#include "tests/interop/interop.grpc.pb.h"
#include "tests/interop/interop.pb.h"

ABSL_FLAG(int, port, 0, "port to serve on, on 127.0.0.1 (0: any)");

// libgrpc's test-only view of a call, exported by Debian's libgrpc.so and
// used by gRPC's own interop tests (src/core/lib/surface/call_test_only.h):
// the flags of the last message received, where this bit means that it
// arrived compressed.
uint32_t grpc_call_test_only_get_message_flags(grpc_call* call);
constexpr uint32_t kMessageWasCompressed =
    0x40000000u;  // GRPC_WRITE_INTERNAL_TEST_ONLY_WAS_COMPRESSED

namespace {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;
using nprpc::interop::EchoStatus;
using nprpc::interop::Empty;
using nprpc::interop::ResponseParameters;
using nprpc::interop::SimpleRequest;
using nprpc::interop::SimpleResponse;
using nprpc::interop::StreamingInputCallRequest;
using nprpc::interop::StreamingInputCallResponse;
using nprpc::interop::StreamingOutputCallRequest;
using nprpc::interop::StreamingOutputCallResponse;

// Both peers and the clients agree on this (interop.proto): 4 MiB payloads
// travel in both directions, over gRPC's 4 MiB default.
constexpr int kMaxMessageBytes = 16 * 1024 * 1024;

// Echoes the request's "x-echo-initial*" metadata as initial metadata and its
// "x-echo-trailing*" metadata as trailing metadata (interop.proto's rule).
void EchoMetadata(grpc::ServerContext* context) {
  for (const auto& [key, value] : context->client_metadata()) {
    const std::string k(key.data(), key.size());
    const std::string v(value.data(), value.size());
    if (absl::StartsWith(k, "x-echo-initial")) context->AddInitialMetadata(k, v);
    if (absl::StartsWith(k, "x-echo-trailing")) context->AddTrailingMetadata(k, v);
  }
}

// "key=value" for each request metadata key that starts with "x-", sorted.
std::vector<std::string> SeenMetadata(const grpc::ServerContext* context) {
  std::vector<std::string> seen;
  for (const auto& [key, value] : context->client_metadata()) {
    if (key.starts_with("x-")) {
      seen.push_back(absl::StrCat(std::string(key.data(), key.size()), "=",
                                  std::string(value.data(), value.size())));
    }
  }
  std::sort(seen.begin(), seen.end());
  return seen;
}

// Sleeps `ms` milliseconds, or less when the call is cancelled first; false
// when it was.
bool SleepUnlessCancelled(grpc::ServerContext* context, int ms) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (std::chrono::steady_clock::now() < end) {
    if (context->IsCancelled()) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(ms, 5)));
  }
  return !context->IsCancelled();
}

grpc::Status StatusOf(const EchoStatus& status) {
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), status.message());
}

class TestServiceImpl final : public nprpc::interop::TestService::Service {
 public:
  grpc::Status EmptyCall(grpc::ServerContext* context, const Empty* request,
                         Empty* response) override {
    EchoMetadata(context);
    return grpc::Status::OK;
  }

  grpc::Status UnaryCall(grpc::ServerContext* context, const SimpleRequest* request,
                         SimpleResponse* response) override {
    EchoMetadata(context);
    if (request->sleep_ms() > 0 && !SleepUnlessCancelled(context, request->sleep_ms())) {
      return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled while sleeping");
    }
    if (request->expect_compressed() &&
        (grpc_call_test_only_get_message_flags(context->c_call()) & kMessageWasCompressed) == 0) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "the request was not compressed");
    }
    if (request->response_status().code() != 0) return StatusOf(request->response_status());
    if (request->compress_response()) context->set_compression_algorithm(GRPC_COMPRESS_GZIP);
    if (request->response_size() > 0) {
      response->set_payload(std::string(request->response_size(), '\0'));
    } else {
      response->set_payload(request->payload());
    }
    for (std::string& entry : SeenMetadata(context)) {
      response->add_seen_metadata(std::move(entry));
    }
    return grpc::Status::OK;
  }

  grpc::Status StreamingOutputCall(
      grpc::ServerContext* context, const StreamingOutputCallRequest* request,
      grpc::ServerWriter<StreamingOutputCallResponse>* writer) override {
    EchoMetadata(context);
    if (!Answer(context, *request, writer)) {
      return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
    }
    if (request->response_status().code() != 0) return StatusOf(request->response_status());
    return grpc::Status::OK;
  }

  grpc::Status StreamingInputCall(grpc::ServerContext* context,
                                  grpc::ServerReader<StreamingInputCallRequest>* reader,
                                  StreamingInputCallResponse* response) override {
    EchoMetadata(context);
    StreamingInputCallRequest request;
    int64_t bytes = 0;
    int count = 0;
    while (reader->Read(&request)) {
      bytes += static_cast<int64_t>(request.payload().size());
      ++count;
    }
    if (context->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
    response->set_aggregated_payload_size(static_cast<int32_t>(bytes));
    response->set_message_count(count);
    return grpc::Status::OK;
  }

  grpc::Status FullDuplexCall(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<StreamingOutputCallResponse, StreamingOutputCallRequest>* stream)
      override {
    EchoMetadata(context);
    StreamingOutputCallRequest request;
    while (stream->Read(&request)) {
      if (!Answer(context, request, stream)) {
        return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
      }
      if (request.response_status().code() != 0) return StatusOf(request.response_status());
    }
    return grpc::Status::OK;
  }

 private:
  // Writes one response per response_parameters entry; false when the call
  // went away.
  template <typename Writer>
  static bool Answer(grpc::ServerContext* context, const StreamingOutputCallRequest& request,
                     Writer* writer) {
    for (const ResponseParameters& parameters : request.response_parameters()) {
      if (parameters.interval_ms() > 0 &&
          !SleepUnlessCancelled(context, parameters.interval_ms())) {
        return false;
      }
      StreamingOutputCallResponse response;
      response.set_payload(std::string(parameters.size(), '\0'));
      if (!writer->Write(response)) return false;
    }
    return true;
  }
};

// grpc.health.v1.Health: the server ("") and TestService are SERVING; any
// other service is unknown.
class HealthImpl final : public grpc::health::v1::Health::Service {
 public:
  grpc::Status Check(grpc::ServerContext* context, const HealthCheckRequest* request,
                     HealthCheckResponse* response) override {
    if (!Known(request->service())) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown service");
    }
    response->set_status(HealthCheckResponse::SERVING);
    return grpc::Status::OK;
  }

  grpc::Status Watch(grpc::ServerContext* context, const HealthCheckRequest* request,
                     grpc::ServerWriter<HealthCheckResponse>* writer) override {
    HealthCheckResponse response;
    response.set_status(Known(request->service()) ? HealthCheckResponse::SERVING
                                                  : HealthCheckResponse::SERVICE_UNKNOWN);
    if (!writer->Write(response)) return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
    // The status never changes: wait for the client to go away.
    while (!context->IsCancelled()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
  }

 private:
  static bool Known(const std::string& service) {
    return service.empty() || service == "nprpc.interop.TestService";
  }
};

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  // Wait for the stop signals synchronously on this thread; blocked before
  // gRPC starts its threads so that they inherit the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  TestServiceImpl test_service;
  HealthImpl health;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(absl::StrCat("127.0.0.1:", absl::GetFlag(FLAGS_port)),
                           grpc::InsecureServerCredentials(), &port);
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder.SetMaxSendMessageSize(kMaxMessageBytes);
  builder.RegisterService(&test_service);
  builder.RegisterService(&health);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::cerr << "cannot serve on port " << absl::GetFlag(FLAGS_port) << "\n";
    return 1;
  }
  std::cout << "listening on 127.0.0.1:" << port << std::endl;

  int sig = 0;
  sigwait(&signals, &sig);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  return 0;
}
