// TraceContext: the ids that follow one request through a chain of services,
// as baidu_std's RpcRequestMeta carries them (trace_id, span_id,
// parent_span_id, log_id, request_id). One struct for the client's
// CallOptions, the server's ServerContext and the wire header, so the five
// fields are copied as one value.
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

namespace nprpc {

struct TraceContext {
  std::optional<int64_t> trace_id{};        // the whole request's trace
  std::optional<int64_t> span_id{};         // this hop
  std::optional<int64_t> parent_span_id{};  // the caller's hop
  std::optional<int64_t> log_id{};
  std::optional<std::string> request_id{};

  bool empty() const { return !trace_id && !span_id && !parent_span_id && !log_id && !request_id; }

  // The context of a call made on behalf of a call with this context, merged
  // into `outgoing` (what the caller set itself wins): the same trace, log and
  // request id; the parent span is this call's span.
  TraceContext ForOutgoing(TraceContext outgoing) const {
    if (!outgoing.trace_id && trace_id) {
      outgoing.trace_id = trace_id;
      if (!outgoing.parent_span_id) outgoing.parent_span_id = span_id;
    }
    if (!outgoing.log_id) outgoing.log_id = log_id;
    if (!outgoing.request_id) outgoing.request_id = request_id;
    return outgoing;
  }

  friend bool operator==(const TraceContext&, const TraceContext&) = default;
};

}  // namespace nprpc

#endif  // RPC_TRACE_CONTEXT_H_
