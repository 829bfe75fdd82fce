#include "rpc/context_propagation.h"

#include <algorithm>
#include <string>
#include <utility>

namespace nprpc {
namespace {

thread_local const ServerContext* current_context = nullptr;

bool HasKey(const std::vector<std::pair<std::string, std::string>>& metadata,
            const std::string& key) {
  return std::any_of(metadata.begin(), metadata.end(),
                     [&](const auto& entry) { return entry.first == key; });
}

}  // namespace

const ServerContext* CurrentServerContext() { return current_context; }

ScopedServerContext::ScopedServerContext(const ServerContext* context)
    : previous_(current_context) {
  current_context = context;
}

ScopedServerContext::~ScopedServerContext() { current_context = previous_; }

CallOptions PropagateContext(const ServerContext& context, CallOptions options) {
  options.deadline = std::min(options.deadline, context.deadline());
  const MetadataForwarding& forwarding = context.metadata_forwarding();
  for (const auto& [key, value] : context.request_user_fields()) {
    if (forwarding.Forwards(key) && !HasKey(options.metadata, key)) {
      options.metadata.emplace_back(key, value);
    }
  }
  options.trace = context.trace().ForOutgoing(std::move(options.trace));
  return options;
}

}  // namespace nprpc
