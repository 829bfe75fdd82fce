// Server: accepts stream connections (TCP v4/v6, Unix) and spreads them over
// the loops of an EventLoopGroup.
//
//   netpoll::ServerOptions options;
//   options.callbacks->on_request = [](const ConnectionPtr& c, LinkBuffer& in) {
//     (void)c->Write(std::move(*in.Slice(in.Len())));  // echo
//   };
//   auto server = netpoll::Server::Create(options);
//   (*server)->Start(*SocketAddress::Parse("127.0.0.1:0"));
//   int port = (*server)->listen_address().port();
//
// Accepting: one listener on the first loop, or with reuse_port one
// SO_REUSEPORT listener per loop (the kernel spreads connections). Accepted
// connections go round-robin or to the least-loaded loop. When the process is
// out of fds (EMFILE/ENFILE) the server sheds the pending connection through a
// reserved fd and, if that fails too, pauses accepting briefly: no busy loop,
// and the listener is never dropped.
//
// Thread safety: every public method is safe from any thread. Shutdown() and
// the destructor must not run on one of the server's loop threads.
#ifndef NETPOLL_SERVER_H_
#define NETPOLL_SERVER_H_

#include <atomic>
#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "netpoll/connection.h"
#include "netpoll/event_loop_group.h"
#include "netpoll/mutex.h"
#include "netpoll/socket.h"
#include "netpoll/socket_address.h"
#include "netpoll/stats.h"

namespace netpoll {

enum class LoadBalancePolicy { kRoundRobin, kLeastConnections };

struct ServerOptions {
  // Loops to create when `group` is null (0: one per core).
  int num_loops = 0;
  // EventLoopOptions::busy_poll of the loops it creates.
  absl::Duration busy_poll = absl::ZeroDuration();
  // Use these loops instead of creating a group; not owned, must outlive the
  // server.
  EventLoopGroup* group = nullptr;
  bool reuse_port = false;
  LoadBalancePolicy policy = LoadBalancePolicy::kLeastConnections;
  int backlog = 4096;
  // Defaults for every accepted connection (timeouts, buffer caps, ...).
  ConnectionOptions connection;
  std::shared_ptr<ConnectionCallbacks> callbacks = std::make_shared<ConnectionCallbacks>();
  // How long accepting pauses when out of fds.
  absl::Duration accept_backoff = absl::Milliseconds(100);
};

class Server {
 public:
  static absl::StatusOr<std::unique_ptr<Server>> Create(const ServerOptions& options);
  // Shuts down with no grace period if still running.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and starts accepting. Port 0 picks an ephemeral port (see
  // listen_address()). `on_bound`, when set, runs on the calling thread
  // after binding and before the first connection can be accepted, with the
  // bound address: the place to publish it to what connections will read.
  absl::Status Start(const SocketAddress& address,
                     absl::AnyInvocable<void(const SocketAddress& bound)> on_bound = nullptr);

  // Stops accepting, closes connections as they become idle (no buffered
  // input, no pending output), and force-closes the rest at the deadline.
  // Every close callback runs once. Blocks until done. Idempotent.
  void Shutdown(absl::Duration grace = absl::Seconds(5));

  // The bound address (with the real port).
  const SocketAddress& listen_address() const { return listen_address_; }
  EventLoopGroup* group() const { return group_; }
  // Counters of this server's loops (summed).
  TransportStatsSnapshot Stats() const;
  size_t connection_count();
  // The open connections now (a snapshot, for status pages). Any thread.
  std::vector<ConnectionPtr> Connections();

 private:
  class Acceptor;
  explicit Server(const ServerOptions& options);
  void OnAccepted(UniqueFd fd, const SocketAddress& peer);

  // Constant after Create().
  ServerOptions options_;
  std::unique_ptr<EventLoopGroup> owned_group_;
  EventLoopGroup* group_ = nullptr;  // owned_group_ or options_.group
  std::shared_ptr<const ConnectionCallbacks> callbacks_;
  SocketAddress listen_address_;

  std::vector<std::unique_ptr<Acceptor>> acceptors_;  // set in Start()
  std::atomic<bool> started_{false};
  std::atomic<bool> shut_down_{false};

  Mutex mu_;
  absl::flat_hash_map<uint64_t, ConnectionPtr> connections_ ABSL_GUARDED_BY(mu_);
};

}  // namespace netpoll

#endif  // NETPOLL_SERVER_H_
