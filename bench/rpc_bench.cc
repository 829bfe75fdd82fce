// rpc_bench: closed-loop load against example.EchoService/Echo over nprpc.
//
// --concurrency=C calls are always outstanding: each completion (on a channel
// loop thread) checks the echo and issues the next call at once through the
// async Channel::CallMethod. Calls are spread over --channels Channel objects
// (call slot i uses channel i % channels), each with --connection_type
// (single, pooled or short: nprpc::ParseConnectionType) and request payload
// compression --compress (none, snappy, gzip or zlib; the echo server answers
// uncompressed, brpc's default), in --protocol baidu_std (the default) or
// grpc (HTTP/2, the same port). After --warmup seconds, --duration seconds
// are measured; then it stops by itself and prints QPS, latency percentiles,
// errors, its own CPU and, with --server_pid, the server's CPU and peak RSS
// (bench/load_report.h; --json for one line). A progress line per second
// goes to stderr.
//
//   rpc_bench --server=127.0.0.1:41234 --concurrency=128 --payload=16
//             --duration=5 --warmup=1 --server_pid=1234 [--json]
//
// Same flags and output as grpc_bench (bench/load_flags.h). Loopback only.
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "bench/closed_loop.h"
#include "bench/load_flags.h"
#include "bench/load_report.h"
#include "netpoll/event_loop_group.h"
#include "netpoll/tls_context.h"
#include "proto/echo.pb.h"
#include "rpc/baidu_std.h"
#include "rpc/call_options.h"
#include "rpc/channel.h"
#include "rpc/tracing.h"

ABSL_FLAG(int, busy_poll_us, -1,
          "client loops' busy poll in microseconds (0: off; -1: nprpc's default client "
          "loops, which poll for netpoll::kRequestResponseBusyPoll)");
ABSL_FLAG(std::string, compress, "none", "request payload compression: none, snappy, gzip, zlib");
ABSL_FLAG(std::string, protocol, "baidu_std",
          "wire protocol (ChannelOptions::protocol): baidu_std or grpc; the echo server serves "
          "both on its one port");
ABSL_FLAG(bool, method_metrics, true, "per-method client metrics (ChannelOptions::method_metrics)");
ABSL_FLAG(std::string, tls_ca, "",
          "PEM CA file: connect with TLS and verify the server against it (empty: plaintext)");
ABSL_FLAG(std::string, tls_server_name, "", "with --tls_ca: SNI and the name to verify");
ABSL_FLAG(std::string, tls_cert, "", "with --tls_ca: PEM client certificate (mTLS)");
ABSL_FLAG(std::string, tls_key, "", "with --tls_cert: its PEM private key");
ABSL_FLAG(bool, tls_resume, true,
          "with --tls_ca: resume TLS sessions on reconnects (false: every handshake is a full "
          "one, e.g. to measure handshakes/s with --connection_type=short)");
ABSL_FLAG(int, trace_per_second, -1,
          "traces sampled per second at the edge (-1: the default, 100; 0: none)");

namespace {

// --compress as a CompressType; false for an unknown name.
bool ParseCompress(const std::string& name, nprpc::CompressType* type) {
  if (name == "none") {
    *type = nprpc::CompressType::kNone;
  } else if (name == "snappy") {
    *type = nprpc::CompressType::kSnappy;
  } else if (name == "gzip") {
    *type = nprpc::CompressType::kGzip;
  } else if (name == "zlib") {
    *type = nprpc::CompressType::kZlib;
  } else {
    return false;
  }
  return true;
}

// Request bytes: a fixed pattern, so the echo check compares real content.
std::string PayloadOf(int size) {
  std::string s(static_cast<size_t>(size), '\0');
  for (size_t i = 0; i < s.size(); ++i) s[i] = static_cast<char>('a' + (i * 7) % 26);
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  absl::StatusOr<bench::LoadConfig> config = bench::LoadConfigFromFlags();
  if (!config.ok()) {
    std::fprintf(stderr, "rpc_bench: %s\n", config.status().ToString().c_str());
    return 2;
  }
  absl::StatusOr<nprpc::ConnectionType> type = nprpc::ParseConnectionType(config->connection_type);
  if (!type.ok()) {
    std::fprintf(stderr, "rpc_bench: %s\n", type.status().ToString().c_str());
    return 2;
  }

  nprpc::CallOptions call_options;  // the channel's timeout applies
  if (!ParseCompress(absl::GetFlag(FLAGS_compress), &call_options.compress_type)) {
    std::fprintf(stderr, "rpc_bench: --compress must be none, snappy, gzip or zlib\n");
    return 2;
  }

  nprpc::ChannelOptions options;
  options.method_metrics = absl::GetFlag(FLAGS_method_metrics);
  options.protocol = absl::GetFlag(FLAGS_protocol);
  if (int n = absl::GetFlag(FLAGS_trace_per_second); n >= 0) {
    nprpc::TracingOptions tracing = nprpc::CurrentTracingOptions();
    tracing.max_sampled_per_second = n;
    nprpc::ConfigureTracing(tracing);
  }
  std::unique_ptr<netpoll::EventLoopGroup> loops;  // outlives the channels
  if (int us = absl::GetFlag(FLAGS_busy_poll_us); us >= 0) {
    absl::StatusOr<std::unique_ptr<netpoll::EventLoopGroup>> group =
        netpoll::EventLoopGroup::Create({.name = "rpc_bench", .busy_poll = absl::Microseconds(us)});
    if (!group.ok()) {
      std::fprintf(stderr, "rpc_bench: %s\n", group.status().ToString().c_str());
      return 2;
    }
    loops = *std::move(group);
    options.loops = loops.get();
  }
  options.connection_type = *type;
  options.timeout = config->timeout;
  if (const std::string ca = absl::GetFlag(FLAGS_tls_ca); !ca.empty()) {
    netpoll::TlsClientOptions tls;
    tls.ca_file = ca;
    tls.server_name = absl::GetFlag(FLAGS_tls_server_name);
    tls.key_pair.cert_chain_file = absl::GetFlag(FLAGS_tls_cert);
    tls.key_pair.private_key_file = absl::GetFlag(FLAGS_tls_key);
    tls.session_resumption = absl::GetFlag(FLAGS_tls_resume);
    absl::StatusOr<std::shared_ptr<netpoll::TlsContext>> context =
        netpoll::TlsContext::NewClient(tls);
    if (!context.ok()) {
      std::fprintf(stderr, "rpc_bench: %s\n", context.status().ToString().c_str());
      return 2;
    }
    options.tls = *std::move(context);
  }
  std::vector<std::unique_ptr<nprpc::Channel>> channels;
  for (int i = 0; i < config->channels; ++i) {
    absl::StatusOr<std::unique_ptr<nprpc::Channel>> channel =
        nprpc::Channel::Create(config->server, options);
    if (!channel.ok()) {
      std::fprintf(stderr, "rpc_bench: %s\n", channel.status().ToString().c_str());
      return 2;
    }
    channels.push_back(*std::move(channel));
  }

  example::EchoRequest request;
  request.set_message(PayloadOf(config->payload));
  // One response per slot: a slot has one call in flight at a time.
  std::vector<example::EchoResponse> responses(static_cast<size_t>(config->concurrency));

  bench::ClosedLoop* loop = nullptr;
  auto issue = [&](int slot) {
    example::EchoResponse* response = &responses[static_cast<size_t>(slot)];
    response->Clear();
    channels[static_cast<size_t>(slot % config->channels)]->CallMethod(
        "example.EchoService", "Echo", request, response, call_options,
        [&loop, &request, response, slot](absl::Status status) {
          if (status.ok() && response->message() != request.message()) {
            status = absl::DataLossError("echoed message differs from the request");
          }
          loop->Done(slot, status);
        });
  };
  auto driver = std::make_unique<bench::ClosedLoop>(config->LoopOptions(), issue);
  loop = driver.get();
  bench::LoadResult result = driver->Run();
  config->Describe("rpc_bench", &result);
  const int code = bench::PrintLoadResult(*config, result);
  if (result.undrained > 0) {
    // Calls are still out and will call into the driver: do not destroy it.
    std::fflush(nullptr);
    _exit(code);
  }
  driver.reset();
  channels.clear();
  return code;
}
