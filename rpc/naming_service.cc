#include "rpc/naming_service.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace nprpc {

std::vector<ServerNode> StaticNamingService::Nodes() const {
  netpoll::MutexLock lock(&mu_);
  return nodes_;
}

void StaticNamingService::Watch(Watcher watcher) {
  std::vector<ServerNode> nodes;
  {
    netpoll::MutexLock lock(&mu_);
    watchers_.push_back(watcher);
    nodes = nodes_;
  }
  watcher(nodes);
}

void StaticNamingService::Update(const std::vector<ServerNode>& nodes) {
  std::vector<Watcher> watchers;
  {
    netpoll::MutexLock lock(&mu_);
    nodes_ = nodes;
    watchers = watchers_;
  }
  for (const auto& watcher : watchers) watcher(nodes);
}

absl::StatusOr<std::vector<ServerNode>> ParseServerList(absl::string_view target) {
  target = absl::StripAsciiWhitespace(target);
  bool is_list = absl::ConsumePrefix(&target, "list://");
  std::vector<ServerNode> nodes;
  for (absl::string_view item : absl::StrSplit(target, ',', absl::SkipWhitespace())) {
    item = absl::StripAsciiWhitespace(item);
    ServerNode node;
    std::vector<absl::string_view> parts = absl::StrSplit(item, ' ', absl::SkipEmpty());
    node.address = std::string(parts[0]);
    for (size_t i = 1; i < parts.size(); ++i) {
      absl::string_view option = parts[i];
      if (!absl::ConsumePrefix(&option, "w=") || !absl::SimpleAtoi(option, &node.weight) ||
          node.weight <= 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("bad node option '", parts[i], "' in '", item, "' (expected w=N, N>0)"));
      }
    }
    if (!absl::StartsWith(node.address, "unix:") && node.address.find(':') == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("server address '", node.address, "' has no port (host:port)"));
    }
    nodes.push_back(std::move(node));
  }
  if (nodes.empty()) return absl::InvalidArgumentError("no server address given");
  if (!is_list && nodes.size() > 1) {
    return absl::InvalidArgumentError("several addresses need the list:// prefix");
  }
  return nodes;
}

}  // namespace nprpc
