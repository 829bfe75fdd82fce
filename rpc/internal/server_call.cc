#include "rpc/internal/server_call.h"

#include <utility>

#include "netpoll/logging.h"
#include "rpc/errors.h"

namespace nprpc {

ServerCall::ServerCall(std::shared_ptr<ServerCore> core, netpoll::ConnectionPtr conn,
                       std::shared_ptr<ServerSession> session, MethodEntry* method)
    : core_(std::move(core)),
      conn_(std::move(conn)),
      session_(std::move(session)),
      method_(method) {}

void ServerCall::Run() {
  if (finished_.load(std::memory_order_acquire)) return;  // answered while queued
  if (ctx_.IsCancelled()) {
    if (ctx_.deadline_exceeded()) {
      FinishByServer(ERPCTIMEDOUT, "Deadline passed before the call started");
    } else {
      FinishByServer(ELOGOFF, "Call cancelled before it started (connection closed)");
    }
    return;
  }
  request_ = method_->handler->NewRequest();
  if (absl::Status s = ParseRequest(*request_); !s.ok()) {
    FinishByServer(EREQUEST, s.message());
    return;
  }
  response_ = method_->handler->NewResponse();
  method_->handler->Call(ctx_, *request_, response_.get(), Responder(shared_from_this()));
}

void ServerCall::FinishByServer(int32_t code, absl::string_view text) {
  Finish(MakeRpcError(code, text), /*by_handler=*/false);
}

void ServerCall::Finish(const absl::Status& status, bool by_handler) {
  if (finished_.exchange(true, std::memory_order_acq_rel)) {
    if (by_handler) {
      NP_LOG(DEBUG) << "dropping the late answer of " << method_->full_name
                    << " (already answered by the server): " << status;
    }
    return;
  }
  if (!by_handler) ctx_.Cancel();
  netpoll::TimerId timer = timer_.exchange(netpoll::kInvalidTimerId, std::memory_order_acq_rel);
  netpoll::LinkBuffer out;
  const bool ok = EncodeAnswer(status, status.ok() ? response_.get() : nullptr, by_handler, out);
  core_->CountAnswer(method_, ok);
  // The slots go back before the write (a client may send its next call the
  // moment it reads this answer); the call gate only after it.
  core_->Release(method_);
  core_->Send(conn_, std::move(out), timer,
              [session = session_, conn = conn_] { session->OnCallDone(conn); });
  core_->LeaveCall();
}

}  // namespace nprpc
