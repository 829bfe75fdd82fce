// Tracing: spans of sampled calls, kept in a bounded in-memory ring (shown
// at /rpcz, as brpc's rpcz) and optionally written as JSON lines for a
// collector.
//
// Ids (rpc/trace_context.h): every hop gets a new span id whose parent is the
// caller's span. A server call's span is a child of the span the request
// carried; a client call's span is a child of the server call it is made
// for (TraceContext::ForOutgoing, done by generated stubs). A call that
// arrives without a trace id, or a client call made outside any call, is the
// edge: it creates the trace id and decides whether the trace is sampled;
// the decision travels with the call (baidu_std: a `traceparent` user field
// beside brpc's trace fields; HTTP and gRPC: the `traceparent` header). A
// brpc peer that sends a trace_id without a decision is taken as sampled
// (brpc only sends the ids of traced calls).
//
//   nprpc::TracingOptions tracing;
//   tracing.max_sampled_per_second = 1000;       // at the edge
//   tracing.json_lines_path = "/var/log/app/spans.jsonl";
//   nprpc::ConfigureTracing(tracing);
//   ...
//   void Handler(nprpc::ServerContext& ctx, ...) { ctx.Annotate("cache miss"); }
//
// Thread safety: every function and SpanStore method is safe from any thread.
#ifndef RPC_TRACING_H_
#define RPC_TRACING_H_

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "netpoll/mutex.h"
#include "rpc/trace_context.h"

namespace nprpc {

struct TracingOptions {
  // Edge sampling: at most this many new traces per second are sampled
  // (token bucket, per process); 0 samples none. Calls of traces sampled
  // upstream are always recorded.
  int max_sampled_per_second = 100;
  // Finished spans kept in memory for /rpcz (the oldest are dropped).
  size_t max_spans = 2048;
  // Non-empty: every finished span is appended to this file as one JSON
  // object per line.
  std::string json_lines_path;
};

// Applies to calls started from now on. Any thread.
void ConfigureTracing(const TracingOptions& options);
TracingOptions CurrentTracingOptions();

// Whether a new trace starting here (at the edge) is sampled. Any thread.
bool SampleNewTrace();
// The edge: when `trace` has no trace id, gives it a new one and the
// sampling decision (SampleNewTrace()) and returns true; false otherwise.
bool StartTraceIfAbsent(TraceContext& trace);

// One finished (or running) call as a trace shows it.
struct Span {
  enum class Kind { kServer, kClient };
  Kind kind = Kind::kServer;
  int64_t trace_id = 0;
  int64_t trace_id_high = 0;
  int64_t span_id = 0;
  int64_t parent_span_id = 0;  // 0: a root span
  std::string method;          // "package.Service/Method"
  std::string protocol;        // "baidu_std", "http", ...
  std::string peer;            // the other side's address
  absl::Time start;
  absl::Duration duration;
  int32_t error_code = 0;  // brpc number; 0 on success
  std::string error_text;
  size_t request_bytes = 0;
  size_t response_bytes = 0;
  // What the handler (or the client code) noted, with when.
  std::vector<std::pair<absl::Time, std::string>> annotations;

  // {"trace_id":"<32 hex>","span_id":"<16 hex>",...} on one line.
  std::string ToJson() const;
};

// A span being recorded: annotations may arrive from the handler's thread
// while the server finishes the call on another (a deadline). Any thread.
class ActiveSpan {
 public:
  explicit ActiveSpan(Span span) : span_(std::move(span)) {}
  void Annotate(absl::string_view text);
  // The other side's address, once known (a client span's endpoint).
  void SetPeer(absl::string_view peer);
  // Completes the span (once; later annotations are dropped) and hands it to
  // SpanStore::Default().
  void End(int32_t error_code, absl::string_view error_text, size_t request_bytes,
           size_t response_bytes);

 private:
  netpoll::Mutex mu_;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  Span span_ ABSL_GUARDED_BY(mu_);
};

// The span of a call sent or received with `trace` (trace_id and span_id
// set), begun at `start`, when the trace is sampled; null when it is not
// (callers on the hot path test trace.sampled first, so that the strings
// are not made for nothing).
std::shared_ptr<ActiveSpan> StartSpan(Span::Kind kind, const TraceContext& trace,
                                      std::string method, absl::string_view protocol,
                                      std::string peer, absl::Time start);

// The process's recent spans (a bounded ring) and the JSON-lines sink.
class SpanStore {
 public:
  static SpanStore& Default();

  void Add(Span span);
  // Newest first; at most `limit`; only `trace_id` when non-zero.
  std::vector<Span> Recent(size_t limit, int64_t trace_id = 0) const;
  // Spans recorded since start (also those dropped from the ring).
  int64_t recorded() const;
  // Tests: forgets every span.
  void Clear();
  // ConfigureTracing(): the ring's size and the JSON-lines file.
  void Configure(size_t max_spans, const std::string& json_lines_path);

 private:
  mutable netpoll::Mutex mu_;
  std::deque<Span> spans_ ABSL_GUARDED_BY(mu_);
  size_t max_spans_ ABSL_GUARDED_BY(mu_) = 2048;
  int64_t recorded_ ABSL_GUARDED_BY(mu_) = 0;
  std::string sink_path_ ABSL_GUARDED_BY(mu_);
  std::FILE* sink_ ABSL_GUARDED_BY(mu_) = nullptr;
};

}  // namespace nprpc

#endif  // RPC_TRACING_H_
