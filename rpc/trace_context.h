// TraceContext: the ids that follow one request through a chain of services,
// as baidu_std's RpcRequestMeta carries them (trace_id, span_id,
// parent_span_id, log_id, request_id). One struct for the client's
// CallOptions, the server's ServerContext and the wire header, so the five
// fields are copied as one value. W3C Trace Context (`traceparent`) maps onto
// it where a call crosses HTTP or gRPC: its 128-bit trace-id is trace_id_high
// and trace_id, its parent-id the span_id, its sampled flag `sampled`.
//
//   nprpc::CallOptions options;
//   options.trace.request_id = "req-42";
//   options.trace.log_id = 123456789;
//
// Thread safety: a plain value.
#ifndef RPC_TRACE_CONTEXT_H_
#define RPC_TRACE_CONTEXT_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace nprpc {

struct TraceContext {
  std::optional<int64_t> trace_id{};        // the whole request's trace
  std::optional<int64_t> span_id{};         // this hop
  std::optional<int64_t> parent_span_id{};  // the caller's hop
  std::optional<int64_t> log_id{};
  std::optional<std::string> request_id{};
  // The high 64 bits of a W3C 128-bit trace-id (baidu_std carries only the
  // low 64 bits, trace_id).
  std::optional<int64_t> trace_id_high{};
  // Whether the trace is recorded (decided once, at the edge, and carried).
  std::optional<bool> sampled{};

  bool empty() const { return !trace_id && !span_id && !parent_span_id && !log_id && !request_id; }

  // The context of a call made on behalf of a call with this context, merged
  // into `outgoing` (what the caller set itself wins): the same trace, log and
  // request id; the parent span is this call's span.
  TraceContext ForOutgoing(TraceContext outgoing) const {
    if (!outgoing.trace_id && trace_id) {
      outgoing.trace_id = trace_id;
      if (!outgoing.parent_span_id) outgoing.parent_span_id = span_id;
      if (!outgoing.trace_id_high) outgoing.trace_id_high = trace_id_high;
      if (!outgoing.sampled) outgoing.sampled = sampled;
    }
    if (!outgoing.log_id) outgoing.log_id = log_id;
    if (!outgoing.request_id) outgoing.request_id = request_id;
    return outgoing;
  }

  friend bool operator==(const TraceContext&, const TraceContext&) = default;
};

// "00-<32 hex trace-id>-<16 hex parent-id>-<2 hex flags>" (W3C Trace Context,
// version 00; later versions are read by their first four fields). Fills
// trace_id_high, trace_id, span_id (the caller's span) and sampled; nullopt
// for a malformed value or the all-zero ids the spec forbids.
std::optional<TraceContext> ParseTraceparent(absl::string_view value);
// The traceparent of a call with `trace`: its trace ids and span_id as the
// parent-id; empty when trace_id or span_id is missing.
std::string FormatTraceparent(const TraceContext& trace);
// A random non-zero id for a new trace or span. Any thread.
int64_t NewTraceId();

}  // namespace nprpc

#endif  // RPC_TRACE_CONTEXT_H_
