// NamingService: where a channel's endpoints come from.
//
//   "127.0.0.1:8000"                    one endpoint
//   "list://10.0.0.1:80,10.0.0.2:80"    a static list
//   "list://a:80 w=3,b:80 w=1"          with weights (weighted round-robin)
//
//   "dns://name:port"                   every A/AAAA address, followed
//   "file:///etc/backends"              one endpoint per line, followed
//
// (CreateNamingService in rpc/naming_services.h maps a target to a service;
// DnsNamingService and FileNamingService are in their own headers.) A
// naming service may change the list at run time; StaticNamingService::
// Update() lets a program or a test do it by hand.
//
// Thread safety: every method is safe from any thread. Watchers are called
// on the thread that changed the list, never while a lock of the service is
// held.
#ifndef RPC_NAMING_SERVICE_H_
#define RPC_NAMING_SERVICE_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "netpoll/mutex.h"

namespace nprpc {

struct ServerNode {
  std::string address;  // host:port, [v6]:port or unix:/path
  int weight = 1;
  // Free-form label from the naming service (file:// "tag=..."); the channel
  // does not interpret it.
  std::string tag{};

  bool operator==(const ServerNode& other) const {
    return address == other.address && weight == other.weight && tag == other.tag;
  }
};

class NamingService {
 public:
  using Watcher = std::function<void(const std::vector<ServerNode>&)>;

  virtual ~NamingService() = default;
  virtual std::vector<ServerNode> Nodes() const = 0;
  // `watcher` runs with the full list now and after every change, until the
  // service is destroyed. It must outlive the service.
  virtual void Watch(Watcher watcher) = 0;
  // A channel could not connect to `address` (one of ours): a service that
  // resolves names looks again soon (DNS). Any thread; must not block.
  virtual void OnEndpointFailure(const std::string& /*address*/) {}
  // The host name every endpoint stands for, when the endpoints are its
  // resolved addresses (dns://api.internal:443 -> "api.internal"). A TLS
  // channel whose context names no server sends it as SNI and verifies the
  // certificates against it, as gRPC does with a target's authority. Empty
  // (the default): each endpoint's own address decides (a host name itself,
  // or an IP address matched against the certificate's IP SANs).
  virtual std::string server_name() const { return ""; }
};

// A list set at construction and changed by Update().
class StaticNamingService : public NamingService {
 public:
  explicit StaticNamingService(std::vector<ServerNode> nodes) : nodes_(std::move(nodes)) {}

  std::vector<ServerNode> Nodes() const override;
  void Watch(Watcher watcher) override;
  // Replaces the list and tells the watchers.
  void Update(const std::vector<ServerNode>& nodes);

 private:
  mutable netpoll::Mutex mu_;
  std::vector<ServerNode> nodes_ ABSL_GUARDED_BY(mu_);
  std::vector<Watcher> watchers_ ABSL_GUARDED_BY(mu_);
};

// Parses "host:port" or "list://node,node" (each node "address[ w=N]").
absl::StatusOr<std::vector<ServerNode>> ParseServerList(absl::string_view target);

}  // namespace nprpc

#endif  // RPC_NAMING_SERVICE_H_
