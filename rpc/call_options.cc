#include "rpc/call_options.h"

namespace nprpc {

CancellationToken::CancellationToken() : state_(std::make_shared<State>()) {}

void CancellationToken::Cancel() const {
  std::vector<std::pair<uint64_t, absl::AnyInvocable<void()>>> callbacks;
  {
    netpoll::MutexLock lock(&state_->mu);
    if (state_->cancelled) return;
    state_->cancelled = true;
    callbacks.swap(state_->callbacks);
  }
  for (auto& [id, callback] : callbacks) callback();
}

bool CancellationToken::IsCancelled() const {
  netpoll::MutexLock lock(&state_->mu);
  return state_->cancelled;
}

uint64_t CancellationToken::Register(absl::AnyInvocable<void()> on_cancel) const {
  uint64_t id;
  {
    netpoll::MutexLock lock(&state_->mu);
    id = state_->next_id++;
    if (!state_->cancelled) {
      state_->callbacks.emplace_back(id, std::move(on_cancel));
      return id;
    }
  }
  on_cancel();
  return id;
}

void CancellationToken::Unregister(uint64_t id) const {
  netpoll::MutexLock lock(&state_->mu);
  auto& callbacks = state_->callbacks;
  for (auto it = callbacks.begin(); it != callbacks.end(); ++it) {
    if (it->first == id) {
      callbacks.erase(it);
      return;
    }
  }
}

}  // namespace nprpc
