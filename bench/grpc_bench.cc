// grpc_bench: the gRPC C++ baseline of rpc_bench. The same closed-loop load
// (bench/closed_loop.h), flags and output (bench/load_flags.h,
// bench/load_report.h), against example.EchoService/Echo of
// grpc_echo_server.
//
// --concurrency=C async unary calls are always outstanding, through the
// callback API (stub->async()->Echo(...)): each completion, on a gRPC
// callback thread, checks the echo and issues the next call at once with a
// fresh ClientContext. --channels=N grpc::Channel objects, each with a local
// subchannel pool so that each has its own HTTP/2 connection; call slot i
// uses channel i % N. --connection_type: "single" (one HTTP/2 connection
// per channel, which multiplexes every call as nprpc's single connection
// does) or "short" (a new channel, hence a new connection and with --tls_ca
// a full TLS handshake, for every call: gRPC C++ keeps no TLS session cache
// across channels; handshakes per second against rpc_bench's short
// connections).
//
//   grpc_bench --server=127.0.0.1:41235 --concurrency=128 --payload=16
//              --duration=5 --warmup=1 --server_pid=1234 [--json]
//
// Loopback only.
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "bench/closed_loop.h"
#include "bench/load_flags.h"
#include "bench/load_report.h"
#include "grpcpp/grpcpp.h"
#include "proto/echo.grpc.pb.h"
#include "proto/echo.pb.h"

ABSL_FLAG(std::string, tls_ca, "", "PEM CA: call over TLS (gRPC's SSL credentials)");
ABSL_FLAG(std::string, tls_server_name, "", "with --tls_ca: the name to verify");

namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Request bytes: the same pattern as rpc_bench.
std::string PayloadOf(int size) {
  std::string s(static_cast<size_t>(size), '\0');
  for (size_t i = 0; i < s.size(); ++i) s[i] = static_cast<char>('a' + (i * 7) % 26);
  return s;
}

absl::Status ToAbsl(const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

// The state of one call slot. The context is replaced per call (a
// ClientContext serves one call); replacing it inside the previous call's
// completion is safe because gRPC's completion tag holds its own reference
// to the call.
struct Slot {
  std::unique_ptr<grpc::ClientContext> context;
  example::EchoResponse response;
  // --connection_type=short: this call's own channel (replaced by the next
  // call's; the call in flight holds its channel until it completes).
  std::unique_ptr<example::EchoService::Stub> stub;
};

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  absl::StatusOr<bench::LoadConfig> config = bench::LoadConfigFromFlags();
  if (!config.ok()) {
    std::fprintf(stderr, "grpc_bench: %s\n", config.status().ToString().c_str());
    return 2;
  }
  const bool short_connections = config->connection_type == "short";
  if (config->connection_type != "single" && !short_connections) {
    std::fprintf(stderr, "grpc_bench: --connection_type=%s: single or short\n",
                 config->connection_type.c_str());
    return 2;
  }

  grpc::ChannelArguments args;
  // Without it, channels with equal arguments share one connection.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
  if (const std::string ca = absl::GetFlag(FLAGS_tls_ca); !ca.empty()) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ReadFile(ca);
    credentials = grpc::SslCredentials(ssl);
    if (const std::string name = absl::GetFlag(FLAGS_tls_server_name); !name.empty()) {
      args.SetSslTargetNameOverride(name);
    }
  }
  auto new_stub = [&] {
    return example::EchoService::NewStub(
        grpc::CreateCustomChannel(config->server, credentials, args));
  };
  std::vector<std::unique_ptr<example::EchoService::Stub>> stubs;
  if (!short_connections) {
    for (int i = 0; i < config->channels; ++i) stubs.push_back(new_stub());
  }

  example::EchoRequest request;
  request.set_message(PayloadOf(config->payload));
  std::vector<Slot> slots(static_cast<size_t>(config->concurrency));
  const auto timeout = std::chrono::microseconds(absl::ToInt64Microseconds(config->timeout));

  bench::ClosedLoop* loop = nullptr;
  auto issue = [&](int slot) {
    Slot& s = slots[static_cast<size_t>(slot)];
    s.context = std::make_unique<grpc::ClientContext>();
    s.context->set_deadline(std::chrono::system_clock::now() + timeout);
    s.response.Clear();
    if (short_connections) s.stub = new_stub();
    example::EchoService::Stub* stub =
        short_connections ? s.stub.get()
                          : stubs[static_cast<size_t>(slot % config->channels)].get();
    stub->async()->Echo(s.context.get(), &request, &s.response,
                        [&loop, &request, &s, slot](const grpc::Status& grpc_status) {
                          absl::Status status = ToAbsl(grpc_status);
                          if (status.ok() && s.response.message() != request.message()) {
                            status = absl::DataLossError("echoed message differs from the request");
                          }
                          loop->Done(slot, status);
                        });
  };
  auto driver = std::make_unique<bench::ClosedLoop>(config->LoopOptions(), issue);
  loop = driver.get();
  bench::LoadResult result = driver->Run();
  config->Describe("grpc_bench", &result);
  const int code = bench::PrintLoadResult(*config, result);
  if (result.undrained > 0) {
    // Calls are still out and will call into the driver: do not destroy it.
    std::fflush(nullptr);
    _exit(code);
  }
  driver.reset();
  slots.clear();
  stubs.clear();
  return code;
}
