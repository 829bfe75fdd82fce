#include "bench/load_flags.h"

#include <cstdio>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "bench/socket_util.h"

ABSL_FLAG(std::string, server, "127.0.0.1:8000", "server, loopback host:port");
ABSL_FLAG(int, concurrency, 16, "calls kept outstanding (closed loop)");
ABSL_FLAG(int, payload, 16, "request message size in bytes (echoed back)");
ABSL_FLAG(double, duration, 5, "measured seconds");
ABSL_FLAG(double, warmup, 1, "seconds of load before measuring");
ABSL_FLAG(std::string, connection_type, "single",
          "connection type; rpc_bench: the values nprpc::ChannelOptions supports");
ABSL_FLAG(int, channels, 1, "channel objects; call i uses channel i % channels");
ABSL_FLAG(int, timeout_ms, 5000, "per-call deadline in milliseconds");
ABSL_FLAG(int, server_pid, 0, "server process to report CPU and RSS for (0: none)");
ABSL_FLAG(int, think_us, 0,
          "pause in microseconds between a slot's completion and its next call "
          "(a paced, lighter load); 0: none");
ABSL_FLAG(bool, json, false, "print one JSON line instead of the human-readable report");

namespace bench {

namespace {

// Each slot holds a 29 KiB histogram.
constexpr int kMaxConcurrency = 4096;
constexpr int kMaxPayload = 16 << 20;
constexpr int kMaxChannels = 1024;
constexpr double kMaxSeconds = 3600;

}  // namespace

ClosedLoopOptions LoadConfig::LoopOptions() const {
  ClosedLoopOptions o;
  o.concurrency = concurrency;
  o.warmup_s = warmup_s;
  o.duration_s = duration_s;
  o.server_pid = server_pid;
  o.think_time_s = think_us / 1e6;
  // Every call ends by its deadline; leave room for the completions to run.
  o.drain_timeout_s = absl::ToDoubleSeconds(timeout) + 5;
  return o;
}

void LoadConfig::Describe(const char* tool, LoadResult* result) const {
  result->tool = tool;
  result->server = server;
  result->connection_type = connection_type;
  result->channels = channels;
  result->payload = payload;
}

absl::StatusOr<LoadConfig> LoadConfigFromFlags() {
  LoadConfig c;
  c.server = absl::GetFlag(FLAGS_server);
  c.concurrency = absl::GetFlag(FLAGS_concurrency);
  c.payload = absl::GetFlag(FLAGS_payload);
  c.duration_s = absl::GetFlag(FLAGS_duration);
  c.warmup_s = absl::GetFlag(FLAGS_warmup);
  c.connection_type = absl::GetFlag(FLAGS_connection_type);
  c.channels = absl::GetFlag(FLAGS_channels);
  const int timeout_ms = absl::GetFlag(FLAGS_timeout_ms);
  c.timeout = absl::Milliseconds(timeout_ms);
  c.server_pid = absl::GetFlag(FLAGS_server_pid);
  c.think_us = absl::GetFlag(FLAGS_think_us);
  c.json = absl::GetFlag(FLAGS_json);
  if (c.think_us < 0 || c.think_us > 1000000) {
    return absl::InvalidArgumentError("--think_us must be in [0, 1000000]");
  }
  if (c.concurrency < 1 || c.concurrency > kMaxConcurrency) {
    return absl::InvalidArgumentError(
        absl::StrCat("--concurrency must be in [1, ", kMaxConcurrency, "]"));
  }
  if (c.payload < 0 || c.payload > kMaxPayload) {
    return absl::InvalidArgumentError(absl::StrCat("--payload must be in [0, ", kMaxPayload, "]"));
  }
  if (!(c.duration_s > 0 && c.duration_s <= kMaxSeconds)) {
    return absl::InvalidArgumentError("--duration must be in (0, 3600]");
  }
  if (!(c.warmup_s >= 0 && c.warmup_s <= kMaxSeconds)) {
    return absl::InvalidArgumentError("--warmup must be in [0, 3600]");
  }
  if (c.channels < 1 || c.channels > kMaxChannels) {
    return absl::InvalidArgumentError(
        absl::StrCat("--channels must be in [1, ", kMaxChannels, "]"));
  }
  if (timeout_ms < 1 || timeout_ms > 600000) {
    return absl::InvalidArgumentError("--timeout_ms must be in [1, 600000]");
  }
  // Loopback only: the benchmark must never load another machine.
  absl::StatusOr<sockaddr_in> address = ParseLoopbackAddress(c.server);
  if (!address.ok()) return address.status();
  c.server = FormatAddress(*address);
  return c;
}

int PrintLoadResult(const LoadConfig& config, const LoadResult& result) {
  const std::string out = config.json ? FormatLoadJson(result) : FormatLoadText(result);
  std::fputs(out.c_str(), stdout);
  std::fflush(stdout);
  return result.requests > 0 && result.undrained == 0 ? 0 : 1;
}

}  // namespace bench
