// nprpc_interop_client: nprpc's client of the interop tests. Runs named cases
// over a Channel with protocol "grpc", through the generated sync stubs,
// against a server of nprpc.interop.TestService
// (tests/interop/interop.proto); health_check calls grpc.health.v1.Health
// through Channel::CallMethod.
//
//   nprpc_interop_client --target=127.0.0.1:PORT --cases=empty_unary,ping_pong
//   PASS empty_unary
//   FAIL ping_pong: response 2: payload of 8 bytes, want 9
//
// The same cases, names and output as grpc_cpp_client.cc and
// python_client.py, so gRPC's own servers (grpc_cpp_server,
// python_server.py) check it. Exits 0 when every case passed, 1 otherwise
// (2 for bad flags).
//
// Thread safety: single-threaded (the channel's loops run the I/O).
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
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "proto/grpc/health/v1/health.pb.h"
#include "rpc/call_options.h"
#include "rpc/channel.h"
#include "tests/interop/interop.nprpc.h"
#include "tests/interop/interop.pb.h"

ABSL_FLAG(std::string, target, "", "server address, host:port");
ABSL_FLAG(std::string, cases, "", "comma-separated case names (empty: all)");

namespace {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;
using nprpc::CallOptions;
using nprpc::interop::Empty;
using nprpc::interop::SimpleRequest;
using nprpc::interop::SimpleResponse;
using nprpc::interop::StreamingInputCallRequest;
using nprpc::interop::StreamingInputCallResponse;
using nprpc::interop::StreamingOutputCallRequest;
using nprpc::interop::StreamingOutputCallResponse;
using nprpc::interop::TestService;
using nprpc::interop::UnimplementedService;
using Metadata = std::vector<std::pair<std::string, std::string>>;

constexpr size_t kMaxMessageBytes = size_t{16} << 20;
constexpr int kLargeBytes = 4 * 1024 * 1024;
// Every call's deadline unless the case sets its own: no case hangs.
constexpr absl::Duration kCallTimeout = absl::Seconds(20);
const std::vector<int> kRequestSizes = {27182, 8, 1828, 45904};
const std::vector<int> kResponseSizes = {31415, 9, 2653, 58979};
const char kSpecialMessage[] =
    "\t\ntest with whitespace\r\nand Unicode BMP \xe2\x98\xba and non-BMP \xf0\x9f\x98\x88\t\n"
    "100% done";

struct Peers {
  nprpc::Channel* channel;
  std::unique_ptr<TestService::Stub> test;
  std::unique_ptr<UnimplementedService::Stub> unimplemented;
};

CallOptions Options() {
  CallOptions options;
  options.timeout = kCallTimeout;
  return options;
}

std::string Describe(const absl::Status& status) {
  return absl::StrCat("status ", static_cast<int>(status.code()), " \"",
                      absl::CEscape(status.message()), "\"");
}

absl::Status ExpectOk(const absl::Status& status, const std::string& what) {
  if (status.ok()) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(what, ": ", Describe(status)));
}

absl::Status ExpectCode(const absl::Status& status, absl::StatusCode code,
                        const std::string& what) {
  if (status.code() == code) return absl::OkStatus();
  return absl::InternalError(
      absl::StrCat(what, ": ", Describe(status), ", want code ", static_cast<int>(code)));
}

absl::Status ExpectPayloadSize(const std::string& payload, int size, const std::string& what) {
  if (static_cast<int>(payload.size()) == size) return absl::OkStatus();
  return absl::InternalError(
      absl::StrCat(what, ": payload of ", payload.size(), " bytes, want ", size));
}

#define RETURN_IF_ERROR(expr)          \
  do {                                 \
    absl::Status status_ = (expr);     \
    if (!status_.ok()) return status_; \
  } while (false)

std::string Pattern(int size) {
  std::string payload(size, '\0');
  for (int i = 0; i < size; ++i) payload[i] = static_cast<char>('a' + i % 26);
  return payload;
}

StreamingOutputCallRequest OneResponseOf(int size) {
  StreamingOutputCallRequest request;
  request.add_response_parameters()->set_size(size);
  request.set_payload(std::string(size, '\0'));
  return request;
}

absl::Status EmptyUnary(Peers& peers) {
  return ExpectOk(peers.test->EmptyCall(Empty(), Options()).status(), "EmptyCall");
}

absl::Status LargeUnary(Peers& peers) {
  SimpleRequest request;
  request.set_payload(Pattern(kLargeBytes));
  absl::StatusOr<SimpleResponse> response = peers.test->UnaryCall(request, Options());
  RETURN_IF_ERROR(ExpectOk(response.status(), "echo"));
  if (response->payload() != request.payload()) {
    return absl::InternalError(
        absl::StrCat("echo: payload of ", response->payload().size(), " bytes differs"));
  }
  request.Clear();
  request.set_response_size(kLargeBytes);
  request.set_payload(std::string(271828, '\0'));
  response = peers.test->UnaryCall(request, Options());
  RETURN_IF_ERROR(ExpectOk(response.status(), "response_size"));
  return ExpectPayloadSize(response->payload(), kLargeBytes, "response_size");
}

absl::Status ClientStreaming(Peers& peers) {
  for (bool empty : {false, true}) {
    const std::string what = empty ? "empty stream" : "stream";
    StreamingInputCallResponse response;
    auto writer = peers.test->StreamingInputCall(&response, Options());
    int total = 0;
    int count = 0;
    if (!empty) {
      for (int size : kRequestSizes) {
        StreamingInputCallRequest request;
        request.set_payload(std::string(size, '\0'));
        if (!writer->Write(request)) {
          return absl::InternalError(
              absl::StrCat(what, ": write failed, ", Describe(writer->Finish())));
        }
        total += size;
        ++count;
      }
    }
    writer->WritesDone();
    RETURN_IF_ERROR(ExpectOk(writer->Finish(), what));
    if (response.aggregated_payload_size() != total || response.message_count() != count) {
      return absl::InternalError(absl::StrCat(what, ": server counted ", response.message_count(),
                                              " messages of ", response.aggregated_payload_size(),
                                              " bytes, want ", count, " of ", total));
    }
  }
  return absl::OkStatus();
}

absl::Status ServerStreaming(Peers& peers) {
  for (bool empty : {false, true}) {
    const std::string what = empty ? "zero responses" : "stream";
    StreamingOutputCallRequest request;
    const std::vector<int> sizes = empty ? std::vector<int>() : kResponseSizes;
    for (int size : sizes) request.add_response_parameters()->set_size(size);
    auto reader = peers.test->StreamingOutputCall(request, Options());
    StreamingOutputCallResponse response;
    size_t received = 0;
    while (reader->Read(&response)) {
      if (received >= sizes.size()) return absl::InternalError(what + ": too many responses");
      RETURN_IF_ERROR(ExpectPayloadSize(response.payload(), sizes[received],
                                        absl::StrCat(what, ": response ", received)));
      ++received;
    }
    RETURN_IF_ERROR(ExpectOk(reader->Finish(), what));
    if (received != sizes.size()) {
      return absl::InternalError(
          absl::StrCat(what, ": ", received, " responses, want ", sizes.size()));
    }
  }
  return absl::OkStatus();
}

absl::Status PingPong(Peers& peers) {
  auto stream = peers.test->FullDuplexCall(Options());
  for (size_t i = 0; i < kResponseSizes.size(); ++i) {
    StreamingOutputCallRequest request = OneResponseOf(kResponseSizes[i]);
    request.set_payload(std::string(kRequestSizes[i], '\0'));
    if (!stream->Write(request)) {
      return absl::InternalError(
          absl::StrCat("write ", i, " failed: ", Describe(stream->Finish())));
    }
    StreamingOutputCallResponse response;
    if (!stream->Read(&response)) {
      return absl::InternalError(absl::StrCat("no response ", i, ": ", Describe(stream->Finish())));
    }
    RETURN_IF_ERROR(
        ExpectPayloadSize(response.payload(), kResponseSizes[i], absl::StrCat("response ", i)));
  }
  stream->WritesDone();
  StreamingOutputCallResponse extra;
  if (stream->Read(&extra)) return absl::InternalError("a response after the last ping");
  return ExpectOk(stream->Finish(), "finish");
}

absl::Status EmptyStream(Peers& peers) {
  auto stream = peers.test->FullDuplexCall(Options());
  stream->WritesDone();
  StreamingOutputCallResponse response;
  if (stream->Read(&response)) return absl::InternalError("a response to no request");
  return ExpectOk(stream->Finish(), "finish");
}

const Metadata& CustomMetadata() {
  static const auto* metadata = new Metadata{
      {"x-echo-initial", "test_initial_metadata_value"},
      {"x-echo-initial-bin", std::string("\x00\x01\xfe\xff", 4)},
      {"x-echo-trailing", "test_trailing_metadata_value"},
      {"x-echo-trailing-bin", std::string("\x0a\x0b\x0a\x0b\x0a\x0b", 6)},
      {"x-seen-only", "seen"},
  };
  return *metadata;
}

absl::Status ExpectMetadata(const Metadata& metadata, const std::string& key,
                            const std::string& value, const std::string& where) {
  auto it = std::find_if(metadata.begin(), metadata.end(),
                         [&key](const auto& entry) { return entry.first == key; });
  if (it == metadata.end()) return absl::InternalError(absl::StrCat("no ", key, " in ", where));
  if (it->second != value) {
    return absl::InternalError(absl::StrCat(key, " in ", where, " is \"", absl::CEscape(it->second),
                                            "\", want \"", absl::CEscape(value), "\""));
  }
  return absl::OkStatus();
}

// Every echoed key is in `initial` or `trailing` as interop.proto says.
absl::Status ExpectEchoed(const Metadata& initial, const Metadata& trailing,
                          const std::string& where) {
  for (const auto& entry : CustomMetadata()) {
    if (absl::StartsWith(entry.first, "x-echo-initial")) {
      RETURN_IF_ERROR(
          ExpectMetadata(initial, entry.first, entry.second, where + " initial metadata"));
    }
    if (absl::StartsWith(entry.first, "x-echo-trailing")) {
      RETURN_IF_ERROR(
          ExpectMetadata(trailing, entry.first, entry.second, where + " trailing metadata"));
    }
  }
  return absl::OkStatus();
}

absl::Status CustomMetadataCase(Peers& peers) {
  {  // Unary: CallInfo has headers and trailers in one list.
    CallOptions options = Options();
    options.metadata = CustomMetadata();
    nprpc::CallInfo info;
    options.info = &info;
    SimpleRequest request;
    request.set_payload("hi");
    absl::StatusOr<SimpleResponse> response = peers.test->UnaryCall(request, options);
    RETURN_IF_ERROR(ExpectOk(response.status(), "UnaryCall"));
    RETURN_IF_ERROR(ExpectEchoed(info.response_metadata, info.response_metadata, "UnaryCall"));
    for (const auto& [key, value] : CustomMetadata()) {
      const std::string want = absl::StrCat(key, "=", value);
      if (std::find(response->seen_metadata().begin(), response->seen_metadata().end(), want) ==
          response->seen_metadata().end()) {
        return absl::InternalError(
            absl::StrCat("server did not see ", absl::CEscape(want), "; saw ",
                         absl::CEscape(absl::StrJoin(response->seen_metadata(), ", "))));
      }
    }
  }
  // Bidirectional streaming: headers and trailers apart.
  CallOptions options = Options();
  options.metadata = CustomMetadata();
  auto stream = peers.test->FullDuplexCall(options);
  if (!stream->Write(OneResponseOf(10))) return absl::InternalError("FullDuplexCall write failed");
  StreamingOutputCallResponse response;
  if (!stream->Read(&response)) return absl::InternalError("FullDuplexCall: no response");
  stream->WritesDone();
  while (stream->Read(&response)) {
  }
  RETURN_IF_ERROR(ExpectOk(stream->Finish(), "FullDuplexCall"));
  return ExpectEchoed(stream->initial_metadata(), stream->trailing_metadata(), "FullDuplexCall");
}

absl::Status ExpectStatus(const absl::Status& status, int code, const std::string& message,
                          const std::string& what) {
  if (static_cast<int>(status.code()) != code || status.message() != message) {
    return absl::InternalError(absl::StrCat(what, ": ", Describe(status), ", want ", code, " \"",
                                            absl::CEscape(message), "\""));
  }
  return absl::OkStatus();
}

absl::Status UnaryWithStatus(Peers& peers, int code, const std::string& message) {
  SimpleRequest request;
  request.mutable_response_status()->set_code(code);
  request.mutable_response_status()->set_message(message);
  return ExpectStatus(peers.test->UnaryCall(request, Options()).status(), code, message,
                      absl::StrCat("UnaryCall code ", code));
}

absl::Status StatusCodeAndMessage(Peers& peers) {
  for (int code = 1; code <= 16; ++code) {
    RETURN_IF_ERROR(UnaryWithStatus(peers, code,
                                    absl::StrCat("status ", code,
                                                 " \xc3\xbcnic\xc3\xb8"
                                                 "de")));
  }
  auto stream = peers.test->FullDuplexCall(Options());
  StreamingOutputCallRequest request;
  request.mutable_response_status()->set_code(2);
  request.mutable_response_status()->set_message("test status message");
  stream->Write(request);  // the status comes from Finish either way
  stream->WritesDone();
  StreamingOutputCallResponse response;
  while (stream->Read(&response)) {
  }
  return ExpectStatus(stream->Finish(), 2, "test status message", "FullDuplexCall");
}

absl::Status SpecialStatusMessage(Peers& peers) {
  return UnaryWithStatus(peers, 2, kSpecialMessage);
}

absl::Status UnimplementedMethod(Peers& peers) {
  return ExpectCode(peers.test->UnimplementedCall(Empty(), Options()).status(),
                    absl::StatusCode::kUnimplemented, "TestService/UnimplementedCall");
}

absl::Status UnimplementedServiceCase(Peers& peers) {
  return ExpectCode(peers.unimplemented->UnimplementedCall(Empty(), Options()).status(),
                    absl::StatusCode::kUnimplemented, "UnimplementedService/UnimplementedCall");
}

absl::Status TimeoutOnSleepingServer(Peers& peers) {
  CallOptions options;
  options.timeout = absl::Milliseconds(200);
  SimpleRequest request;
  request.set_sleep_ms(10000);
  const absl::Time start = absl::Now();
  RETURN_IF_ERROR(ExpectCode(peers.test->UnaryCall(request, options).status(),
                             absl::StatusCode::kDeadlineExceeded, "UnaryCall sleeping 10 s"));
  if (absl::Now() - start > absl::Seconds(5)) {
    return absl::InternalError("the deadline was only noticed when the server answered");
  }
  return absl::OkStatus();
}

absl::Status CancelAfterBegin(Peers& peers) {
  StreamingInputCallResponse response;
  auto writer = peers.test->StreamingInputCall(&response, Options());
  writer->Cancel();
  return ExpectCode(writer->Finish(), absl::StatusCode::kCancelled, "StreamingInputCall");
}

absl::Status CancelAfterFirstResponse(Peers& peers) {
  auto stream = peers.test->FullDuplexCall(Options());
  if (!stream->Write(OneResponseOf(31415))) return absl::InternalError("write failed");
  StreamingOutputCallResponse response;
  if (!stream->Read(&response)) return absl::InternalError("no first response");
  stream->Cancel();
  while (stream->Read(&response)) {
  }
  return ExpectCode(stream->Finish(), absl::StatusCode::kCancelled, "FullDuplexCall");
}

absl::Status ClientCompressedUnary(Peers& peers) {
  CallOptions options = Options();
  options.compress_type = nprpc::CompressType::kGzip;
  SimpleRequest request;
  request.set_payload(Pattern(256 * 1024));
  request.set_expect_compressed(true);
  absl::StatusOr<SimpleResponse> response = peers.test->UnaryCall(request, options);
  RETURN_IF_ERROR(ExpectOk(response.status(), "UnaryCall"));
  if (response->payload() != request.payload()) {
    return absl::InternalError("the echoed payload differs");
  }
  return absl::OkStatus();
}

absl::Status ServerCompressedUnary(Peers& peers) {
  SimpleRequest request;
  request.set_response_size(256 * 1024);
  request.set_compress_response(true);
  absl::StatusOr<SimpleResponse> response = peers.test->UnaryCall(request, Options());
  RETURN_IF_ERROR(ExpectOk(response.status(), "UnaryCall"));
  return ExpectPayloadSize(response->payload(), 256 * 1024, "UnaryCall");
}

absl::Status HealthCheck(Peers& peers) {
  for (const char* service : {"", "nprpc.interop.TestService"}) {
    HealthCheckRequest request;
    request.set_service(service);
    HealthCheckResponse response;
    RETURN_IF_ERROR(ExpectOk(
        peers.channel->CallMethod("grpc.health.v1.Health", "Check", request, &response, Options()),
        absl::StrCat("Check \"", service, "\"")));
    if (response.status() != HealthCheckResponse::SERVING) {
      return absl::InternalError(
          absl::StrCat("Check \"", service, "\": status ", response.status(), ", want SERVING"));
    }
  }
  HealthCheckRequest request;
  request.set_service("no.such.Service");
  HealthCheckResponse response;
  return ExpectCode(
      peers.channel->CallMethod("grpc.health.v1.Health", "Check", request, &response, Options()),
      absl::StatusCode::kNotFound, "Check \"no.such.Service\"");
}

using Case = std::function<absl::Status(Peers&)>;

const std::vector<std::pair<std::string, Case>>& Cases() {
  static const auto* cases = new std::vector<std::pair<std::string, Case>>{
      {"empty_unary", EmptyUnary},
      {"large_unary", LargeUnary},
      {"client_streaming", ClientStreaming},
      {"server_streaming", ServerStreaming},
      {"ping_pong", PingPong},
      {"empty_stream", EmptyStream},
      {"custom_metadata", CustomMetadataCase},
      {"status_code_and_message", StatusCodeAndMessage},
      {"special_status_message", SpecialStatusMessage},
      {"unimplemented_method", UnimplementedMethod},
      {"unimplemented_service", UnimplementedServiceCase},
      {"timeout_on_sleeping_server", TimeoutOnSleepingServer},
      {"cancel_after_begin", CancelAfterBegin},
      {"cancel_after_first_response", CancelAfterFirstResponse},
      {"client_compressed_unary", ClientCompressedUnary},
      {"server_compressed_unary", ServerCompressedUnary},
      {"health_check", HealthCheck},
  };
  return *cases;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string target = absl::GetFlag(FLAGS_target);
  if (target.empty()) {
    std::cerr << "--target is required\n";
    return 2;
  }
  std::vector<std::string> names;
  if (absl::GetFlag(FLAGS_cases).empty()) {
    for (const auto& entry : Cases()) names.push_back(entry.first);
  } else {
    names = absl::StrSplit(absl::GetFlag(FLAGS_cases), ',', absl::SkipEmpty());
  }

  nprpc::ChannelOptions options;
  options.protocol = "grpc";
  options.max_receive_message_size = kMaxMessageBytes;
  // The cases check what one call does: no retries, no hedging.
  options.retry.max_retries = 0;
  absl::StatusOr<std::unique_ptr<nprpc::Channel>> channel = nprpc::Channel::Create(target, options);
  if (!channel.ok()) {
    std::cerr << "cannot create a channel to " << target << ": " << channel.status() << "\n";
    return 2;
  }
  Peers peers{
      .channel = channel->get(),
      .test = TestService::NewStub(channel->get()),
      .unimplemented = UnimplementedService::NewStub(channel->get()),
  };

  int failed = 0;
  for (const std::string& name : names) {
    auto it = std::find_if(Cases().begin(), Cases().end(),
                           [&name](const auto& entry) { return entry.first == name; });
    absl::Status result =
        it == Cases().end() ? absl::NotFoundError("no such case") : it->second(peers);
    if (result.ok()) {
      std::cout << "PASS " << name << std::endl;
    } else {
      ++failed;
      std::cout << "FAIL " << name << ": " << result.message() << std::endl;
    }
  }
  return failed == 0 ? 0 : 1;
}
