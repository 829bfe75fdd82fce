#include "rpc/internal/client_call.h"

#include <utility>

#include "rpc/errors.h"

namespace nprpc {

bool ClientCall::completed() const {
  netpoll::MutexLock lock(&mu_);
  return completed_;
}

bool ClientCall::answered_by_server() const {
  netpoll::MutexLock lock(&mu_);
  return answered_by_server_;
}

void ClientCall::set_remote_address(std::string address) {
  netpoll::MutexLock lock(&mu_);
  remote_address_ = std::move(address);
}

ClientCall::DoneCallback ClientCall::TakeDoneLocked(const absl::Status& status) {
  completed_ = true;
  if (info_ != nullptr) {
    info_->error_code = status.ok() ? 0 : ErrorCodeOf(status);
    info_->remote_address = remote_address_;
    info_->latency = absl::Now() - start_;
  }
  return std::move(done_);
}

bool ClientCall::CompleteWithAnswer(Decoder decode) {
  DoneCallback done;
  absl::Status status;
  {
    netpoll::MutexLock lock(&mu_);
    if (completed_) return false;
    answered_by_server_ = true;
    status = decode(*response_, info_);
    done = TakeDoneLocked(status);
  }
  done(std::move(status));
  return true;
}

bool ClientCall::Complete(absl::Status status) {
  DoneCallback done;
  {
    netpoll::MutexLock lock(&mu_);
    if (completed_) return false;
    done = TakeDoneLocked(status);
  }
  done(std::move(status));
  return true;
}

}  // namespace nprpc
