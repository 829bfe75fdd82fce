// ConnectionPool: reusable client connections, per server address, built on
// Dialer and Connection.
//
//   netpoll::ConnectionPoolOptions options;
//   options.group = group;                     // not owned; outlives the pool
//   options.callbacks = callbacks;             // on_prepare, on_request, ...
//   options.max_active_per_address = 8;
//   auto pool = netpoll::ConnectionPool::Create(options);
//
//   (*pool)->Acquire("127.0.0.1:8000", absl::Now() + absl::Seconds(1),
//                    [](absl::StatusOr<netpoll::ConnectionPool::Lease> lease) {
//     if (!lease.ok()) return;                 // DeadlineExceeded, ...
//     (void)(*lease)->Write("ping");           // the lease returns the
//   });                                        // connection when destroyed
//
// Acquire, for one address, in this order:
//   1. an idle connection is available (and nobody waits before us): take the
//      most recently returned one;
//   2. fewer than max_active_per_address connections exist (idle + leased +
//      dialing + closing): dial a new one;
//   3. else wait in a FIFO queue of at most max_waiters entries until a lease
//      is returned or a connection closes, or until the deadline.
// Errors: ResourceExhausted when the wait queue is full, DeadlineExceeded when
// the deadline passes first, the Dialer's error (Unavailable,
// DeadlineExceeded) when the dial made for this caller fails, Cancelled when
// the pool is destroyed first.
//
// Liveness: a connection that closed (peer FIN or reset, timeout) is removed
// from the pool by its close callback. An idle connection is handed over from
// a zero-delay timer on its own loop, which runs after a fresh poll of that
// loop; so a close or reset that reached this host before Acquire()/Release()
// was called has been processed by then, and the connection is checked
// active() before the callback sees it. A dead one is dropped and the caller
// goes back to the head of the queue. (Bytes that arrive later, e.g. a server
// closing an idle connection at the same moment, can still race with the
// first request: Lease::reused() tells a caller when retrying is safe.)
//
// Return after use: destroying the Lease (or Lease::Release()) runs the
// optional on_release hook (reset per-lease state; false = do not reuse),
// then gives the connection to the first waiter or back to the idle list.
// Lease::MarkBroken() closes it instead (e.g. after a protocol error or a
// request that timed out with its response still in flight). Idle lists are
// capped per address (max_idle_per_address) and overall (max_idle_global);
// at a cap the least recently used idle connection is closed. Idle
// connections older than idle_timeout are closed by a per-pool maintenance
// timer, which also dials in the background to keep min_idle idle connections
// for every address the pool has seen (or was given with WarmUp()).
//
// Per-connection callbacks: every pooled connection uses
// ConnectionPoolOptions::callbacks (one set per pool, like a Server's). To
// route input to whoever holds the lease, return a shared, thread-safe
// per-connection object from on_prepare: it becomes Connection::context(),
// which on_request reads on the loop thread, and the pool keeps a copy that
// the lease holder reads with Lease::context() from any thread:
//
//   callbacks->on_prepare = [](Connection&) -> absl::StatusOr<std::any> {
//     return std::any(std::make_shared<CallSlot>());
//   };
//   callbacks->on_request = [](const ConnectionPtr& c, LinkBuffer& in) {
//     std::any_cast<std::shared_ptr<CallSlot>&>(c->context())->OnInput(in);
//   };
//   ... lease.context<std::shared_ptr<CallSlot>>()->StartCall(...);
//
// Threads: Acquire() callbacks run exactly once, on a loop thread of the
// group and never inside Acquire() itself: a successful one on the leased
// connection's loop, an error on some loop of the group.
//
// Thread safety: every public method is safe from any thread. AcquireSync()
// and the destructor block, so they must not run on a loop thread of the
// group. Leases may be released on any thread, also after the pool is gone.
//
// Ownership: the pool owns its idle connections; a Lease owns one leased
// connection until released. The group is not owned; it must outlive the pool
// and keep running until the destructor returns. The destructor fails pending
// acquires with Cancelled, closes every pooled connection (idle and leased),
// and waits until they are closed and every callback has run: no callback
// runs after it returns.
#ifndef NETPOLL_CONNECTION_POOL_H_
#define NETPOLL_CONNECTION_POOL_H_

#include <any>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "netpoll/connection.h"
#include "netpoll/event_loop_group.h"
#include "netpoll/socket.h"
#include "netpoll/socket_address.h"

namespace netpoll {

struct ConnectionPoolOptions {
  // Loops for new connections, round-robin. Required; not owned.
  EventLoopGroup* group = nullptr;
  // Shared by every pooled connection (see the header comment). May be null.
  std::shared_ptr<const ConnectionCallbacks> callbacks;
  ConnectionOptions connection;
  absl::Duration dial_timeout = absl::Seconds(5);
  TcpKeepAliveOptions keepalive;  // of every dialed connection

  // Hard cap on connections per address: idle + leased + dialing + closing.
  size_t max_active_per_address = 64;
  size_t max_idle_per_address = 16;
  size_t max_idle_global = 1024;
  // Acquires that may wait per address while the cap is reached.
  size_t max_waiters = 1024;
  // Idle connections older than this are closed. Infinite disables.
  absl::Duration idle_timeout = absl::Minutes(1);
  // Idle connections kept per known address (bounded by the caps above).
  size_t min_idle = 0;
  // How often the maintenance timer runs; zero derives it from idle_timeout
  // (a quarter of it, between 10 ms and 1 s).
  absl::Duration maintenance_interval = absl::ZeroDuration();

  // Runs when a lease is returned (not when it is broken), on the releasing
  // thread, before the connection may be handed to someone else: reset
  // per-lease state here. Returning false closes the connection instead.
  // Not called after the pool is destroyed.
  std::function<bool(const ConnectionPtr& conn, const std::any& context)> on_release;
};

// Gauges (now) and counters (since Create()).
struct ConnectionPoolStats {
  int64_t idle = 0;     // idle connections
  int64_t active = 0;   // leased connections (including being handed over)
  int64_t dialing = 0;  // dials in flight
  int64_t waiting = 0;  // queued Acquire() calls
  int64_t dials = 0;
  int64_t dial_failures = 0;
  int64_t reused = 0;         // leases of an idle connection
  int64_t waits = 0;          // acquires that queued because the cap was reached
  int64_t wait_timeouts = 0;  // acquires that failed with DeadlineExceeded while queued
  int64_t rejected = 0;       // acquires that failed with ResourceExhausted
  int64_t evicted = 0;        // idle connections closed (idle timeout, idle caps)
  int64_t dead = 0;           // pooled connections that closed on their own

  ConnectionPoolStats& operator+=(const ConnectionPoolStats& other);
};

namespace connection_pool_internal {
class Core;    // the pool's shared state, defined in connection_pool.cc
struct Entry;  // one pooled connection
}  // namespace connection_pool_internal

class ConnectionPool {
 public:
  // A leased connection. Move-only; destroying it returns the connection to
  // the pool (see Release()). One thread at a time may use a Lease; the
  // connection itself is thread-safe as documented in connection.h.
  class Lease {
   public:
    Lease() = default;
    ~Lease() { Release(); }
    Lease(Lease&& other) noexcept;
    Lease& operator=(Lease&& other) noexcept;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;

    explicit operator bool() const { return entry_ != nullptr; }
    // Null after Release().
    const ConnectionPtr& connection() const;
    Connection* operator->() const { return connection().get(); }
    // The copy of the connection's on_prepare context (empty without one).
    const std::any& context() const;
    // The context as the type on_prepare stored (std::bad_any_cast for any
    // other type). Typically a shared_ptr to a thread-safe per-connection
    // object, which this copy shares with Connection::context().
    template <typename T>
    const T& context() const {
      return std::any_cast<const T&>(context());
    }
    // True when the connection was idle in the pool before this lease (it
    // has carried earlier requests), false when it was dialed for it.
    bool reused() const { return reused_; }

    // The connection is closed instead of reused when released.
    void MarkBroken() { broken_ = true; }
    // Returns the connection now (closing it when broken). Idempotent.
    void Release();

   private:
    friend class connection_pool_internal::Core;
    Lease(std::shared_ptr<connection_pool_internal::Core> core,
          std::shared_ptr<connection_pool_internal::Entry> entry, bool reused);

    std::shared_ptr<connection_pool_internal::Core> core_;
    std::shared_ptr<connection_pool_internal::Entry> entry_;
    bool reused_ = false;
    bool broken_ = false;
  };

  using AcquireCallback = absl::AnyInvocable<void(absl::StatusOr<Lease>)>;

  // InvalidArgument without a group or with max_active_per_address == 0.
  static absl::StatusOr<std::unique_ptr<ConnectionPool>> Create(
      const ConnectionPoolOptions& options);
  // See "Ownership" above. Must not run on a loop thread of the group.
  ~ConnectionPool();
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  // Leases a connection to `address` ("host:port", "[v6]:port",
  // "unix:/path"; the pool key is the text as given, and names are resolved
  // by the Dialer at each dial). `done` runs exactly once, on a loop thread.
  // `deadline` bounds waiting for a connection (absl::InfiniteFuture() waits
  // forever; dials are bounded by dial_timeout as well).
  void Acquire(absl::string_view address, absl::Time deadline, AcquireCallback done);
  void Acquire(const SocketAddress& address, absl::Time deadline, AcquireCallback done) {
    Acquire(address.ToString(), deadline, std::move(done));
  }
  // Blocks until Acquire() completes. Not on a loop thread of the group.
  absl::StatusOr<Lease> AcquireSync(absl::string_view address, absl::Time deadline);

  // Registers `address` for min_idle warm-up and starts dialing now.
  void WarmUp(absl::string_view address);

  // Summed over every address, or for one address (zeros when unknown).
  ConnectionPoolStats Stats() const;
  ConnectionPoolStats Stats(absl::string_view address) const;

 private:
  explicit ConnectionPool(std::shared_ptr<connection_pool_internal::Core> core);

  const std::shared_ptr<connection_pool_internal::Core> core_;
};

}  // namespace netpoll

#endif  // NETPOLL_CONNECTION_POOL_H_
