// Discovery through a real etcd (v3 API, over nprpc's own gRPC client and
// stubs generated from proto/etcd/rpc.proto).
//
// A service's replicas live under a key prefix, one key per replica:
//
//   /services/echo/10.0.0.3:8000  ->  "10.0.0.3:8000"        (weight 1)
//   /services/echo/10.0.0.4:8000  ->  "10.0.0.4:8000 w=3"
//
// EtcdNamingService reads them (Range over the prefix) and follows changes
// (Watch from the revision it read). After a disconnect the watch resumes
// from the last revision it saw; when etcd has compacted that revision away
// it reads everything again. While etcd is unreachable the last list stays
// (calls keep going to the replicas it names); a list is never replaced by
// an empty one because etcd could not be read.
//
//   auto channel = nprpc::Channel::Create("etcd://10.0.0.5:2379,10.0.0.6:2379/services/echo");
//
// (Channel::Create knows the etcd:// scheme once RegisterEtcdNaming() ran;
// linking //rpc:etcd_naming_service does it at start-up.)
//
// An etcd that serves clients over TLS or mutual TLS (--cert-file,
// --client-cert-auth) is reached with EtcdClientOptions::tls; the etcd://
// scheme has no options, so such a service is created here and handed to
// the channel:
//
//   netpoll::TlsClientOptions tls;
//   tls.ca_file = "etcd-ca.crt";
//   tls.key_pair.cert_chain_file = "client.crt";
//   tls.key_pair.private_key_file = "client.key";
//   nprpc::EtcdClientOptions etcd;
//   etcd.tls = *netpoll::TlsContext::NewClient(tls);
//   auto naming = nprpc::EtcdNamingService::Create("10.0.0.5:2379/services/echo", etcd);
//   auto channel = nprpc::Channel::Create(*naming);
//
// EtcdRegistration (rpc/etcd_registration.h) is the other side: a server
// putting its key with a lease.
//
// Thread safety: every method is safe from any thread. The service owns one
// thread that talks to etcd; watchers run on it.
#ifndef RPC_ETCD_NAMING_SERVICE_H_
#define RPC_ETCD_NAMING_SERVICE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "netpoll/mutex.h"
#include "netpoll/tls_context.h"
#include "rpc/naming_service.h"

namespace nprpc {

class Channel;

// "etcd://host:port[,host:port...]/prefix" (or the part after "etcd://").
struct EtcdTarget {
  std::vector<std::string> endpoints;  // "host:port"
  std::string prefix;                  // "/services/echo/", always ending in '/'
};
absl::StatusOr<EtcdTarget> ParseEtcdTarget(absl::string_view target);

// How nprpc talks to etcd (EtcdNamingService and EtcdRegistration).
struct EtcdClientOptions {
  absl::Duration call_timeout = absl::Seconds(3);          // each unary call
  absl::Duration connect_timeout = absl::Seconds(1);       // each etcd member
  absl::Duration retry_backoff = absl::Milliseconds(100);  // after a failure,
  absl::Duration max_retry_backoff = absl::Seconds(2);     // doubling up to this
  // HTTP/2 pings on idle connections to etcd (ChannelOptions::keepalive_*).
  absl::Duration keepalive_time = absl::Seconds(2);
  absl::Duration keepalive_timeout = absl::Seconds(2);
  // TLS to etcd (ChannelOptions::tls): a client context from
  // netpoll::TlsContext::NewClient naming the CA that signed etcd's
  // certificate (--cert-file) and, for an etcd with --client-cert-auth, the
  // client certificate and key. The gRPC transport offers ALPN "h2" itself
  // (the context need not). With no server_name in the context, an endpoint
  // given by IP address is matched against the certificate's IP SANs and
  // one given by host name against its DNS names. A failed handshake (no
  // client certificate, a CA that does not verify etcd) fails the calls
  // with UNAVAILABLE naming the cause. Null: plaintext.
  std::shared_ptr<const netpoll::TlsContext> tls{};
};

// The channel to an etcd cluster: gRPC, round robin over its members, calls
// retried on another member when one is down.
absl::StatusOr<std::unique_ptr<Channel>> NewEtcdChannel(const EtcdTarget& target,
                                                        const EtcdClientOptions& options);

// The key of `address` under `prefix` and the value naming it.
std::string EtcdKeyOf(const EtcdTarget& target, absl::string_view address);
// "[prefix, prefix+1)": every key under the prefix.
std::string EtcdRangeEnd(absl::string_view prefix);
// The node a value names ("host:port[ w=N]"); an error for anything else.
absl::StatusOr<ServerNode> ParseEtcdValue(absl::string_view value);

class EtcdNamingService final : public NamingService {
 public:
  // Starts following `target`; returns at once (the first list arrives on
  // the service's thread; calls made before it wait for it as for any
  // naming update, ChannelOptions::naming_wait).
  static absl::StatusOr<std::shared_ptr<EtcdNamingService>> Create(
      absl::string_view target, const EtcdClientOptions& options = EtcdClientOptions());
  ~EtcdNamingService() override;

  std::vector<ServerNode> Nodes() const override;
  void Watch(Watcher watcher) override;

  // For tests and status pages.
  struct Stats {
    int64_t revision = 0;      // the store revision the list reflects
    int64_t full_reads = 0;    // Range calls that succeeded
    int64_t watch_starts = 0;  // Watch streams opened (1 + reconnects)
    int64_t updates = 0;       // lists published
    int64_t failures = 0;      // failed calls and broken streams
    bool connected = false;    // a watch is open now
  };
  Stats stats() const;

 private:
  EtcdNamingService(EtcdTarget target, const EtcdClientOptions& options,
                    std::unique_ptr<Channel> channel);
  void Run();
  // One full read; the revision it reflects, or an error.
  absl::StatusOr<int64_t> ReadAll();
  // Follows changes from `revision` + 1 until the stream breaks (an error)
  // or etcd compacted that revision away (OK: read everything again).
  absl::Status Follow(int64_t& revision);
  void Publish(bool changed);
  // Sleeps up to `d` unless stopping; false when stopping.
  bool Backoff(absl::Duration& d);

  const EtcdTarget target_;
  const EtcdClientOptions options_;
  const std::unique_ptr<Channel> channel_;

  mutable netpoll::Mutex mu_;
  netpoll::CondVar cv_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Cancels the open watch stream (the destructor calls it); null when none.
  absl::AnyInvocable<void()> cancel_stream_ ABSL_GUARDED_BY(mu_);
  // address -> node, in key order.
  std::vector<ServerNode> nodes_ ABSL_GUARDED_BY(mu_);
  std::vector<Watcher> watchers_ ABSL_GUARDED_BY(mu_);
  Stats stats_ ABSL_GUARDED_BY(mu_);
  bool have_list_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

// Adds the "etcd" scheme to CreateNamingService / Channel::Create.
// Idempotent; runs at start-up in any binary that links this library.
void RegisterEtcdNaming();

}  // namespace nprpc

#endif  // RPC_ETCD_NAMING_SERVICE_H_
