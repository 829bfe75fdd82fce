// The gRPC interop tests: real gRPC peers from Debian (gRPC C++ 1.51 and
// Python grpcio 1.51) run every case of the interop list against each other's
// servers, which proves the peers; against nprpc they prove nprpc (issue #16).
//
// Each test starts a server program (port 0; it prints
// "listening on 127.0.0.1:PORT"), runs a client program with --cases and
// --target, and reports each case the client printed as FAIL. The programs
// are killed (their process groups) when the test ends, passing or not.
#include <stdlib.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "netpoll/testing/wait.h"
#include "tests/harness/subprocess.h"

namespace nprpc {
namespace {

using testing::BackgroundProcess;
using testing::CommandResult;
using testing::RunCommand;

// Where the programs are, relative to the test's runfiles (its working
// directory).
constexpr char kPython[] = "/usr/bin/python3";
constexpr char kCppServer[] = "tests/interop/grpc_cpp_server";
constexpr char kCppClient[] = "tests/interop/grpc_cpp_client";
constexpr char kPythonServer[] = "tests/interop/python_server.py";
constexpr char kPythonClient[] = "tests/interop/python_client.py";
constexpr char kPythonStubs[] = "--stubs=tests/interop/py_gen";
constexpr char kNprpcServer[] = "tests/interop/nprpc_interop_server";

// A client runs all its cases well within this (each call has a 20 s
// deadline; a passing run takes about a second).
constexpr absl::Duration kClientTimeout = absl::Seconds(90);

// Every case, by the name both clients know it by.
const std::vector<std::string>& AllCases() {
  static const auto* cases = new std::vector<std::string>{
      "empty_unary",
      "large_unary",
      "client_streaming",
      "server_streaming",
      "ping_pong",
      "empty_stream",
      "custom_metadata",
      "status_code_and_message",
      "special_status_message",
      "unimplemented_method",
      "unimplemented_service",
      "timeout_on_sleeping_server",
      "cancel_after_begin",
      "cancel_after_first_response",
      "client_compressed_unary",
      "server_compressed_unary",
      "health_check",
  };
  return *cases;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// A fresh directory for one test's logs (sandboxes share /tmp).
std::string MakeTempDir() {
  const char* base = getenv("TEST_TMPDIR");
  std::string pattern = absl::StrCat(base != nullptr ? base : "/tmp", "/interop.XXXXXX");
  return mkdtemp(pattern.data()) != nullptr ? pattern : "";
}

// A server program, from start until it announced its port, then until this
// object goes away.
class PeerServer {
 public:
  // Starts `argv` and waits until it prints its address.
  static absl::StatusOr<std::unique_ptr<PeerServer>> Start(const std::vector<std::string>& argv) {
    const std::string dir = MakeTempDir();
    if (dir.empty()) return absl::InternalError("mkdtemp failed");
    auto server = std::unique_ptr<PeerServer>(new PeerServer(argv, dir + "/server.log"));
    if (!server->process_->started()) return absl::InternalError("cannot start " + argv[0]);
    std::string address;
    const bool announced = netpoll::testing::WaitFor([&] {
      for (absl::string_view line : absl::StrSplit(ReadFile(server->log_path_), '\n')) {
        if (absl::ConsumePrefix(&line, "listening on ")) {
          address = std::string(line);
          return true;
        }
      }
      return !server->process_->running();
    });
    if (!announced || address.empty()) {
      return absl::UnavailableError(
          absl::StrCat(argv[0], " did not start serving:\n", ReadFile(server->log_path_)));
    }
    server->address_ = address;
    return server;
  }

  const std::string& address() const { return address_; }
  std::string log() const { return ReadFile(log_path_); }

  // Stops the program (SIGTERM, then SIGKILL after 5 s) and waits for it;
  // its whole log.
  std::string Stop() {
    process_.reset();
    return log();
  }

 private:
  PeerServer(const std::vector<std::string>& argv, std::string log_path)
      : log_path_(std::move(log_path)) {
    process_.emplace(argv, log_path_);
  }

  const std::string log_path_;
  std::optional<BackgroundProcess> process_;
  std::string address_;
};

// Runs a client program (argv, then --target and --cases) over `cases`
// against `server`; every case it does not report as passed is a failure.
void RunClient(std::vector<std::string> argv, const PeerServer& server,
               const std::vector<std::string>& cases) {
  argv.push_back("--target=" + server.address());
  argv.push_back("--cases=" + absl::StrJoin(cases, ","));
  absl::StatusOr<CommandResult> result = RunCommand(argv, kClientTimeout);
  ASSERT_TRUE(result.ok()) << result.status();
  for (const std::string& name : cases) {
    EXPECT_TRUE(absl::StrContains(result->output, absl::StrCat("PASS ", name, "\n")))
        << "case " << name << " did not pass";
  }
  EXPECT_EQ(result->exit_code, 0) << "client output:\n"
                                  << result->output << "\nserver log:\n"
                                  << server.log();
}

// The gRPC C++ peers run under `env` with TSan's reports off: in a
// --config=tsan build they are instrumented, but the libgrpc and Abseil they
// run on (Debian's) are not, and TSan misreads their synchronization. They
// are the reference, not the code under test; nprpc's side is checked.
std::vector<std::string> UnderEnvForPeers(std::vector<std::string> argv) {
  const char* tsan = getenv("TSAN_OPTIONS");
  argv.insert(argv.begin(),
              {"/usr/bin/env", absl::StrCat("TSAN_OPTIONS=", tsan != nullptr ? tsan : "",
                                            tsan != nullptr ? ":" : "", "report_bugs=0")});
  return argv;
}

std::vector<std::string> CppServer() { return UnderEnvForPeers({kCppServer, "--port=0"}); }
std::vector<std::string> PythonServer() {
  return {kPython, kPythonServer, "--port=0", kPythonStubs};
}
std::vector<std::string> NprpcServer() { return {kNprpcServer, "--port=0"}; }
std::vector<std::string> CppClient() { return UnderEnvForPeers({kCppClient}); }
std::vector<std::string> PythonClient() { return {kPython, kPythonClient, kPythonStubs}; }

TEST(GrpcPeersTest, CppClientPassesEveryCaseAgainstPythonServer) {
  absl::StatusOr<std::unique_ptr<PeerServer>> server = PeerServer::Start(PythonServer());
  ASSERT_TRUE(server.ok()) << server.status();
  RunClient(CppClient(), **server, AllCases());
}

TEST(GrpcPeersTest, PythonClientPassesEveryCaseAgainstCppServer) {
  absl::StatusOr<std::unique_ptr<PeerServer>> server = PeerServer::Start(CppServer());
  ASSERT_TRUE(server.ok()) << server.status();
  RunClient(PythonClient(), **server, AllCases());
}

// Every case but `skipped`.
std::vector<std::string> CasesBut(const std::vector<std::string>& skipped) {
  std::vector<std::string> cases;
  for (const std::string& name : AllCases()) {
    if (std::find(skipped.begin(), skipped.end(), name) == skipped.end()) cases.push_back(name);
  }
  return cases;
}

// The nprpc server runs instrumented in sanitizer builds: a report in its
// log fails the test.
void ExpectNoSanitizerReport(const std::string& log) {
  EXPECT_FALSE(absl::StrContains(log, "Sanitizer")) << log;
}

// health_check waits for the server's grpc.health.v1.Health.
TEST(NprpcServerInteropTest, CppClientPassesEveryCase) {
  absl::StatusOr<std::unique_ptr<PeerServer>> server = PeerServer::Start(NprpcServer());
  ASSERT_TRUE(server.ok()) << server.status();
  RunClient(CppClient(), **server, CasesBut({"health_check"}));
  ExpectNoSanitizerReport((*server)->Stop());
}

TEST(NprpcServerInteropTest, PythonClientPassesEveryCase) {
  absl::StatusOr<std::unique_ptr<PeerServer>> server = PeerServer::Start(NprpcServer());
  ASSERT_TRUE(server.ok()) << server.status();
  RunClient(PythonClient(), **server, CasesBut({"health_check"}));
  ExpectNoSanitizerReport((*server)->Stop());
}

// The driver trusts the clients' verdicts: a case they cannot run fails them.
TEST(GrpcPeersTest, ClientsFailOnACaseTheyDoNotKnow) {
  for (const std::vector<std::string>& client : {CppClient(), PythonClient()}) {
    std::vector<std::string> argv = client;
    argv.push_back("--target=127.0.0.1:1");
    argv.push_back("--cases=no_such_case");
    absl::StatusOr<CommandResult> result = RunCommand(argv, kClientTimeout);
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->exit_code, 1) << result->output;
    EXPECT_TRUE(absl::StrContains(result->output, "FAIL no_such_case: no such case"))
        << result->output;
  }
}

}  // namespace
}  // namespace nprpc
