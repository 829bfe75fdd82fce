#include "rpc/server_context.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"

namespace nprpc {

bool MetadataForwarding::Forwards(absl::string_view key) const {
  return std::find(keys.begin(), keys.end(), key) != keys.end() ||
         std::any_of(prefixes.begin(), prefixes.end(),
                     [&](const std::string& prefix) { return absl::StartsWith(key, prefix); });
}

const MetadataForwarding& ServerContext::metadata_forwarding() const {
  static const MetadataForwarding kNone;
  return forwarding_ != nullptr ? *forwarding_ : kNone;
}

bool ServerContext::IsCancelled() const {
  return cancelled_.load(std::memory_order_acquire) ||
         (connection_closed_ && connection_closed_->load(std::memory_order_acquire)) ||
         deadline_exceeded();
}

void ServerContext::Cancel() {
  std::vector<absl::AnyInvocable<void()>> callbacks;
  {
    netpoll::MutexLock lock(&cancel_mu_);
    if (cancelled_.exchange(true, std::memory_order_acq_rel)) return;
    callbacks.swap(on_cancel_);
  }
  for (absl::AnyInvocable<void()>& callback : callbacks) callback();
}

void ServerContext::OnCancel(absl::AnyInvocable<void()> callback) {
  {
    netpoll::MutexLock lock(&cancel_mu_);
    if (!cancelled_.load(std::memory_order_acquire)) {
      on_cancel_.push_back(std::move(callback));
      has_on_cancel_.store(true, std::memory_order_release);
      return;
    }
  }
  callback();
}

void ServerContext::DropCancelCallbacks() {
  if (!has_on_cancel_.load(std::memory_order_acquire)) return;  // the common case: none
  std::vector<absl::AnyInvocable<void()>> callbacks;
  {
    netpoll::MutexLock lock(&cancel_mu_);
    callbacks.swap(on_cancel_);
  }
}

const std::string* ServerContext::FindRequestUserField(absl::string_view key) const {
  auto it = request_user_fields_.find(std::string(key));
  return it == request_user_fields_.end() ? nullptr : &it->second;
}

}  // namespace nprpc
