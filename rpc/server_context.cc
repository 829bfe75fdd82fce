#include "rpc/server_context.h"

namespace nprpc {

bool ServerContext::IsCancelled() const {
  return cancelled_.load(std::memory_order_acquire) ||
         (connection_closed_ && connection_closed_->load(std::memory_order_acquire)) ||
         deadline_exceeded();
}

const std::string* ServerContext::FindRequestUserField(absl::string_view key) const {
  auto it = request_user_fields_.find(std::string(key));
  return it == request_user_fields_.end() ? nullptr : &it->second;
}

}  // namespace nprpc
