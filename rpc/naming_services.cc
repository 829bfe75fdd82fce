#include "rpc/naming_services.h"

#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "netpoll/mutex.h"
#include "rpc/file_naming_service.h"

namespace nprpc {
namespace {

bool IsBuiltIn(absl::string_view scheme) {
  return scheme == "list" || scheme == "dns" || scheme == "file" || scheme == "unix";
}

struct SchemeRegistry {
  netpoll::Mutex mu;
  absl::flat_hash_map<std::string, NamingSchemeFactory> factories ABSL_GUARDED_BY(mu);
};

SchemeRegistry& Registry() {
  static auto* registry = new SchemeRegistry();  // never destroyed: usable during exit
  return *registry;
}

}  // namespace

absl::Status RegisterNamingScheme(const std::string& scheme, const NamingSchemeFactory& factory) {
  if (IsBuiltIn(scheme)) {
    return absl::AlreadyExistsError(absl::StrCat("naming scheme '", scheme, "' is built in"));
  }
  SchemeRegistry& registry = Registry();
  netpoll::MutexLock lock(&registry.mu);
  if (!registry.factories.emplace(scheme, factory).second) {
    return absl::AlreadyExistsError(
        absl::StrCat("naming scheme '", scheme, "' is already registered"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<NamingService>> CreateNamingService(absl::string_view target,
                                                                   const NamingOptions& options) {
  target = absl::StripAsciiWhitespace(target);
  const size_t separator = target.find("://");
  const absl::string_view scheme =
      separator == absl::string_view::npos ? "" : target.substr(0, separator);
  const absl::string_view rest =
      separator == absl::string_view::npos ? target : target.substr(separator + 3);
  if (scheme.empty() || scheme == "list") {
    absl::StatusOr<std::vector<ServerNode>> nodes = ParseServerList(target);
    if (!nodes.ok()) return nodes.status();
    return std::make_shared<StaticNamingService>(std::move(*nodes));
  }
  if (scheme == "dns") {
    absl::StatusOr<std::unique_ptr<DnsNamingService>> dns =
        DnsNamingService::Create(rest, options.dns);
    if (!dns.ok()) return dns.status();
    return std::shared_ptr<NamingService>(std::move(*dns));
  }
  if (scheme == "file") {
    absl::StatusOr<std::unique_ptr<FileNamingService>> file =
        FileNamingService::Create(std::string(rest));
    if (!file.ok()) return file.status();
    return std::shared_ptr<NamingService>(std::move(*file));
  }
  NamingSchemeFactory factory;
  {
    SchemeRegistry& registry = Registry();
    netpoll::MutexLock lock(&registry.mu);
    auto it = registry.factories.find(scheme);
    if (it != registry.factories.end()) factory = it->second;
  }
  if (!factory) {
    return absl::InvalidArgumentError(absl::StrCat("unknown naming scheme '", scheme, "' in '",
                                                   target, "' (list, dns, file or registered)"));
  }
  return factory(rest);
}

}  // namespace nprpc
