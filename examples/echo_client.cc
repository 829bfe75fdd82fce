// The interop client for example.EchoService: runs every case of
// tests/data/baidu_std/README.md against a baidu_std server (ours or brpc's)
// and checks each answer.
//
//   bazel run //examples:rpc_echo_client -- --server=127.0.0.1:8000
//   bazel run //examples:rpc_echo_client -- --server=127.0.0.1:8000 --case=echo_gzip
//
// --auth_token=T presents T on each new connection (examples/token_authenticator.h).
//
// Exits 0 when every selected case got the expected answer.
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "examples/token_authenticator.h"
#include "proto/echo.pb.h"
#include "rpc/channel.h"
#include "rpc/errors.h"

ABSL_FLAG(std::string, server, "127.0.0.1:8000", "server address (host:port or list://...)");
ABSL_FLAG(std::string, case_name, "all", "one case of the vectors' README, or all");
ABSL_FLAG(std::string, connection_type, "single", "single, pooled or short");
ABSL_FLAG(int, timeout_ms, 2000, "per-call timeout");
ABSL_FLAG(std::string, auth_token, "", "when set, the credential each new connection presents");

namespace {

using example::EchoRequest;
using example::EchoResponse;

struct Outcome {
  absl::Status status;
  EchoResponse response;
  nprpc::CallInfo info;
};

struct Case {
  std::string name;
  std::function<void(EchoRequest&, nprpc::CallOptions&, netpoll::LinkBuffer&)> setup;
  std::string service = "example.EchoService";
  std::string method = "Echo";
  // Returns an empty string when the outcome is right, else what is wrong.
  std::function<std::string(const Outcome&)> check;
};

std::string ExpectOk(const Outcome& o, const std::string& message) {
  if (!o.status.ok()) return absl::StrCat("failed: ", o.status.ToString());
  if (o.response.message() != message) {
    return absl::StrCat("message of ", o.response.message().size(), " bytes, expected ",
                        message.size());
  }
  return "";
}

std::string ExpectError(const Outcome& o, int code) {
  if (o.status.ok()) return "succeeded, expected an error";
  if (nprpc::ErrorCodeOf(o.status) != code) {
    return absl::StrCat("error ", nprpc::ErrorCodeOf(o.status), ", expected ", code, ": ",
                        o.status.message());
  }
  return "";
}

std::vector<Case> Cases() {
  auto message = [](const std::string& text) {
    return
        [text](EchoRequest& r, nprpc::CallOptions&, netpoll::LinkBuffer&) { r.set_message(text); };
  };
  auto compressed = [](char c, nprpc::CompressType type) {
    return [c, type](EchoRequest& r, nprpc::CallOptions& o, netpoll::LinkBuffer&) {
      r.set_message(std::string(300, c));
      o.compress_type = type;
    };
  };
  std::vector<Case> cases;
  cases.push_back({"echo_basic", message("hello"), "example.EchoService", "Echo",
                   [](const Outcome& o) { return ExpectOk(o, "hello"); }});
  cases.push_back({"echo_attachment_logid",
                   [](EchoRequest& r, nprpc::CallOptions& o, netpoll::LinkBuffer& a) {
                     r.set_message("hello");
                     o.trace.log_id = 123456789;
                     a.WriteBinary("attached-bytes");
                   },
                   "example.EchoService", "Echo",
                   [](const Outcome& o) {
                     std::string wrong = ExpectOk(o, "hello");
                     if (wrong.empty() &&
                         o.info.response_attachment.ToString() != "attached-bytes") {
                       wrong = "attachment not echoed";
                     }
                     return wrong;
                   }});
  cases.push_back({"echo_user_fields",
                   [](EchoRequest& r, nprpc::CallOptions& o, netpoll::LinkBuffer&) {
                     r.set_message("hello");
                     o.metadata = {{"x-tenant", "acme"}, {"x-trace", "abc123"}};
                   },
                   "example.EchoService", "Echo",
                   [](const Outcome& o) {
                     std::string wrong = ExpectOk(o, "hello");
                     if (wrong.empty() && o.info.response_metadata.size() != 2) {
                       wrong = "user fields not echoed";
                     }
                     return wrong;
                   }});
  cases.push_back({"echo_request_id",
                   [](EchoRequest& r, nprpc::CallOptions& o, netpoll::LinkBuffer&) {
                     r.set_message("hello");
                     o.trace.request_id = "req-42";
                   },
                   "example.EchoService", "Echo",
                   [](const Outcome& o) { return ExpectOk(o, "hello"); }});
  cases.push_back({"echo_gzip", compressed('g', nprpc::CompressType::kGzip), "example.EchoService",
                   "Echo", [](const Outcome& o) { return ExpectOk(o, std::string(300, 'g')); }});
  cases.push_back({"echo_zlib", compressed('z', nprpc::CompressType::kZlib), "example.EchoService",
                   "Echo", [](const Outcome& o) { return ExpectOk(o, std::string(300, 'z')); }});
  cases.push_back({"echo_snappy", compressed('s', nprpc::CompressType::kSnappy),
                   "example.EchoService", "Echo",
                   [](const Outcome& o) { return ExpectOk(o, std::string(300, 's')); }});
  cases.push_back({"echo_gzip_response",
                   [](EchoRequest& r, nprpc::CallOptions&, netpoll::LinkBuffer&) {
                     r.set_message(std::string(300, 'r'));
                     r.set_code(7);
                   },
                   "example.EchoService", "Echo",
                   [](const Outcome& o) { return ExpectOk(o, std::string(300, 'r')); }});
  cases.push_back({"echo_large_200k",
                   [](EchoRequest& r, nprpc::CallOptions&, netpoll::LinkBuffer& a) {
                     r.set_message(std::string(200000, 'L'));
                     a.WriteBinary(std::string(50000, 'A'));
                   },
                   "example.EchoService", "Echo",
                   [](const Outcome& o) {
                     std::string wrong = ExpectOk(o, std::string(200000, 'L'));
                     if (wrong.empty() && o.info.response_attachment.Len() != 50000) {
                       wrong = "attachment not echoed";
                     }
                     return wrong;
                   }});
  cases.push_back({"echo_checksum",
                   [](EchoRequest& r, nprpc::CallOptions& o, netpoll::LinkBuffer&) {
                     r.set_message("hello");
                     o.checksum = true;
                   },
                   "example.EchoService", "Echo",
                   [](const Outcome& o) { return ExpectOk(o, "hello"); }});
  cases.push_back({"fail_internal", message("hello"), "example.EchoService", "Fail",
                   [](const Outcome& o) { return ExpectError(o, 2001); }});
  cases.push_back({"fail_custom_code",
                   [](EchoRequest& r, nprpc::CallOptions&, netpoll::LinkBuffer&) {
                     r.set_message("hello");
                     r.set_code(4242);
                   },
                   "example.EchoService", "Fail",
                   [](const Outcome& o) { return ExpectError(o, 4242); }});
  cases.push_back({"no_method", message("hello"), "example.EchoService", "Missing",
                   [](const Outcome& o) { return ExpectError(o, 1002); }});
  cases.push_back({"no_service", message("hello"), "example.NoSuchService", "Echo",
                   [](const Outcome& o) { return ExpectError(o, 1002); }});
  cases.push_back({"echo_timeout_delivered",
                   [](EchoRequest& r, nprpc::CallOptions& o, netpoll::LinkBuffer&) {
                     r.set_message("hello");
                     o.timeout = absl::Milliseconds(1500);  // sent as timeout_ms
                   },
                   "example.EchoService", "Echo",
                   [](const Outcome& o) { return ExpectOk(o, "hello"); }});
  return cases;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  nprpc::ChannelOptions options;
  auto type = nprpc::ParseConnectionType(absl::GetFlag(FLAGS_connection_type));
  if (!type.ok()) {
    std::fprintf(stderr, "%s\n", type.status().ToString().c_str());
    return 2;
  }
  options.connection_type = *type;
  options.timeout = absl::Milliseconds(absl::GetFlag(FLAGS_timeout_ms));
  options.retry.max_retries = 0;  // interop: one request per case, as the vectors
  if (const std::string token = absl::GetFlag(FLAGS_auth_token); !token.empty()) {
    options.authenticator = std::make_shared<examples::TokenAuthenticator>(token);
  }
  auto channel = nprpc::Channel::Create(absl::GetFlag(FLAGS_server), options);
  if (!channel.ok()) {
    std::fprintf(stderr, "%s\n", channel.status().ToString().c_str());
    return 2;
  }
  const std::string selected = absl::GetFlag(FLAGS_case_name);
  int passed = 0;
  int failed = 0;
  for (const Case& c : Cases()) {
    if (selected != "all" && selected != c.name) continue;
    EchoRequest request;
    nprpc::CallOptions call;
    netpoll::LinkBuffer attachment;
    c.setup(request, call, attachment);
    if (!attachment.empty()) call.request_attachment = &attachment;
    Outcome outcome;
    call.info = &outcome.info;
    outcome.status = (*channel)->CallMethod(c.service, c.method, request, &outcome.response, call);
    std::string wrong = c.check(outcome);
    std::printf("%-24s %s%s\n", c.name.c_str(), wrong.empty() ? "ok" : "WRONG: ", wrong.c_str());
    if (!outcome.status.ok() && wrong.empty()) {
      std::printf("%-24s   (server said: %s)\n", "", std::string(outcome.status.message()).c_str());
    }
    (wrong.empty() ? passed : failed)++;
  }
  if (passed + failed == 0) {
    std::fprintf(stderr, "no case named '%s'\n", selected.c_str());
    return 2;
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
