// ServerCore: what every protocol of a Server shares. The registry of services
// and methods, method lookup, the server-wide and per-method concurrency
// limits, deadlines, the worker pool, the counters, and the two gates of a
// graceful shutdown. Protocols (rpc/internal/protocol.h) turn bytes into
// calls and answers; the core decides whether and where a call runs.
//
// A call's way through the core (from a ServerSession, on the loop thread):
//   Lookup(service, method)   counts it; ELOGOFF while stopping, ENOMETHOD
//   (protocol checks, e.g. the checksum)
//   Acquire(method)           server and method slots, the call gate: ELIMIT
//                             / ELOGOFF; on success the call holds them until
//                             its ServerCall answers (ServerCall::Finish)
//   Start(call)               deadline timer, then Run() where
//                             ServerOptions::handler_threads says: nested
//                             in the read (kIoLoop), on the loop after its
//                             reads in a blocking section (kAdaptive, while
//                             the method's AdaptivePlacement says so), or
//                             on the worker pool
//
// Thread safety: the registry and options are constant after Start(); the
// counters are atomics; Lookup/Acquire/Start run on loop threads, the rest
// on any thread.
#ifndef RPC_INTERNAL_SERVER_CORE_H_
#define RPC_INTERNAL_SERVER_CORE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "netpoll/connection.h"
#include "netpoll/event_loop.h"
#include "netpoll/link_buffer.h"
#include "netpoll/memory_budget.h"
#include "rpc/internal/adaptive_placement.h"
#include "rpc/internal/gate.h"
#include "rpc/internal/worker_pool.h"
#include "rpc/metrics.h"
#include "rpc/server_options.h"
#include "rpc/service.h"
#include "rpc/stream_core.h"

namespace nprpc {

class HttpPages;
class ServerCall;
class ServerProtocol;

// One method as the server serves it. The table is built before Start() and
// immutable afterwards; the counters are atomics, touched from any thread.
struct MethodEntry {
  std::string full_name;   // "package.Service/Method"
  MethodHandler* handler;  // owned by its Service, which outlives the server
  int max_concurrency;     // 0 = unlimited
  // Runs nested in the loop's read (HandlerThreads::kIoLoop, or a method
  // declared ExecutionMode::kIoLoop); otherwise placed at each call.
  bool nested_on_loop;
  // handler->stream_kind(): a streaming method runs only over gRPC, and
  // never on the loop unless nested_on_loop (a sync streaming handler
  // blocks for the whole call).
  StreamKind stream_kind = StreamKind::kUnary;
  std::atomic<int64_t> in_flight{0};
  std::atomic<int64_t> received{0};
  std::atomic<int64_t> succeeded{0};
  std::atomic<int64_t> failed{0};
  std::atomic<int64_t> ran_on_loop{0};
  std::atomic<int64_t> ran_on_pool{0};
  AdaptivePlacement placement;  // HandlerThreads::kAdaptive
  // The process-wide metrics of this method (MetricsRegistry; /metrics,
  // /status): every answered request, refusals included.
  MethodMetrics* metrics = nullptr;
};

class ServerCore : public std::enable_shared_from_this<ServerCore> {
 public:
  explicit ServerCore(const ServerOptions& options);

  // ------------------------------------------------ Before Start()

  // AlreadyExists / InvalidArgument as Server::AddService documents.
  absl::Status AddService(Service* service);
  // The protocols connections may speak, in sniffing order. Not owned
  // (static instances).
  void AddProtocol(const ServerProtocol* protocol) { protocols_.push_back(protocol); }
  // Before the first connection is accepted.
  void set_pool(WorkerPool* pool) { pool_ = pool; }
  void set_listen_address(const netpoll::SocketAddress& address);
  // The built-in pages HTTP GET/HEAD requests are routed to
  // (rpc/internal/http_message.h); null (the default): every page is 404.
  void set_http_pages(std::shared_ptr<const HttpPages> pages) { http_pages_ = std::move(pages); }

  const ServerOptions& options() const { return options_; }
  // Full names of the services added so far, sorted.
  std::vector<std::string> service_names() const;
  bool HasService(absl::string_view full_name) const { return services_.contains(full_name); }
  // The server-wide memory budget (ServerOptions::memory_budget_bytes),
  // shared with every connection.
  netpoll::MemoryBudget& budget() const { return *budget_; }
  const std::shared_ptr<netpoll::MemoryBudget>& shared_budget() const { return budget_; }
  const std::vector<const ServerProtocol*>& protocols() const { return protocols_; }
  // Any thread after Start(); null when no pages are served here.
  const HttpPages* http_pages() const { return http_pages_.get(); }

  // ------------------------------------------------ Calls (loop thread)

  // Counts a request for `service`/`method` and finds its method. Errors
  // (counted as answered): ELOGOFF while stopping, ENOMETHOD for an unknown
  // service or method; the caller answers them (its protocol's encoding).
  absl::StatusOr<MethodEntry*> Lookup(absl::string_view service, absl::string_view method);
  // Takes the server-wide and method slots and enters the call gate: ELIMIT
  // or ELOGOFF otherwise. Every success is given back by the call's answer.
  absl::Status Acquire(MethodEntry* method);
  // Runs an admitted call: fills the context's connection fields, arms the
  // deadline timer, then runs the handler inline or on the worker pool.
  void Start(const std::shared_ptr<ServerCall>& call);

  // ------------------------------------------------ Answers (any thread)

  // Queues `frame` on `conn` and then `on_loop` on its loop, unless the
  // loops are gone (late completions after Shutdown() drop their answer).
  // Cancels `timer` on the loop. A peer that does not read its answers (the
  // output cap is reached) is closed.
  void Send(const netpoll::ConnectionPtr& conn, netpoll::LinkBuffer frame,
            netpoll::TimerId timer = netpoll::kInvalidTimerId,
            absl::AnyInvocable<void()> on_loop = nullptr);
  // Queues `task` on `loop` (never runs it inside the caller), unless the
  // loops are gone (late completions after Shutdown() drop it). For
  // protocols whose answers are not one write (gRPC streams).
  void QueueOnLoop(netpoll::EventLoop* loop, absl::AnyInvocable<void()> task);
  // "[addr][E<code>]text" (or just text without brpc_error_prefix).
  std::string ErrorText(int32_t code, absl::string_view text) const;
  // Counts an answer of `method` (may be null: unknown method).
  void CountAnswer(MethodEntry* method, bool ok);
  // Counts a request of `method` (may be null) refused before it was
  // admitted, with brpc number `code`, also in the method's metrics.
  void CountRefused(MethodEntry* method, int32_t code);
  // Gives back the slots Acquire() took, after the answer was counted.
  void Release(MethodEntry* method);
  // Leaves the call gate Acquire() entered, after the answer was queued.
  void LeaveCall() { calls_.Leave(); }
  void CountProtocolError() { protocol_errors_.fetch_add(1, std::memory_order_relaxed); }
  // A connection refused by the authenticator.
  void CountAuthFailure() { auth_failures_.fetch_add(1, std::memory_order_relaxed); }
  // A frame refused from its header for the memory budget.
  void CountRefusedFrame() { frames_refused_.fetch_add(1, std::memory_order_relaxed); }
  // A connection stopped being read because its answers were not read.
  void CountOutputPause() { output_pauses_.fetch_add(1, std::memory_order_relaxed); }
  // The server gave memory back after a burst (MemoryReleaser).
  void CountMemoryRelease() { memory_releases_.fetch_add(1, std::memory_order_relaxed); }
  // A compressed payload refused for the memory budget.
  void CountRefusedDecompression() {
    decompressions_refused_.fetch_add(1, std::memory_order_relaxed);
  }

  // ------------------------------------------------ Shutdown (Server)

  // New calls answer ELOGOFF and new connections are refused.
  void BeginStopping();
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }
  // Waits for admitted calls to answer, up to `deadline`; returns how many
  // are still in flight.
  int64_t WaitForCalls(absl::Time deadline);
  // Late answers are dropped from now on; waits for writers in progress.
  void CloseLoops();

  void FillStats(ServerStats& stats) const;

 private:
  const ServerOptions options_;
  const std::shared_ptr<netpoll::MemoryBudget> budget_;
  std::vector<const ServerProtocol*> protocols_;
  std::shared_ptr<const HttpPages> http_pages_;
  absl::flat_hash_map<std::string, absl::flat_hash_map<std::string, std::unique_ptr<MethodEntry>>>
      services_;
  std::string error_prefix_;    // "[127.0.0.1:8000]"; set before accepting
  WorkerPool* pool_ = nullptr;  // owned by Server; outlives every loop turn

  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> concurrency_{0};  // calls holding a server-wide slot
  std::atomic<int64_t> received_{0}, succeeded_{0}, failed_{0}, protocol_errors_{0};
  std::atomic<int64_t> frames_refused_{0}, decompressions_refused_{0}, output_pauses_{0},
      memory_releases_{0}, auth_failures_{0};
  Gate calls_;  // admitted calls whose answer is not yet queued
  Gate loops_;  // writers touching a connection (Send)
};

}  // namespace nprpc

#endif  // RPC_INTERNAL_SERVER_CORE_H_
