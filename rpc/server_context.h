// ServerContext: what a handler sees of one call besides its request and
// response messages.
//
//   absl::Status Echo(nprpc::ServerContext& ctx, const EchoRequest& req, EchoResponse* resp) {
//     if (ctx.IsCancelled()) return nprpc::MakeRpcError(nprpc::ERPCTIMEDOUT, "too late");
//     resp->set_message(req.message());
//     ctx.response_attachment() = std::move(ctx.request_attachment());  // no copy
//     ctx.response_user_fields()["x-served-by"] = "me";
//     return absl::OkStatus();
//   }
//
// The server fills the request side (names, deadline, ids, user_fields,
// attachment, addresses) before the handler runs; the handler may set the
// response side (attachment, user_fields, compression) until it completes the
// call. A default-constructed context (no deadline, nothing set) is valid, so
// tests and generated code can build one directly with the setters.
//
// Thread safety: one thread at a time may use a context, except IsCancelled(),
// deadline_exceeded(), OnCancel() and Cancel(), which are safe from any thread. The server
// hands the context to the handler and reads the response side only after the
// handler completed the call (the completion is the hand-off).
//
// Lifetime: owned by the server's call; valid until the handler completes the
// call and has dropped every copy of its Responder.
#ifndef RPC_SERVER_CONTEXT_H_
#define RPC_SERVER_CONTEXT_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "netpoll/link_buffer.h"
#include "netpoll/mutex.h"
#include "netpoll/socket_address.h"
#include "rpc/authenticator.h"
#include "rpc/baidu_std.h"
#include "rpc/trace_context.h"
#include "rpc/tracing.h"

namespace nprpc {

// Which of an incoming call's user fields (metadata) flow into the calls made
// on its behalf (PropagateContext()). None by default: a credential sent to a
// gateway must not reach every service behind it. The deadline and the trace
// context always flow.
struct MetadataForwarding {
  std::vector<std::string> keys{};      // exact names, e.g. "x-tenant"
  std::vector<std::string> prefixes{};  // e.g. "x-b3-"

  bool Forwards(absl::string_view key) const;
};

class ServerContext {
 public:
  // Ordered by key: responses list their user_fields sorted, deterministically.
  using UserFields = std::map<std::string, std::string>;

  ServerContext() = default;
  ServerContext(const ServerContext&) = delete;
  ServerContext& operator=(const ServerContext&) = delete;

  // ---------------------------------------------------------- The call

  // Full service name ("example.EchoService") and method name ("Echo").
  const std::string& service_name() const { return service_name_; }
  const std::string& method_name() const { return method_name_; }
  // The request's correlation_id (echoed by the response).
  int64_t correlation_id() const { return correlation_id_; }

  // When the client stops waiting: arrival + the request's timeout_ms;
  // InfiniteFuture() when the request carried none.
  absl::Time deadline() const { return deadline_; }
  // The request's timeout_ms, when it carried one.
  std::optional<int32_t> timeout_ms() const { return timeout_ms_; }
  // True once the deadline has passed. Any thread.
  bool deadline_exceeded() const { return absl::Now() >= deadline_; }
  // True when nobody is waiting for the answer any more: the deadline passed,
  // or the server already answered for the handler (its deadline timer or a
  // forced shutdown) or lost the connection. A handler may stop early then;
  // its completion is dropped. Any thread.
  bool IsCancelled() const;
  // Runs `callback` once when the server cancels the call: its deadline
  // timer fired, the server answered for the handler (forced shutdown, a
  // refusal), or, for a gRPC call, the client reset its stream (RST_STREAM:
  // the client cancelled or its own deadline passed) or the connection was
  // lost. At once, on the calling thread, when the call is cancelled
  // already; otherwise on the thread that cancels it (often the connection's
  // loop thread: the callback must not block). Never runs for a call the
  // handler completed first. A baidu_std or HTTP/1.1 connection lost while
  // its handler runs is seen by IsCancelled() only. Any thread.
  void OnCancel(absl::AnyInvocable<void()> callback);

  // ---------------------------------------------------------- Request side

  // The request meta's user_fields (last entry wins for a repeated key).
  const UserFields& request_user_fields() const { return request_user_fields_; }
  // nullptr when absent.
  const std::string* FindRequestUserField(absl::string_view key) const;
  // Which request user fields the calls made for this one carry
  // (ServerOptions::forward_metadata; by default none).
  const MetadataForwarding& metadata_forwarding() const;

  // This call's trace: the trace id (the request's, or a new one when this
  // server is the edge), a new span id for this hop, the caller's span as
  // parent, and the sampling decision (rpc/tracing.h).
  const TraceContext& trace() const { return trace_; }
  // Notes `text` with the time in this call's span, shown at /rpcz, when the
  // trace is sampled; does nothing otherwise (cheap to leave in).
  void Annotate(absl::string_view text) {
    if (span_ != nullptr) span_->Annotate(text);
  }
  // The request meta's authentication_data (empty when absent).
  const std::string& authentication_data() const { return authentication_data_; }
  // What ServerOptions::authenticator verified for this call's connection;
  // null when the server has no authenticator.
  const AuthContext* auth_context() const { return auth_context_.get(); }
  // The protocol the call arrived in: "baidu_std", "http", "grpc".
  absl::string_view protocol() const { return protocol_; }

  // The raw bytes after the request payload, sliced out of the connection's
  // input (no copy). The handler may move them, e.g. into the response
  // attachment.
  netpoll::LinkBuffer& request_attachment() { return request_attachment_; }

  const netpoll::SocketAddress& peer_address() const { return peer_address_; }
  const netpoll::SocketAddress& local_address() const { return local_address_; }

  // ---------------------------------------------------------- Response side

  // Sent after the response payload, without copy. Ignored for an error
  // answer (brpc sends neither payload nor attachment with an error).
  netpoll::LinkBuffer& response_attachment() { return response_attachment_; }
  // Sent in the response meta's user_fields, sorted by key. Also sent with an
  // error answer.
  UserFields& response_user_fields() { return response_user_fields_; }
  // gRPC only: trailing metadata, sent with grpc-status after the last
  // response message (response_user_fields() are the initial metadata, the
  // response headers). Keys are lower case; a key ending in "-bin" carries
  // bytes (base64 on the wire). Other protocols have no trailers and ignore
  // it.
  UserFields& response_trailers() { return response_trailers_; }
  // How to compress the response payload; default none (brpc's default too:
  // compressed requests are answered uncompressed unless the handler asks).
  CompressType response_compress_type() const { return response_compress_type_; }
  void set_response_compress_type(CompressType type) { response_compress_type_ = type; }

  // ---------------------------------------------------------- Set by the server
  // (and by tests or generated code building a context by hand).

  void set_service_name(std::string name) { service_name_ = std::move(name); }
  void set_method_name(std::string name) { method_name_ = std::move(name); }
  void set_correlation_id(int64_t id) { correlation_id_ = id; }
  void set_deadline(absl::Time deadline) { deadline_ = deadline; }
  void set_timeout_ms(std::optional<int32_t> ms) { timeout_ms_ = ms; }
  UserFields& mutable_request_user_fields() { return request_user_fields_; }
  void set_trace(TraceContext trace) { trace_ = std::move(trace); }
  // The span Annotate() writes to (sampled calls); null: not recorded.
  void set_span(std::shared_ptr<ActiveSpan> span) { span_ = std::move(span); }
  const std::shared_ptr<ActiveSpan>& span() const { return span_; }
  // `forwarding` is not owned and must outlive the context (the server passes
  // its options'); null: forward nothing.
  void set_metadata_forwarding(const MetadataForwarding* forwarding) { forwarding_ = forwarding; }
  void set_authentication_data(std::string v) { authentication_data_ = std::move(v); }
  void set_auth_context(std::shared_ptr<const AuthContext> c) { auth_context_ = std::move(c); }
  // A static string ("baidu_std").
  void set_protocol(absl::string_view protocol) { protocol_ = protocol; }
  void set_peer_address(const netpoll::SocketAddress& a) { peer_address_ = a; }
  void set_local_address(const netpoll::SocketAddress& a) { local_address_ = a; }
  // Marks the call cancelled (IsCancelled() turns true) and runs the
  // OnCancel() callbacks, the first time only. Any thread.
  void Cancel();
  // The handler completed the call: OnCancel() callbacks will never run and
  // are destroyed now (they may hold the call). Any thread.
  void DropCancelCallbacks();
  // A flag the server raises when the call's connection closes; IsCancelled()
  // reads it. Shared by every call of one connection.
  void set_connection_closed_flag(std::shared_ptr<const std::atomic<bool>> flag) {
    connection_closed_ = std::move(flag);
  }

 private:
  std::string service_name_;
  std::string method_name_;
  int64_t correlation_id_ = 0;
  absl::Time deadline_ = absl::InfiniteFuture();
  std::optional<int32_t> timeout_ms_;
  std::atomic<bool> cancelled_{false};
  netpoll::Mutex cancel_mu_;
  // OnCancel() callbacks waiting for Cancel(); taken (and run) by it.
  std::vector<absl::AnyInvocable<void()>> on_cancel_ ABSL_GUARDED_BY(cancel_mu_);
  std::atomic<bool> has_on_cancel_{false};                      // on_cancel_ may be non-empty
  std::shared_ptr<const std::atomic<bool>> connection_closed_;  // may be null

  UserFields request_user_fields_;
  TraceContext trace_;
  std::shared_ptr<ActiveSpan> span_;                // sampled calls only
  const MetadataForwarding* forwarding_ = nullptr;  // not owned
  std::string authentication_data_;
  std::shared_ptr<const AuthContext> auth_context_;  // shared by the connection's calls
  absl::string_view protocol_ = "baidu_std";         // static storage
  netpoll::LinkBuffer request_attachment_;
  netpoll::SocketAddress peer_address_;
  netpoll::SocketAddress local_address_;

  netpoll::LinkBuffer response_attachment_;
  UserFields response_user_fields_;
  UserFields response_trailers_;
  CompressType response_compress_type_ = CompressType::kNone;
};

}  // namespace nprpc

#endif  // RPC_SERVER_CONTEXT_H_
