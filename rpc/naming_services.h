// CreateNamingService: the naming service a channel target names.
//
//   "host:port", "[v6]:port", "unix:/path"   one endpoint (StaticNamingService)
//   "list://a:80 w=2,b:80"                    a static list
//   "dns://name:port"                         DnsNamingService
//   "file:///path"                            FileNamingService
//   "<scheme>://..."                          a registered scheme (etcd, ...)
//
//   auto naming = nprpc::CreateNamingService("dns://backend.internal:8000");
//
// A library adds a scheme once at start-up (the etcd naming service does):
//
//   nprpc::RegisterNamingScheme("etcd", [](absl::string_view rest) { ... });
//
// Thread safety: both functions are safe from any thread.
#ifndef RPC_NAMING_SERVICES_H_
#define RPC_NAMING_SERVICES_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "rpc/dns_naming_service.h"
#include "rpc/naming_service.h"

namespace nprpc {

struct NamingOptions {
  DnsNamingOptions dns;
};

// Makes the service for "scheme://rest" from `rest` (the text after "://").
using NamingSchemeFactory =
    std::function<absl::StatusOr<std::shared_ptr<NamingService>>(absl::string_view rest)>;

// Adds a scheme. ALREADY_EXISTS for a built-in or already registered one.
absl::Status RegisterNamingScheme(const std::string& scheme, const NamingSchemeFactory& factory);

// INVALID_ARGUMENT for an unknown scheme or a malformed target; the
// service's own errors otherwise (a file that cannot be read, ...).
absl::StatusOr<std::shared_ptr<NamingService>> CreateNamingService(
    absl::string_view target, const NamingOptions& options = NamingOptions());

}  // namespace nprpc

#endif  // RPC_NAMING_SERVICES_H_
