// The demo's client: sample quotes, a closed-loop load through the gateway
// (the bench tool's load model, bench/closed_loop.h), the per-hop summary,
// and probes used while a service is stopped.
//
//   shop_client --gateway=ADDR --mode=samples
//   shop_client --gateway=ADDR --mode=load --concurrency=16 --duration=3
//   shop_client --gateway=ADDR --mode=probe --timeout_ms=500     # exit 1 on error
//   shop_client --gateway=ADDR --mode=wait_ok --max_wait_s=10    # until a call succeeds
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_format.h"
#include "bench/closed_loop.h"
#include "proto/shop/gateway.nprpc.h"
#include "rpc/channel.h"

ABSL_FLAG(std::string, gateway, "127.0.0.1:8000", "gateway address");
ABSL_FLAG(std::string, mode, "samples", "samples, load, probe or wait_ok");
ABSL_FLAG(int, concurrency, 16, "load: calls kept in flight");
ABSL_FLAG(double, duration, 3, "load: measured seconds");
ABSL_FLAG(int, timeout_ms, 1000, "per-call deadline");
ABSL_FLAG(double, max_wait_s, 10, "wait_ok: give up after this long");

namespace {

const std::vector<std::string> kSkus = {"kb-01", "ms-02", "mn-03", "hd-04", "cb-05"};

shop::QuoteRequest Request(int i) {
  shop::QuoteRequest request;
  request.set_sku(kSkus[i % kSkus.size()]);
  request.set_quantity(1 + i % 12);
  return request;
}

nprpc::CallOptions Options() {
  nprpc::CallOptions options;
  options.timeout = absl::Milliseconds(absl::GetFlag(FLAGS_timeout_ms));
  options.metadata = {{"x-demo-client", "shop_client"}};
  return options;
}

int Samples(shop::Gateway::Stub& stub) {
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<shop::Quote> quote = stub.GetQuote(Request(i * 7), Options());
    if (!quote.ok()) {
      std::printf("  quote failed: %s\n", quote.status().ToString().c_str());
      return 1;
    }
    std::printf("  %d x %-20s %s  = %.2f %s (stock %d)\n", Request(i * 7).quantity(),
                quote->product().name().c_str(), quote->product().sku().c_str(),
                quote->price().total_cents() / 100.0, quote->price().currency().c_str(),
                quote->product().stock());
  }
  shop::QuoteRequest unknown;
  unknown.set_sku("zz-99");
  absl::StatusOr<shop::Quote> missing = stub.GetQuote(unknown, Options());
  std::printf("  unknown sku -> %s\n", missing.status().ToString().c_str());
  return 0;
}

int Load(shop::Gateway::Stub& stub) {
  bench::ClosedLoopOptions options;
  options.concurrency = absl::GetFlag(FLAGS_concurrency);
  options.duration_s = absl::GetFlag(FLAGS_duration);
  options.warmup_s = 0.5;
  options.progress = false;
  std::vector<shop::QuoteRequest> requests(options.concurrency);
  bench::ClosedLoop* loop = nullptr;
  int next = 0;
  bench::ClosedLoop driver(options, [&](int slot) {
    requests[slot] = Request(slot + next++);
    stub.GetQuote(
        requests[slot],
        [&loop, slot](const absl::StatusOr<shop::Quote>& quote) {
          loop->Done(slot, quote.status());
        },
        Options());
  });
  loop = &driver;
  bench::LoadResult result = driver.Run();
  double qps = result.window_s > 0 ? result.requests / result.window_s : 0;
  std::printf(
      "  client -> gateway     calls %8lld  errors %lld  %8.0f QPS  p50 %7.1f us  p99 %7.1f us\n",
      static_cast<long long>(result.requests), static_cast<long long>(result.errors), qps,
      result.p50_us, result.p99_us);
  absl::StatusOr<shop::Stats> stats = stub.GetStats(shop::StatsRequest(), Options());
  if (!stats.ok()) {
    std::printf("  stats failed: %s\n", stats.status().ToString().c_str());
    return 1;
  }
  for (const shop::HopStats& hop : stats->hops()) {
    std::printf("  %-21s calls %8lld  errors %lld                p50 %7.1f us  p99 %7.1f us\n",
                hop.hop().c_str(), static_cast<long long>(hop.calls()),
                static_cast<long long>(hop.errors()), hop.p50_us(), hop.p99_us());
  }
  if (result.undrained > 0) std::_Exit(1);  // calls still out: the loop must not be destroyed
  return result.errors == 0 ? 0 : 1;
}

int Probe(shop::Gateway::Stub& stub) {
  absl::Time start = absl::Now();
  absl::StatusOr<shop::Quote> quote = stub.GetQuote(Request(0), Options());
  std::string took =
      absl::FormatDuration(absl::Trunc(absl::Now() - start, absl::Microseconds(100)));
  if (quote.ok()) {
    std::printf("  quote ok in %s\n", took.c_str());
    return 0;
  }
  std::printf("  quote failed in %s (deadline %d ms): %s\n", took.c_str(),
              absl::GetFlag(FLAGS_timeout_ms), quote.status().ToString().c_str());
  return 1;
}

int WaitOk(shop::Gateway::Stub& stub) {
  absl::Time start = absl::Now();
  absl::Time give_up = start + absl::Seconds(absl::GetFlag(FLAGS_max_wait_s));
  int failures = 0;
  while (absl::Now() < give_up) {
    absl::StatusOr<shop::Quote> quote = stub.GetQuote(Request(1), Options());
    if (quote.ok()) {
      std::printf(
          "  recovered: first good quote %s after the service came back (%d failed calls "
          "meanwhile)\n",
          absl::FormatDuration(absl::Trunc(absl::Now() - start, absl::Milliseconds(1))).c_str(),
          failures);
      return 0;
    }
    ++failures;
    absl::SleepFor(absl::Milliseconds(10));
  }
  std::printf("  did not recover within %.0f s\n", absl::GetFlag(FLAGS_max_wait_s));
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  nprpc::ChannelOptions options;
  options.retry.max_retries = 0;  // show the gateway's own answers
  auto channel = nprpc::Channel::Create(absl::GetFlag(FLAGS_gateway), options);
  if (!channel.ok()) {
    std::fprintf(stderr, "%s\n", channel.status().ToString().c_str());
    return 2;
  }
  shop::Gateway::Stub stub(channel->get());
  const std::string mode = absl::GetFlag(FLAGS_mode);
  if (mode == "samples") return Samples(stub);
  if (mode == "load") return Load(stub);
  if (mode == "probe") return Probe(stub);
  if (mode == "wait_ok") return WaitOk(stub);
  std::fprintf(stderr, "unknown --mode=%s\n", mode.c_str());
  return 2;
}
