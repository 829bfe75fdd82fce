// Context propagation: the incoming call a handler works for, and how its
// deadline, trace ids and metadata flow into the calls made on its behalf.
//
// The generated server bases make the incoming call current while a handler
// runs (ScopedServerContext); generated stubs and CallMethodAsync() merge it
// into their CallOptions (PropagateContext()). Coroutines carry it across
// suspensions (rpc/task.h, "Context propagation").
//
// Thread safety: CurrentServerContext() and ScopedServerContext are per
// thread; PropagateContext() is pure.
#ifndef RPC_CONTEXT_PROPAGATION_H_
#define RPC_CONTEXT_PROPAGATION_H_

#include "rpc/call_options.h"
#include "rpc/server_context.h"

namespace nprpc {

// The incoming call whose handler runs on this thread now (set by
// ScopedServerContext), or null.
const ServerContext* CurrentServerContext();

// Makes `context` current on this thread for its scope (nesting restores the
// previous one). Used by generated handlers; `context` must outlive the scope.
class ScopedServerContext {
 public:
  explicit ScopedServerContext(const ServerContext* context);
  ~ScopedServerContext();
  ScopedServerContext(const ScopedServerContext&) = delete;
  ScopedServerContext& operator=(const ScopedServerContext&) = delete;

 private:
  const ServerContext* const previous_;
};

// `options` for an outgoing call made on behalf of the incoming call
// `context`: the deadline becomes the earlier of both; the trace context
// follows (TraceContext::ForOutgoing: trace_id, parent_span_id = the incoming
// span_id, log_id and request_id, each when `options` has none); the incoming
// request's user fields that context.metadata_forwarding() names
// (ServerOptions::forward_metadata; none by default) are added to `metadata`
// unless it already has the key. Pure.
CallOptions PropagateContext(const ServerContext& context, CallOptions options);

}  // namespace nprpc

#endif  // RPC_CONTEXT_PROPAGATION_H_
