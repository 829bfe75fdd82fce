// EtcdRegistration: a server's key in etcd, under a lease it keeps alive.
//
//   key    <prefix><address>      e.g. /services/echo/10.0.0.3:8000
//   value  "<address>[ w=N]"      what EtcdNamingService reads
//   lease  TTL options.ttl, renewed every ttl/3 over a LeaseKeepAlive stream
//
// Deregister() (or Server::Shutdown() when the registration was given to the
// server with Server::AddRegistration) deletes the key and revokes the lease,
// so clients following the prefix drop the server within one watch event.
// If the process dies, the lease expires after `ttl` and etcd deletes the key.
// If the lease is lost while the process lives (etcd unreachable longer than
// the TTL), the key is put again under a new lease once etcd answers.
//
// Thread safety: every method is safe from any thread. A registration owns
// one thread that talks to etcd.
#ifndef RPC_ETCD_REGISTRATION_H_
#define RPC_ETCD_REGISTRATION_H_

#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "netpoll/mutex.h"
#include "rpc/etcd_naming_service.h"
#include "rpc/registration.h"

namespace nprpc {

class Channel;

struct EtcdRegistrationOptions {
  // The lease's time to live (whole seconds, at least 1): how long clients
  // may keep a crashed server in their lists.
  absl::Duration ttl = absl::Seconds(3);
  int weight = 1;
  EtcdClientOptions etcd;
};

class EtcdRegistration final : public Registration {
 public:
  // Grants a lease, puts the key and starts keeping the lease alive. Fails
  // (with etcd's error) when etcd cannot be reached within the call timeout.
  static absl::StatusOr<std::unique_ptr<EtcdRegistration>> Start(
      absl::string_view target, absl::string_view address,
      const EtcdRegistrationOptions& options = EtcdRegistrationOptions());
  // Deregister()s.
  ~EtcdRegistration() override;

  absl::Status Deregister() override;

  const std::string& key() const { return key_; }
  // The lease the key is under now (changes after a lost lease is replaced).
  int64_t lease_id() const;
  // Keep-alives etcd acknowledged, leases granted (1 + replacements).
  int64_t keepalives() const;
  int64_t leases_granted() const;

 private:
  EtcdRegistration(EtcdTarget target, std::string address, const EtcdRegistrationOptions& options,
                   std::unique_ptr<Channel> channel);
  // Grants a lease and puts the key under it.
  absl::Status Put();
  void KeepAlive();
  // One LeaseKeepAlive stream until it breaks or the lease is gone.
  absl::Status KeepAliveStream(int64_t lease);

  const EtcdTarget target_;
  const std::string address_;
  const std::string key_;
  const EtcdRegistrationOptions options_;
  const std::unique_ptr<Channel> channel_;

  mutable netpoll::Mutex mu_;
  netpoll::CondVar cv_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool deregistered_ ABSL_GUARDED_BY(mu_) = false;
  int64_t lease_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t keepalives_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t leases_granted_ ABSL_GUARDED_BY(mu_) = 0;
  absl::AnyInvocable<void()> cancel_stream_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace nprpc

#endif  // RPC_ETCD_REGISTRATION_H_
