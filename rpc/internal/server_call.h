// ServerCall: one admitted call, protocol-independent, from its slots to its
// single answer. Completed by the handler (Responder -> Complete), by the
// server before the handler runs (bad payload, deadline passed in the queue,
// full pool) or by the deadline timer; the first wins, the others are dropped.
//
// A protocol derives from it and supplies its bytes: ParseRequest() turns the
// request it cut from the connection into the request message (decompressing
// as its wire says), EncodeAnswer() turns the outcome into the frame to write.
//
//   auto call = std::make_shared<BaiduStdCall>(core, conn, session, method, frame);
//   call->context().set_deadline(...);   // what the request carried
//   core->Start(call);
//
// Thread safety: Run() runs once, on a worker or on the loop's thread; Complete() and
// FinishByServer() are safe from any thread, the first wins.
#ifndef RPC_INTERNAL_SERVER_CALL_H_
#define RPC_INTERNAL_SERVER_CALL_H_

#include <atomic>
#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"
#include "netpoll/connection.h"
#include "netpoll/event_loop.h"
#include "netpoll/link_buffer.h"
#include "rpc/interceptor.h"
#include "rpc/internal/protocol.h"
#include "rpc/internal/server_connection.h"
#include "rpc/internal/server_core.h"
#include "rpc/server_context.h"
#include "rpc/service.h"

namespace nprpc {

class ServerCall : public CallCompleter, public std::enable_shared_from_this<ServerCall> {
 public:
  ServerCall(std::shared_ptr<ServerCore> core, netpoll::ConnectionPtr conn,
             std::shared_ptr<ServerSession> session, MethodEntry* method);
  ~ServerCall() override = default;

  ServerContext& context() { return ctx_; }
  MethodEntry* method() const { return method_; }
  const netpoll::ConnectionPtr& connection() const { return conn_; }
  void set_timer(netpoll::TimerId id) { timer_.store(id, std::memory_order_release); }
  // What the session charged to the memory budget for this call (its
  // request frame); handed back to ServerSession::OnCallDone. Set before
  // Start().
  void set_held_bytes(size_t bytes) { held_bytes_ = bytes; }
  // The request's size on the wire (its whole frame), for metrics, spans and
  // interceptors. Set before Start().
  void set_request_bytes(size_t bytes) { request_bytes_ = bytes; }

  // Loop thread, from ServerCore::Start(): the call is admitted now. Gives
  // it its trace (a new span id under the caller's span, a trace id and
  // sampling decision when the request carried none) and, when sampled,
  // starts its span.
  void BeginObserving();

  // Where Run() runs: nested in the loop's read, in a blocking section of
  // the loop (EventLoop::QueueMayBlock), or on a worker.
  enum class Where { kLoop, kLoopSection, kPool };
  // Parses the request and runs the handler; counts where it ran, and under
  // HandlerThreads::kAdaptive tells the method's AdaptivePlacement how long
  // the handler took.
  void Run(Where where);
  // The handler's answer (through its Responder).
  void Complete(absl::Status status) override { Finish(status, /*by_handler=*/true); }
  // The server's own answer (a brpc number, rpc/errors.h); the handler, if
  // running, is told through IsCancelled() and its answer is dropped.
  void FinishByServer(int32_t code, absl::string_view text);
  // The same with any status (e.g. CANCELLED when a gRPC client reset its
  // stream).
  void FinishByServer(const absl::Status& status) { Finish(status, /*by_handler=*/false); }

 protected:
  // Worker or loop, once, before the handler: fills `request` from what the
  // protocol read. An error is answered EREQUEST with its message, or with
  // its brpc number when it is an rpc error (MakeRpcError, e.g. ELIMIT).
  virtual absl::Status ParseRequest(google::protobuf::Message& request) = 0;
  // The answer to write: `response` when `status` is OK, else the error.
  // `by_handler`: the handler completed the call, so the response side of
  // the context (attachment, metadata) is the handler's to send; otherwise
  // the handler may still be writing it and it must not be read. Always
  // yields a frame (an encoding failure becomes an error answer); returns
  // whether the answer is a success.
  virtual bool EncodeAnswer(const absl::Status& status, const google::protobuf::Message* response,
                            bool by_handler, netpoll::LinkBuffer& out) = 0;

  // Any thread, once, from Finish(): hands the encoded answer to the
  // connection and cancels the deadline `timer`. The default queues `answer`
  // on the connection (ServerCore::Send) and then tells the session
  // (ServerSession::OnCallDone) on the loop. A protocol that multiplexes
  // calls on one connection (gRPC) hands the answer to its stream on the
  // loop instead, and tells the session itself.
  virtual void Deliver(netpoll::LinkBuffer answer, netpoll::TimerId timer);
  // A call of a protocol that carries streams returns its ServerStreamCore
  // (this call, for a streaming method); the others return null and their
  // streaming methods are refused (ENOMETHOD) before the handler runs.
  virtual std::shared_ptr<ServerStreamCore> StreamCore() { return nullptr; }

  ServerCore& core() { return *core_; }
  // The call was answered (Finish ran, or is running).
  bool finished() const { return finished_.load(std::memory_order_acquire); }
  const std::shared_ptr<ServerSession>& session() const { return session_; }
  size_t held_bytes() const { return held_bytes_; }
  // Worker: charges n more bytes (a decompressed payload) to the memory
  // budget until the call answers; false when the budget cannot take them.
  bool TryChargeBudget(size_t n);
  // Gives back part of what TryChargeBudget() took.
  void ReleaseBudget(size_t n);

 private:
  void Finish(const absl::Status& status, bool by_handler);
  // Runs the server interceptors' BeforeCall in order; false when one
  // rejected the call (then answered) or the call was answered meanwhile.
  bool RunBeforeCalls();
  // AfterCall of each interceptor whose BeforeCall ran, in reverse order.
  void RunAfterCalls();
  // Span, metrics and interceptors see the outcome (Finish, once).
  void Observe(const absl::Status& status, int32_t code, size_t response_bytes);

  const std::shared_ptr<ServerCore> core_;
  const netpoll::ConnectionPtr conn_;
  const std::shared_ptr<ServerSession> session_;
  MethodEntry* const method_;
  // The connection's state, counting its calls in flight; null in tests
  // that make calls on bare connections.
  ServerConnection* const owner_;

  ServerContext ctx_;
  std::unique_ptr<google::protobuf::Message> request_;
  std::unique_ptr<google::protobuf::Message> response_;
  std::atomic<bool> finished_{false};
  size_t held_bytes_ = 0;  // set before Start(), read by Finish()
  // Charged by TryChargeBudget() on the worker, released by Finish().
  std::atomic<size_t> budget_charge_{0};
  std::atomic<netpoll::TimerId> timer_{netpoll::kInvalidTimerId};

  size_t request_bytes_ = 0;  // set before Start()
  int64_t start_nanos_ = 0;   // admission; set by BeginObserving()
  // Interceptors: BeforeCall runs on the handler's thread while the deadline
  // may finish the call on another; whichever of the two ends second runs the
  // AfterCalls. kChainDone: the BeforeCalls are over (interceptors_ran_ is
  // final); kFinished: the call is answered (outcome_ is final).
  static constexpr int kChainDone = 1, kFinished = 2;
  std::atomic<int> observe_state_{0};
  size_t interceptors_ran_ = 0;
  CallOutcome outcome_;
};

}  // namespace nprpc

#endif  // RPC_INTERNAL_SERVER_CALL_H_
