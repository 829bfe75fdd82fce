// DnsNamingService: the endpoints behind a DNS name ("dns://name:port"):
// every A and AAAA address, as "ip:port" and "[ip6]:port".
//
//   auto naming = nprpc::DnsNamingService::Create("backend.internal", 8000);
//   auto channel = nprpc::Channel::Create(*naming, options);
//   // or simply: Channel::Create("dns://backend.internal:8000", options)
//
// The name is resolved (getaddrinfo) on a thread the service owns, never on
// a caller's or a loop's thread: once at start, then every
// `refresh_interval`, and soon after a channel reports that an endpoint
// failed to connect (OnEndpointFailure; at most once per
// `min_resolve_interval`). A changed answer replaces the list; the channel
// then keeps unchanged endpoints, adds new ones and drains removed ones, so
// calls in flight are not dropped. A failed resolution, or an empty answer,
// keeps the previous list and logs why.
//
// Thread safety: every method is safe from any thread. Watchers run on the
// resolver thread (the first one on the thread calling Watch()). The
// destructor stops the resolver thread and waits for a resolution in
// progress (getaddrinfo cannot be interrupted).
#ifndef RPC_DNS_NAMING_SERVICE_H_
#define RPC_DNS_NAMING_SERVICE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "netpoll/mutex.h"
#include "rpc/naming_service.h"

namespace nprpc {

struct DnsNamingOptions {
  // Resolve again this often (even without failures).
  absl::Duration refresh_interval = absl::Seconds(30);
  // At least this long between two resolutions asked for by failures.
  absl::Duration min_resolve_interval = absl::Milliseconds(500);
  // The resolver: the endpoints ("ip:port", "[ip6]:port") that "name:port"
  // has now. Empty: ResolveEndpoints. Tests substitute their own.
  std::function<absl::StatusOr<std::vector<std::string>>(const std::string& host_port)> resolve;
};

// Every A/AAAA address of "name:port" by getaddrinfo, as "ip:port" or
// "[ip6]:port", deduplicated and sorted. Blocks (network I/O): never on a
// loop thread.
absl::StatusOr<std::vector<std::string>> ResolveEndpoints(const std::string& host_port);

class DnsNamingService final : public NamingService {
 public:
  // Starts the resolver thread; the first answer comes asynchronously.
  // `host_port`: "name:port" (the part after dns://).
  static absl::StatusOr<std::unique_ptr<DnsNamingService>> Create(
      absl::string_view host_port, DnsNamingOptions options = DnsNamingOptions());
  ~DnsNamingService() override;
  DnsNamingService(const DnsNamingService&) = delete;
  DnsNamingService& operator=(const DnsNamingService&) = delete;

  std::vector<ServerNode> Nodes() const override { return list_.Nodes(); }
  void Watch(Watcher watcher) override { list_.Watch(std::move(watcher)); }
  // Resolves again soon (rate-limited by min_resolve_interval).
  void OnEndpointFailure(const std::string& address) override;
  // The name resolved ("name" of "name:port"); empty when it is an IP
  // address ("dns://10.0.0.1:80").
  std::string server_name() const override;

  // Resolutions done so far (successful or not).
  int64_t resolutions() const;

 private:
  DnsNamingService(std::string host_port, DnsNamingOptions options);
  void Run();
  void ResolveOnce();

  // Constant after construction.
  const std::string host_port_;
  const DnsNamingOptions options_;

  StaticNamingService list_;  // the current list and its watchers

  mutable netpoll::Mutex mu_;
  netpoll::CondVar wake_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool resolve_soon_ ABSL_GUARDED_BY(mu_) = false;
  int64_t resolutions_ ABSL_GUARDED_BY(mu_) = 0;

  std::thread thread_;  // started last, joined by the destructor
};

}  // namespace nprpc

#endif  // RPC_DNS_NAMING_SERVICE_H_
