// Server: serves Services on one port over every protocol it speaks
// (baidu_std today; the first bytes of a connection pick its protocol), on
// netpoll.
//
//   nprpc::Server server(nprpc::ServerOptions{.num_worker_threads = 8});
//   server.AddService(std::move(echo_service));
//   absl::Status s = server.Start("127.0.0.1:0");   // or "unix:/path"
//   ... server.listen_address() ...
//   server.Shutdown(absl::Seconds(5));
//
// One call, thread by thread (docs/architecture.md, "Server"):
//   I/O loop: reads; on a new connection the first bytes pick the protocol
//     (rpc/internal/protocol.h), unknown bytes close it. The protocol cuts
//     every complete frame, and for each request the server core looks up
//     service/method, the protocol verifies its checksum, the core takes the
//     concurrency slots, arms the deadline timer, and places the call
//     (ServerOptions::handler_threads): by default on the same loop, after
//     the turn's reads, where a handler that blocks makes the loop move to
//     another thread and its method to the worker pool.
//   the loop (or a worker): skips calls already past their deadline,
//     decompresses and parses the payload, runs the handler.
//   whoever completes (the handler's thread, or the loop's deadline timer):
//     serializes the response into a LinkBuffer, encodes the frame and calls
//     Connection::Write (thread-safe; writes coalesce per loop turn).
//
// Errors (docs/protocol.md, "Server behaviour"): protocol errors close only
// that connection; every other failure is an error response (no payload) and
// the connection stays open. Unknown service or method -> 1002 ENOMETHOD
// "Fail to find method=<service>/<method>" (what brpc sends, also for an
// unknown service); bad payload, bad checksum or bad compression -> 1003
// EREQUEST; server/method concurrency limits and a full worker queue -> 2004
// ELIMIT; deadline passed -> 1008 ERPCTIMEDOUT; stopping -> 2003 ELOGOFF.
// error_text starts with brpc's "[ip:port][E<code>]" prefix unless
// brpc_error_prefix is false.
//
// Thread safety: AddService() before Start(); Start(), Shutdown() and the
// destructor are safe from any thread except the server's own loop and worker
// threads (they block and join them). Stats() and listen_address() are safe
// from any thread, also while Shutdown() runs.
#ifndef RPC_SERVER_H_
#define RPC_SERVER_H_

#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "netpoll/mutex.h"
#include "netpoll/socket_address.h"
#include "rpc/server_options.h"
#include "rpc/service.h"

namespace netpoll {
class EventLoopGroup;
class Server;
struct TransportStatsSnapshot;
}  // namespace netpoll

namespace nprpc {

class HealthService;
class HttpPages;
class ReflectionService;
class Registration;
class PrometheusWriter;
class ServerCore;
class MemoryReleaser;
class WorkerPool;

class Server {
 public:
  explicit Server(ServerOptions options = ServerOptions());
  // Shutdown(options.shutdown_grace) when still running.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Before Start(). AlreadyExists for a second service of one name;
  // FailedPrecondition after Start(); InvalidArgument for a service without
  // methods. The raw-pointer form does not take ownership: `service` must
  // outlive the server.
  absl::Status AddService(std::unique_ptr<Service> service);
  absl::Status AddService(Service* service);

  // Starts the loops and workers and listens (port 0: ephemeral). Once.
  absl::Status Start(const netpoll::SocketAddress& address);
  absl::Status Start(absl::string_view address);

  // Graceful stop, bounded by `grace`: new connections are refused, new
  // calls get ELOGOFF, calls in flight may finish and their answers are
  // flushed; then connections close and threads are joined. A handler that
  // blocks its worker thread forever blocks this too. Idempotent.
  void Shutdown(absl::Duration grace);

  // The bound address (real port) after Start(); empty before. Any thread.
  netpoll::SocketAddress listen_address() const;
  // Where the built-in pages listen with ServerOptions::BuiltinPages::
  // kAdminPort, after Start(); empty otherwise. Any thread.
  netpoll::SocketAddress admin_address() const;
  // Any thread, at any time (connections: 0 before Start() and after
  // Shutdown()).
  ServerStats Stats() const;

  // Hands the server its entry in a naming system (rpc/registration.h, e.g.
  // EtcdRegistration): Shutdown() deregisters it first, waits
  // ServerOptions::deregistration_delay, and only then stops taking calls.
  // Any time before Shutdown(); InvalidArgument for null.
  absl::Status AddRegistration(std::unique_ptr<Registration> registration);

  // The gRPC health service this server serves (ServerOptions::serve_health;
  // null without it), to mark single services:
  //   server.health()->SetServingStatus("example.EchoService", false);
  // Any thread, for the server's lifetime.
  HealthService* health() const { return health_.get(); }

 private:
  // The admin port's server: HTTP only, the pages of its owner, no metrics
  // of its own.
  struct AdminTag {};
  Server(ServerOptions options, AdminTag);
  // This server's families of /metrics (label server="<address>").
  void WriteMetrics(PrometheusWriter& writer) const;
  // Stats(), and the loops' counters it was read from when `loops` is not
  // null (left as is before Start() and after Shutdown()).
  ServerStats StatsAndLoops(netpoll::TransportStatsSnapshot* loops) const;
  // The built-in pages of this server (rpc/internal/builtin_pages.h).
  std::shared_ptr<const HttpPages> MakePages() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Adds the health and reflection services (ServerOptions) and marks every
  // service SERVING. From Start().
  absl::Status AddStandardServices() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const ServerOptions options_;
  // Shared with connections and calls, which may outlive the Server.
  const std::shared_ptr<ServerCore> core_;

  netpoll::Mutex mu_;  // serializes AddService(), Start() and Shutdown()
  std::vector<std::unique_ptr<Service>> owned_services_ ABSL_GUARDED_BY(mu_);
  // ServerOptions::serve_health / serve_reflection; added by Start().
  const std::unique_ptr<HealthService> health_;
  std::unique_ptr<ReflectionService> reflection_ ABSL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<Registration>> registrations_ ABSL_GUARDED_BY(mu_);
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  // Created by Start(); destroyed in this order after Shutdown().
  std::unique_ptr<netpoll::EventLoopGroup> group_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<WorkerPool> pool_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<MemoryReleaser> releaser_ ABSL_GUARDED_BY(mu_);
  // ServerOptions::BuiltinPages::kAdminPort: serves the pages; shut down
  // after this server's connections, so /health says 503 while it drains.
  std::unique_ptr<Server> admin_ ABSL_GUARDED_BY(mu_);
  const bool is_admin_ = false;
  absl::Time started_at_ ABSL_GUARDED_BY(mu_);

  // What Stats() and listen_address() read; Shutdown() resets it under this
  // lock only briefly (never while it waits), so they never block for long.
  mutable netpoll::Mutex state_mu_ ABSL_ACQUIRED_AFTER(mu_);
  std::unique_ptr<netpoll::Server> transport_ ABSL_GUARDED_BY(state_mu_);
  netpoll::SocketAddress listen_address_ ABSL_GUARDED_BY(state_mu_);
  netpoll::SocketAddress admin_address_ ABSL_GUARDED_BY(state_mu_);
  // pool_, for Stats(): alive while transport_ is set.
  WorkerPool* stats_pool_ ABSL_GUARDED_BY(state_mu_) = nullptr;
  // This server's families in MetricsRegistry::Default() (0: none).
  uint64_t metrics_collector_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace nprpc

#endif  // RPC_SERVER_H_
