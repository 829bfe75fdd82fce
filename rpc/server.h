// Server: serves Services over brpc's baidu_std protocol on netpoll.
//
//   nprpc::Server server(nprpc::ServerOptions{.num_worker_threads = 8});
//   server.AddService(std::move(echo_service));
//   absl::Status s = server.Start("127.0.0.1:0");   // or "unix:/path"
//   ... server.listen_address() ...
//   server.Shutdown(absl::Seconds(5));
//
// One call, thread by thread (docs/architecture.md, "Server"):
//   I/O loop: reads, cuts every complete frame (FrameDecoder), and for each
//     request: looks up service/method, verifies the checksum, takes the
//     concurrency slots, arms the deadline timer, and queues the call on the
//     worker pool (or runs it inline when run_handlers_inline).
//   worker: skips calls already past their deadline, decompresses and parses
//     the payload, runs the handler.
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
// Thread safety: AddService() before Start(); Start(), Shutdown(), Stats()
// and listen_address() are safe from any thread except the server's own loop
// and worker threads (Shutdown and the destructor block and join them).
#ifndef RPC_SERVER_H_
#define RPC_SERVER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "netpoll/event_loop.h"
#include "netpoll/mutex.h"
#include "netpoll/socket_address.h"
#include "rpc/baidu_std.h"
#include "rpc/server_context.h"
#include "rpc/service.h"

namespace netpoll {
class EventLoopGroup;
class Server;
}  // namespace netpoll

namespace nprpc {

class WorkerPool;

struct ServerOptions {
  // I/O loops (threads that read, decode and write).
  int num_io_loops = 1;
  // netpoll::EventLoopOptions::busy_poll of the I/O loops: after a turn
  // with I/O a loop polls this long before it sleeps, so a request that
  // follows soon needs no wake-up. Zero: never poll.
  absl::Duration io_busy_poll = netpoll::kRequestResponseBusyPoll;
  // Handler threads and their queue. A full queue answers ELIMIT.
  int num_worker_threads = 4;
  // WorkerPoolOptions::busy_poll of the handler threads.
  absl::Duration worker_busy_poll = netpoll::kRequestResponseBusyPoll;
  size_t max_queued_calls = 10000;
  // Run handlers on the I/O loop that decoded the request instead of the
  // worker pool. Only for handlers that never block.
  bool run_handlers_inline = false;

  // Calls being handled at once, server-wide; 0 = unlimited. Beyond: ELIMIT.
  int max_concurrency = 0;
  // Per method, keyed "package.Service/Method"; absent or 0 = unlimited.
  absl::flat_hash_map<std::string, int> method_max_concurrency{};
  // Calls being handled at once per connection. Beyond it the server stops
  // reading that connection until calls complete: at most this many more
  // decoded frames wait in order, and the rest stays undecoded in the input
  // buffer (at most max_body_size plus two headers), so a pipelining client
  // cannot grow memory without bound.
  int max_in_flight_per_connection = 256;

  // Frames announcing a larger body close the connection (from the header).
  size_t max_body_size = kDefaultMaxBodySize;
  // A compressed payload may not inflate beyond this (EREQUEST).
  size_t max_decompressed_size = kDefaultMaxDecompressedSize;
  // Connections with no traffic either way for this long are closed.
  absl::Duration idle_timeout = absl::InfiniteDuration();
  // Connections holding a partial frame that gets no new byte for this long
  // are closed (a peer that stalls mid-frame, or trickles bytes more slowly
  // than this: slowloris). Infinite: never.
  absl::Duration read_timeout = absl::InfiniteDuration();
  // Grace period used by the destructor when Shutdown() was not called.
  absl::Duration shutdown_grace = absl::Seconds(5);
  // Start error_text with "[<listen address>][E<code>]" as a brpc server does.
  bool brpc_error_prefix = true;
  // Which request user fields a handler's outgoing calls carry on
  // (PropagateContext()). None by default: credentials and tenant headers
  // stop here unless named. The deadline and trace context always flow.
  MetadataForwarding forward_metadata{};
};

// Counters of one method, or of the whole server.
struct MethodStats {
  int64_t received = 0;   // requests addressed to it
  int64_t succeeded = 0;  // answered with error_code 0
  int64_t failed = 0;     // answered with an error (limits, timeouts, handler errors, ...)
  int64_t in_flight = 0;  // holding a concurrency slot now
};

struct ServerStats {
  MethodStats total;  // every request, including unknown methods
  // Connections closed for a protocol error (bad magic, oversized body, ...).
  int64_t protocol_errors = 0;
  // Open connections now (0 before Start() and after Shutdown()).
  int64_t connections = 0;
  // Keyed "package.Service/Method".
  std::map<std::string, MethodStats> methods;
};

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

  // The bound address (real port). Valid after Start().
  netpoll::SocketAddress listen_address() const;
  ServerStats Stats() const;

  struct Core;  // internal, shared with connections and calls

 private:
  const ServerOptions options_;
  std::vector<std::unique_ptr<Service>> owned_services_;
  std::shared_ptr<Core> core_;
  // Created by Start(); destroyed in this order after Shutdown().
  std::unique_ptr<netpoll::EventLoopGroup> group_;
  std::unique_ptr<WorkerPool> pool_;
  std::unique_ptr<netpoll::Server> transport_;

  netpoll::Mutex mu_;  // serializes Start() and Shutdown()
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace nprpc

#endif  // RPC_SERVER_H_
