// grpc_cpp_client: the gRPC C++ (libgrpc++ 1.51) client peer of the interop
// tests. Runs named cases against a server of nprpc.interop.TestService
// (tests/interop/interop.proto) and prints one line per case:
//
//   grpc_cpp_client --target=127.0.0.1:PORT --cases=empty_unary,ping_pong
//   PASS empty_unary
//   FAIL ping_pong: response 2: payload of 8 bytes, want 9
//
// Exits 0 when every case passed, 1 otherwise (2 for bad flags). Without
// --cases it runs them all. python_client.py and nprpc_interop_client.cc
// run the same cases with the same names.
//
// Thread safety: single-threaded.
#include <algorithm>
#include <chrono>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "grpcpp/grpcpp.h"
#include "proto/grpc/health/v1/health.grpc.pb.h"
#include "proto/grpc/health/v1/health.pb.h"
#include "tests/interop/interop.grpc.pb.h"
#include "tests/interop/interop.pb.h"

ABSL_FLAG(std::string, target, "", "server address, host:port");
ABSL_FLAG(std::string, cases, "", "comma-separated case names (empty: all)");

// libgrpc's test-only view of a call (as grpc_cpp_server.cc uses it): the
// flags of the last message received; this bit: it arrived compressed.
uint32_t grpc_call_test_only_get_message_flags(grpc_call* call);
constexpr uint32_t kMessageWasCompressed =
    0x40000000u;  // GRPC_WRITE_INTERNAL_TEST_ONLY_WAS_COMPRESSED

namespace {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;
using nprpc::interop::Empty;
using nprpc::interop::SimpleRequest;
using nprpc::interop::SimpleResponse;
using nprpc::interop::StreamingInputCallRequest;
using nprpc::interop::StreamingInputCallResponse;
using nprpc::interop::StreamingOutputCallRequest;
using nprpc::interop::StreamingOutputCallResponse;
using nprpc::interop::TestService;
using nprpc::interop::UnimplementedService;

constexpr int kMaxMessageBytes = 16 * 1024 * 1024;
constexpr int kLargeBytes = 4 * 1024 * 1024;
// Every call's deadline unless the case sets its own: no case hangs.
constexpr auto kCallTimeout = std::chrono::seconds(20);
// Sizes of the streaming cases (as gRPC's interop tests use).
const std::vector<int> kRequestSizes = {27182, 8, 1828, 45904};
const std::vector<int> kResponseSizes = {31415, 9, 2653, 58979};
// Unicode, whitespace and percent signs: everything a grpc-message must
// percent-encode.
const char kSpecialMessage[] =
    "\t\ntest with whitespace\r\nand Unicode BMP \xe2\x98\xba and non-BMP \xf0\x9f\x98\x88\t\n"
    "100% done";

struct Peers {
  std::unique_ptr<TestService::Stub> test;
  std::unique_ptr<UnimplementedService::Stub> unimplemented;
  std::unique_ptr<grpc::health::v1::Health::Stub> health;
};

void SetDeadline(grpc::ClientContext* context) {
  context->set_deadline(std::chrono::system_clock::now() + kCallTimeout);
}

std::string Describe(const grpc::Status& status) {
  return absl::StrCat("status ", status.error_code(), " \"", status.error_message(), "\"");
}

absl::Status ExpectOk(const grpc::Status& status, const std::string& what) {
  if (status.ok()) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(what, ": ", Describe(status)));
}

absl::Status ExpectCode(const grpc::Status& status, grpc::StatusCode code,
                        const std::string& what) {
  if (status.error_code() == code) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(what, ": ", Describe(status), ", want code ", code));
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

// A payload whose bytes differ from each other, to catch reordering.
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
  grpc::ClientContext context;
  SetDeadline(&context);
  Empty response;
  return ExpectOk(peers.test->EmptyCall(&context, Empty(), &response), "EmptyCall");
}

absl::Status LargeUnary(Peers& peers) {
  {  // 4 MiB up, echoed back byte for byte.
    grpc::ClientContext context;
    SetDeadline(&context);
    SimpleRequest request;
    request.set_payload(Pattern(kLargeBytes));
    SimpleResponse response;
    RETURN_IF_ERROR(ExpectOk(peers.test->UnaryCall(&context, request, &response), "echo"));
    if (response.payload() != request.payload()) {
      return absl::InternalError(
          absl::StrCat("echo: payload of ", response.payload().size(), " bytes differs"));
    }
  }
  // A small request asking for 4 MiB.
  grpc::ClientContext context;
  SetDeadline(&context);
  SimpleRequest request;
  request.set_response_size(kLargeBytes);
  request.set_payload(std::string(271828, '\0'));
  SimpleResponse response;
  RETURN_IF_ERROR(ExpectOk(peers.test->UnaryCall(&context, request, &response), "response_size"));
  return ExpectPayloadSize(response.payload(), kLargeBytes, "response_size");
}

absl::Status ClientStreaming(Peers& peers) {
  for (bool empty : {false, true}) {
    const std::string what = empty ? "empty stream" : "stream";
    grpc::ClientContext context;
    SetDeadline(&context);
    StreamingInputCallResponse response;
    std::unique_ptr<grpc::ClientWriter<StreamingInputCallRequest>> writer =
        peers.test->StreamingInputCall(&context, &response);
    int total = 0;
    int count = 0;
    if (!empty) {
      for (int size : kRequestSizes) {
        StreamingInputCallRequest request;
        request.set_payload(std::string(size, '\0'));
        if (!writer->Write(request)) return absl::InternalError(what + ": write failed");
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
    grpc::ClientContext context;
    SetDeadline(&context);
    StreamingOutputCallRequest request;
    const std::vector<int> sizes = empty ? std::vector<int>() : kResponseSizes;
    for (int size : sizes) request.add_response_parameters()->set_size(size);
    std::unique_ptr<grpc::ClientReader<StreamingOutputCallResponse>> reader =
        peers.test->StreamingOutputCall(&context, request);
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
  grpc::ClientContext context;
  SetDeadline(&context);
  auto stream = peers.test->FullDuplexCall(&context);
  for (size_t i = 0; i < kResponseSizes.size(); ++i) {
    StreamingOutputCallRequest request = OneResponseOf(kResponseSizes[i]);
    request.set_payload(std::string(kRequestSizes[i], '\0'));
    if (!stream->Write(request)) return absl::InternalError(absl::StrCat("write ", i, " failed"));
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
  grpc::ClientContext context;
  SetDeadline(&context);
  auto stream = peers.test->FullDuplexCall(&context);
  stream->WritesDone();
  StreamingOutputCallResponse response;
  if (stream->Read(&response)) return absl::InternalError("a response to no request");
  return ExpectOk(stream->Finish(), "finish");
}

// Looks for `key` with `value` in `metadata`.
absl::Status ExpectMetadata(const std::multimap<grpc::string_ref, grpc::string_ref>& metadata,
                            const std::string& key, const std::string& value,
                            const std::string& where) {
  auto it = metadata.find(key);
  if (it == metadata.end()) return absl::InternalError(absl::StrCat("no ", key, " in ", where));
  const std::string got(it->second.data(), it->second.size());
  if (got != value) {
    return absl::InternalError(absl::StrCat(key, " in ", where, " is \"", absl::CEscape(got),
                                            "\", want \"", absl::CEscape(value), "\""));
  }
  return absl::OkStatus();
}

// The metadata custom_metadata sends: ASCII and binary, for headers and for
// trailers, and one key the server only reports.
const std::vector<std::pair<std::string, std::string>>& CustomMetadata() {
  static const auto* metadata = new std::vector<std::pair<std::string, std::string>>{
      {"x-echo-initial", "test_initial_metadata_value"},
      {"x-echo-initial-bin", std::string("\x00\x01\xfe\xff", 4)},
      {"x-echo-trailing", "test_trailing_metadata_value"},
      {"x-echo-trailing-bin", std::string("\x0a\x0b\x0a\x0b\x0a\x0b", 6)},
      {"x-seen-only", "seen"},
  };
  return *metadata;
}

absl::Status ExpectEchoed(const grpc::ClientContext& context, const std::string& where) {
  for (const auto& [key, value] : CustomMetadata()) {
    if (absl::StartsWith(key, "x-echo-initial")) {
      RETURN_IF_ERROR(ExpectMetadata(context.GetServerInitialMetadata(), key, value,
                                     where + " initial metadata"));
    }
    if (absl::StartsWith(key, "x-echo-trailing")) {
      RETURN_IF_ERROR(ExpectMetadata(context.GetServerTrailingMetadata(), key, value,
                                     where + " trailing metadata"));
    }
  }
  return absl::OkStatus();
}

absl::Status CustomMetadataCase(Peers& peers) {
  {  // Unary: echoed, and reported in seen_metadata.
    grpc::ClientContext context;
    SetDeadline(&context);
    for (const auto& [key, value] : CustomMetadata()) context.AddMetadata(key, value);
    SimpleRequest request;
    request.set_payload("hi");
    SimpleResponse response;
    RETURN_IF_ERROR(ExpectOk(peers.test->UnaryCall(&context, request, &response), "UnaryCall"));
    RETURN_IF_ERROR(ExpectEchoed(context, "UnaryCall"));
    for (const auto& [key, value] : CustomMetadata()) {
      const std::string want = absl::StrCat(key, "=", value);
      if (std::find(response.seen_metadata().begin(), response.seen_metadata().end(), want) ==
          response.seen_metadata().end()) {
        return absl::InternalError(
            absl::StrCat("server did not see ", absl::CEscape(want), "; saw ",
                         absl::CEscape(absl::StrJoin(response.seen_metadata(), ", "))));
      }
    }
  }
  // Bidirectional streaming: echoed around one ping-pong.
  grpc::ClientContext context;
  SetDeadline(&context);
  for (const auto& [key, value] : CustomMetadata()) context.AddMetadata(key, value);
  auto stream = peers.test->FullDuplexCall(&context);
  if (!stream->Write(OneResponseOf(10))) return absl::InternalError("FullDuplexCall write failed");
  StreamingOutputCallResponse response;
  if (!stream->Read(&response)) return absl::InternalError("FullDuplexCall: no response");
  stream->WritesDone();
  while (stream->Read(&response)) {
  }
  RETURN_IF_ERROR(ExpectOk(stream->Finish(), "FullDuplexCall"));
  return ExpectEchoed(context, "FullDuplexCall");
}

absl::Status ExpectStatus(const grpc::Status& status, int code, const std::string& message,
                          const std::string& what) {
  if (status.error_code() != code || status.error_message() != message) {
    return absl::InternalError(absl::StrCat(what, ": ", "status ", status.error_code(), " \"",
                                            absl::CEscape(status.error_message()), "\", want ",
                                            code, " \"", absl::CEscape(message), "\""));
  }
  return absl::OkStatus();
}

absl::Status UnaryWithStatus(Peers& peers, int code, const std::string& message) {
  grpc::ClientContext context;
  SetDeadline(&context);
  SimpleRequest request;
  request.mutable_response_status()->set_code(code);
  request.mutable_response_status()->set_message(message);
  SimpleResponse response;
  return ExpectStatus(peers.test->UnaryCall(&context, request, &response), code, message,
                      absl::StrCat("UnaryCall code ", code));
}

absl::Status StatusCodeAndMessage(Peers& peers) {
  // Every canonical error code survives the trip, with a Unicode message.
  for (int code = 1; code <= 16; ++code) {
    RETURN_IF_ERROR(UnaryWithStatus(peers, code,
                                    absl::StrCat("status ", code,
                                                 " \xc3\xbcnic\xc3\xb8"
                                                 "de")));
  }
  // And at the end of a bidirectional stream.
  grpc::ClientContext context;
  SetDeadline(&context);
  auto stream = peers.test->FullDuplexCall(&context);
  StreamingOutputCallRequest request;
  request.mutable_response_status()->set_code(2);
  request.mutable_response_status()->set_message("test status message");
  if (!stream->Write(request)) {
    // The server may already have finished; Finish has the status.
  }
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
  grpc::ClientContext context;
  SetDeadline(&context);
  Empty response;
  return ExpectCode(peers.test->UnimplementedCall(&context, Empty(), &response),
                    grpc::StatusCode::UNIMPLEMENTED, "TestService/UnimplementedCall");
}

absl::Status UnimplementedServiceCase(Peers& peers) {
  grpc::ClientContext context;
  SetDeadline(&context);
  Empty response;
  return ExpectCode(peers.unimplemented->UnimplementedCall(&context, Empty(), &response),
                    grpc::StatusCode::UNIMPLEMENTED, "UnimplementedService/UnimplementedCall");
}

absl::Status TimeoutOnSleepingServer(Peers& peers) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
  SimpleRequest request;
  request.set_sleep_ms(10000);
  SimpleResponse response;
  const auto start = std::chrono::steady_clock::now();
  RETURN_IF_ERROR(ExpectCode(peers.test->UnaryCall(&context, request, &response),
                             grpc::StatusCode::DEADLINE_EXCEEDED, "UnaryCall sleeping 10 s"));
  if (std::chrono::steady_clock::now() - start > std::chrono::seconds(5)) {
    return absl::InternalError("the deadline was only noticed when the server answered");
  }
  return absl::OkStatus();
}

absl::Status CancelAfterBegin(Peers& peers) {
  grpc::ClientContext context;
  SetDeadline(&context);
  StreamingInputCallResponse response;
  auto writer = peers.test->StreamingInputCall(&context, &response);
  context.TryCancel();
  return ExpectCode(writer->Finish(), grpc::StatusCode::CANCELLED, "StreamingInputCall");
}

absl::Status CancelAfterFirstResponse(Peers& peers) {
  grpc::ClientContext context;
  SetDeadline(&context);
  auto stream = peers.test->FullDuplexCall(&context);
  if (!stream->Write(OneResponseOf(31415))) return absl::InternalError("write failed");
  StreamingOutputCallResponse response;
  if (!stream->Read(&response)) return absl::InternalError("no first response");
  context.TryCancel();
  while (stream->Read(&response)) {
  }
  return ExpectCode(stream->Finish(), grpc::StatusCode::CANCELLED, "FullDuplexCall");
}

absl::Status ClientCompressedUnary(Peers& peers) {
  grpc::ClientContext context;
  SetDeadline(&context);
  context.set_compression_algorithm(GRPC_COMPRESS_GZIP);
  SimpleRequest request;
  request.set_payload(Pattern(256 * 1024));
  request.set_expect_compressed(true);
  SimpleResponse response;
  RETURN_IF_ERROR(ExpectOk(peers.test->UnaryCall(&context, request, &response), "UnaryCall"));
  if (response.payload() != request.payload()) {
    return absl::InternalError("the echoed payload differs");
  }
  return absl::OkStatus();
}

absl::Status ServerCompressedUnary(Peers& peers) {
  grpc::ClientContext context;
  SetDeadline(&context);
  SimpleRequest request;
  request.set_response_size(256 * 1024);
  request.set_compress_response(true);
  SimpleResponse response;
  RETURN_IF_ERROR(ExpectOk(peers.test->UnaryCall(&context, request, &response), "UnaryCall"));
  if ((grpc_call_test_only_get_message_flags(context.c_call()) & kMessageWasCompressed) == 0) {
    return absl::InternalError("the response was not compressed");
  }
  return ExpectPayloadSize(response.payload(), 256 * 1024, "UnaryCall");
}

absl::Status HealthCheck(Peers& peers) {
  for (const char* service : {"", "nprpc.interop.TestService"}) {
    grpc::ClientContext context;
    SetDeadline(&context);
    HealthCheckRequest request;
    request.set_service(service);
    HealthCheckResponse response;
    RETURN_IF_ERROR(ExpectOk(peers.health->Check(&context, request, &response),
                             absl::StrCat("Check \"", service, "\"")));
    if (response.status() != HealthCheckResponse::SERVING) {
      return absl::InternalError(
          absl::StrCat("Check \"", service, "\": status ", response.status(), ", want SERVING"));
    }
  }
  grpc::ClientContext context;
  SetDeadline(&context);
  HealthCheckRequest request;
  request.set_service("no.such.Service");
  HealthCheckResponse response;
  return ExpectCode(peers.health->Check(&context, request, &response), grpc::StatusCode::NOT_FOUND,
                    "Check \"no.such.Service\"");
}

using Case = std::function<absl::Status(Peers&)>;

// In the order they run without --cases.
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
    for (const auto& [name, run] : Cases()) names.push_back(name);
  } else {
    names = absl::StrSplit(absl::GetFlag(FLAGS_cases), ',', absl::SkipEmpty());
  }

  grpc::ChannelArguments arguments;
  arguments.SetMaxReceiveMessageSize(kMaxMessageBytes);
  arguments.SetMaxSendMessageSize(kMaxMessageBytes);
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), arguments);
  Peers peers{
      .test = TestService::NewStub(channel),
      .unimplemented = UnimplementedService::NewStub(channel),
      .health = grpc::health::v1::Health::NewStub(channel),
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
