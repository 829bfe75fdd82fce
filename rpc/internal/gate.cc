#include "rpc/internal/gate.h"

#include "netpoll/logging.h"

namespace nprpc {

bool Gate::TryEnter() {
  netpoll::MutexLock lock(&mu_);
  if (closed_) return false;
  ++size_;
  return true;
}

void Gate::Leave() {
  netpoll::MutexLock lock(&mu_);
  NP_CHECK(size_ > 0) << "Gate::Leave without a matching TryEnter";
  if (--size_ == 0) empty_.SignalAll();
}

void Gate::Close() {
  netpoll::MutexLock lock(&mu_);
  closed_ = true;
}

bool Gate::WaitUntilEmpty(absl::Time deadline) {
  netpoll::MutexLock lock(&mu_);
  while (size_ > 0) {
    if (empty_.WaitWithDeadline(&mu_, deadline)) break;  // timed out
  }
  return size_ == 0;
}

bool Gate::closed() const {
  netpoll::MutexLock lock(&mu_);
  return closed_;
}

int64_t Gate::size() const {
  netpoll::MutexLock lock(&mu_);
  return size_;
}

}  // namespace nprpc
