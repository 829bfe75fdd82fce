#include "rpc/tracing.h"

#include <atomic>
#include <cstdio>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "netpoll/logging.h"
#include "rpc/internal/json_quote.h"

namespace nprpc {
namespace {

struct TracingState {
  netpoll::Mutex mu;
  TracingOptions options ABSL_GUARDED_BY(mu);
  // The edge sampler's token bucket: the second it counts and the traces
  // sampled in it.
  std::atomic<int> max_per_second{TracingOptions().max_sampled_per_second};
  std::atomic<int64_t> second{0};
  std::atomic<int> used{0};
};

TracingState& State() {
  static TracingState* const state = new TracingState();
  return *state;
}

}  // namespace

void ConfigureTracing(const TracingOptions& options) {
  TracingState& state = State();
  {
    netpoll::MutexLock lock(&state.mu);
    state.options = options;
  }
  state.max_per_second.store(options.max_sampled_per_second, std::memory_order_relaxed);
  SpanStore::Default().Configure(options.max_spans, options.json_lines_path);
}

TracingOptions CurrentTracingOptions() {
  TracingState& state = State();
  netpoll::MutexLock lock(&state.mu);
  return state.options;
}

bool SampleNewTrace() {
  TracingState& state = State();
  const int max = state.max_per_second.load(std::memory_order_relaxed);
  if (max <= 0) return false;
  const int64_t now = absl::GetCurrentTimeNanos() / 1000000000;
  int64_t second = state.second.load(std::memory_order_relaxed);
  if (second != now && state.second.compare_exchange_strong(second, now)) {
    state.used.store(0, std::memory_order_relaxed);
  }
  // Racing resets may let a few more through at a second's edge; the bound
  // is per second, not exact. Once the second's share is used, calls only
  // read the shared counter (no write to a line every thread reads).
  if (state.used.load(std::memory_order_relaxed) >= max) return false;
  return state.used.fetch_add(1, std::memory_order_relaxed) < max;
}

bool StartTraceIfAbsent(TraceContext& trace) {
  if (trace.trace_id) return false;
  trace.trace_id = NewTraceId();
  trace.trace_id_high.reset();
  trace.sampled = SampleNewTrace();
  return true;
}

std::shared_ptr<ActiveSpan> StartSpan(Span::Kind kind, const TraceContext& trace,
                                      std::string method, absl::string_view protocol,
                                      std::string peer, absl::Time start) {
  if (!trace.sampled.value_or(false)) return nullptr;
  Span span;
  span.kind = kind;
  span.trace_id = trace.trace_id.value_or(0);
  span.trace_id_high = trace.trace_id_high.value_or(0);
  span.span_id = trace.span_id.value_or(0);
  span.parent_span_id = trace.parent_span_id.value_or(0);
  span.method = std::move(method);
  span.protocol = std::string(protocol);
  span.peer = std::move(peer);
  span.start = start;
  return std::make_shared<ActiveSpan>(std::move(span));
}

std::string Span::ToJson() const {
  std::string out = absl::StrFormat(
      R"({"trace_id":"%016x%016x","span_id":"%016x","parent_span_id":"%016x","kind":"%s",)",
      static_cast<uint64_t>(trace_id_high), static_cast<uint64_t>(trace_id),
      static_cast<uint64_t>(span_id), static_cast<uint64_t>(parent_span_id),
      kind == Kind::kServer ? "server" : "client");
  absl::StrAppend(&out, R"("method":)", JsonQuote(method), R"(,"protocol":)", JsonQuote(protocol),
                  R"(,"peer":)", JsonQuote(peer), R"(,"start_unix_us":)", absl::ToUnixMicros(start),
                  R"(,"duration_us":)", absl::ToInt64Microseconds(duration), R"(,"error_code":)",
                  error_code, R"(,"error_text":)", JsonQuote(error_text), R"(,"request_bytes":)",
                  request_bytes, R"(,"response_bytes":)", response_bytes, R"(,"annotations":[)");
  for (size_t i = 0; i < annotations.size(); ++i) {
    absl::StrAppend(&out, i == 0 ? "" : ",", R"({"offset_us":)",
                    absl::ToInt64Microseconds(annotations[i].first - start), R"(,"text":)",
                    JsonQuote(annotations[i].second), "}");
  }
  out += "]}";
  return out;
}

void ActiveSpan::Annotate(absl::string_view text) {
  netpoll::MutexLock lock(&mu_);
  if (ended_) return;
  span_.annotations.emplace_back(absl::Now(), std::string(text));
}

void ActiveSpan::SetPeer(absl::string_view peer) {
  netpoll::MutexLock lock(&mu_);
  if (!ended_) span_.peer = std::string(peer);
}

void ActiveSpan::End(int32_t error_code, absl::string_view error_text, size_t request_bytes,
                     size_t response_bytes) {
  Span span;
  {
    netpoll::MutexLock lock(&mu_);
    if (ended_) return;
    ended_ = true;
    span = std::move(span_);
  }
  span.duration = absl::Now() - span.start;
  span.error_code = error_code;
  span.error_text = std::string(error_text);
  span.request_bytes = request_bytes;
  span.response_bytes = response_bytes;
  SpanStore::Default().Add(std::move(span));
}

SpanStore& SpanStore::Default() {
  static SpanStore* const store = new SpanStore();
  return *store;
}

void SpanStore::Configure(size_t max_spans, const std::string& json_lines_path) {
  netpoll::MutexLock lock(&mu_);
  max_spans_ = max_spans;
  while (spans_.size() > max_spans_) spans_.pop_front();
  if (json_lines_path != sink_path_) {
    if (sink_ != nullptr) std::fclose(sink_);
    sink_ = nullptr;
    sink_path_ = json_lines_path;
    if (!sink_path_.empty()) {
      sink_ = std::fopen(sink_path_.c_str(), "a");
      if (sink_ == nullptr) {
        NP_LOG(WARNING) << "tracing: cannot open " << sink_path_ << " for spans; not writing them";
      }
    }
  }
}

void SpanStore::Add(Span span) {
  netpoll::MutexLock lock(&mu_);
  ++recorded_;
  if (sink_ != nullptr) {
    const std::string line = span.ToJson() + "\n";
    // One line per span, flushed so a collector tailing the file sees whole
    // lines (sampled spans are few: max_sampled_per_second).
    std::fwrite(line.data(), 1, line.size(), sink_);
    std::fflush(sink_);
  }
  if (max_spans_ == 0) return;
  if (spans_.size() >= max_spans_) spans_.pop_front();
  spans_.push_back(std::move(span));
}

std::vector<Span> SpanStore::Recent(size_t limit, int64_t trace_id) const {
  netpoll::MutexLock lock(&mu_);
  std::vector<Span> out;
  for (auto it = spans_.rbegin(); it != spans_.rend() && out.size() < limit; ++it) {
    if (trace_id == 0 || it->trace_id == trace_id) out.push_back(*it);
  }
  return out;
}

int64_t SpanStore::recorded() const {
  netpoll::MutexLock lock(&mu_);
  return recorded_;
}

void SpanStore::Clear() {
  netpoll::MutexLock lock(&mu_);
  spans_.clear();
  recorded_ = 0;
}

}  // namespace nprpc
