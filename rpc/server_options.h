// ServerOptions: how a Server serves (threads, limits, timeouts), and
// ServerStats: what it counted. See rpc/server.h.
//
// Thread safety: plain values.
#ifndef RPC_SERVER_OPTIONS_H_
#define RPC_SERVER_OPTIONS_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "netpoll/event_loop.h"
#include "rpc/authenticator.h"
#include "rpc/baidu_std.h"
#include "rpc/interceptor.h"
#include "rpc/server_context.h"

namespace nprpc {

// The defaults of ServerOptions::num_io_loops and num_worker_threads (0) on
// a machine with `cores` cores (std::thread::hardware_concurrency()): one
// I/O loop per two cores (at least one), since a loop that busy-polls keeps
// up with far more than one core's worth of handlers, and one worker per core
// (at least four, so a few blocking handlers do not stall the rest).
// docs/benchmarks.md has the measurement behind it.
int DefaultIoLoops(int cores);
int DefaultWorkerThreads(int cores);

struct ServerOptions {
  // I/O loops (threads that read, decode and write). 0: DefaultIoLoops() of
  // this machine's cores.
  int num_io_loops = 0;
  // netpoll::EventLoopOptions::busy_poll of the I/O loops: after a turn
  // with I/O a loop polls this long before it sleeps, so a request that
  // follows soon needs no wake-up. Zero: never poll.
  absl::Duration io_busy_poll = netpoll::kRequestResponseBusyPoll;
  // Handler threads and their queue. A full queue answers ELIMIT. 0:
  // DefaultWorkerThreads() of this machine's cores.
  int num_worker_threads = 0;
  // WorkerPoolOptions::busy_poll of the handler threads.
  absl::Duration worker_busy_poll = netpoll::kRequestResponseBusyPoll;
  size_t max_queued_calls = 10000;
  // Where the handlers of methods that may block run
  // (MethodHandler::ExecutionMode::kWorkerPool: every sync handler).
  // docs/architecture.md ("Where handlers run") has the design and
  // docs/benchmarks.md the measurements.
  enum class HandlerThreads {
    // On the I/O loop that read the call, after the loop's reads, with no
    // hand-off: the loop hands itself to another thread if a handler blocks
    // (netpoll::EventLoop::QueueMayBlock). A method whose handler blocked,
    // or whose handlers run longer than 50 us on average, moves to the
    // worker pool, and is tried on the loop again after a probation
    // (rpc/internal/adaptive_placement.h).
    kAdaptive,
    // Always on the worker pool.
    kWorkerPool,
    // Always on the I/O loop, as soon as decoded, with no hand-off: only for
    // handlers that never block (one that blocks stalls every connection of
    // its loop, and a handler waiting for another call of its loop waits
    // forever).
    kIoLoop,
  };
  HandlerThreads handler_threads = HandlerThreads::kAdaptive;

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
  // than this: slowloris). Time the server itself stopped reading does not
  // count. Infinite: never.
  absl::Duration read_timeout = absl::Seconds(30);
  // Connections whose answers wait unsent with no progress for this long are
  // closed (a peer that does not read). Infinite: never.
  absl::Duration write_timeout = absl::Seconds(30);

  // Memory the server may hold for its peers, all connections together:
  // buffered partial frames, decoded requests waiting for or in a handler,
  // decompressed payloads and unsent answers. Near it the server stops
  // reading from connections holding more than a small reserve, and refuses
  // frames over 64 KiB whose header announces more than the budget has left
  // (their connection is closed). 0: netpoll::DefaultMemoryBudget(), a
  // quarter of the machine's (or cgroup's) memory, between 64 MiB and 1 GiB.
  size_t memory_budget_bytes = 0;
  // Unsent answers above this stop reading the connection until they drain
  // below the low mark: a peer that does not read its answers stops being
  // read. Measured in memory held (blocks), not payload bytes.
  size_t output_high_watermark = 4 << 20;
  size_t output_low_watermark = 1 << 20;
  // After a burst (the memory budget's use peaked at 4 MiB or more within a
  // second and fell to a quarter of it), trim the block caches and return free heap pages to the
  // system (rpc/internal/memory_releaser.h), so that RSS comes back near idle.
  bool release_memory_after_bursts = true;
  // Grace period used by the destructor when Shutdown() was not called.
  absl::Duration shutdown_grace = absl::Seconds(5);
  // Start error_text with "[<listen address>][E<code>]" as a brpc server does.
  bool brpc_error_prefix = true;
  // Which request user fields a handler's outgoing calls carry on
  // (PropagateContext()). None by default: credentials and tenant headers
  // stop here unless named. The deadline and trace context always flow.
  MetadataForwarding forward_metadata{};

  // TLS on the serving port (netpoll/tls_context.h: a server context from
  // netpoll::TlsContext::NewServer with the certificate and key, the CA and
  // policy for client certificates (mTLS), ALPN, handshake timeout).
  // Connections that start with a TLS handshake are decrypted and then
  // served as any other: baidu_std, HTTP/1.1 and HTTP/2 alike; the peer's
  // identity is ServerContext::auth_context()->tls. Plaintext connections
  // are still served unless tls_required. ReloadKeyPair() on the context
  // changes the certificate for new connections. Null: plaintext only.
  std::shared_ptr<const netpoll::TlsContext> tls{};
  // With tls: close connections that do not start with TLS.
  bool tls_required = false;

  // Verifies each connection's credential on its first request
  // (rpc/authenticator.h); null: every peer may call.
  std::shared_ptr<const Authenticator> authenticator{};
  // Run around every admitted call, interceptors[0] outermost
  // (rpc/interceptor.h). Empty: nothing runs.
  ServerInterceptors interceptors{};
  // Per-method metrics (rpc/metrics.h: /metrics and /status). Their cost on
  // the hot path is a few uncontended atomic adds per call
  // (docs/benchmarks.md); false records none.
  bool method_metrics = true;

  // HTTP/1.1 on the serving port: JSON calls (POST /package.Service/Method)
  // and, unless moved or turned off below, the built-in pages.
  bool serve_http = true;
  // HTTP: the request line and header fields of one request at most (431
  // beyond, and the connection closes). Bodies are bounded by max_body_size.
  size_t max_http_header_size = size_t{64} << 10;
  // gRPC over HTTP/2 on the serving port (h2c: a connection that opens with
  // the HTTP/2 client preface; docs/protocol.md, "gRPC (HTTP/2)"). Its
  // header block is bounded by max_http_header_size.
  bool serve_grpc = true;
  // gRPC: streams (calls) one connection may have open at once
  // (SETTINGS_MAX_CONCURRENT_STREAMS); more are refused with RST_STREAM
  // REFUSED_STREAM.
  uint32_t grpc_max_concurrent_streams = 100;
  // gRPC: the largest request message, on the wire and decompressed;
  // larger answers RESOURCE_EXHAUSTED, refused from its 5-byte prefix.
  size_t grpc_max_receive_message_size = size_t{4} << 20;
  // gRPC: the HTTP/2 flow-control window of each stream
  // (SETTINGS_INITIAL_WINDOW_SIZE): how far a client may send ahead of its
  // handler's reads. A handler that does not read stops its client there.
  uint32_t grpc_stream_window_bytes = 1 << 20;
  // gRPC: streams a client may reset (RST_STREAM) per second on one
  // connection before it is closed with GOAWAY ENHANCE_YOUR_CALM (the
  // "rapid reset" attack, CVE-2023-44487).
  int grpc_max_resets_per_second = 200;
  // gRPC's standard health service, grpc.health.v1.Health
  // (rpc/health_service.h): SERVING from Start(), NOT_SERVING as soon as
  // Shutdown() begins; Server::health() marks single services. Not added
  // when the application adds its own service of that name.
  bool serve_health = true;
  // gRPC server reflection, grpc.reflection.v1alpha.ServerReflection
  // (rpc/reflection_service.h), for grpcurl and the like. Off by default: it
  // shows every service's schema to anyone who can connect.
  bool serve_reflection = false;
  // Shutdown() with registrations (Server::AddRegistration): after taking
  // the server out of its naming systems it keeps serving this long, so
  // clients hear of it (an etcd watch event takes milliseconds) before new
  // calls are refused. Calls refused anyway are retried elsewhere (ELOGOFF,
  // GOAWAY), so this only spares them the round trip.
  absl::Duration deregistration_delay = absl::Milliseconds(100);

  // Where the built-in pages (/health, /metrics, /status, /rpcz,
  // /connections) are served. They show internals: move them to an admin
  // port reachable only by operators, or turn them off.
  enum class BuiltinPages { kServingPort, kAdminPort, kOff };
  BuiltinPages builtin_pages = BuiltinPages::kServingPort;
  // kAdminPort: the address the pages listen on ("127.0.0.1:0": ephemeral,
  // see Server::admin_address()).
  std::string admin_address{};
  // kAdminPort: TLS on the admin port (a server context from
  // netpoll::TlsContext::NewServer; `tls` above to reuse the serving port's
  // certificate, or one of its own, e.g. requiring client certificates from
  // an operators' CA). The admin port speaks HTTP/1.1, so it offers ALPN
  // "http/1.1" only, whatever the context offers; ReloadKeyPair() on the
  // context reaches it. Plaintext is still served unless admin_tls_required.
  // Null: plaintext only.
  std::shared_ptr<const netpoll::TlsContext> admin_tls{};
  // With admin_tls: close admin connections that do not start with TLS.
  bool admin_tls_required = false;
};

// Counters of one method, or of the whole server.
struct MethodStats {
  int64_t received = 0;   // requests addressed to it
  int64_t succeeded = 0;  // answered with error_code 0
  int64_t failed = 0;     // answered with an error (limits, timeouts, handler errors, ...)
  int64_t in_flight = 0;  // holding a concurrency slot now
  // Handlers run on an I/O loop (HandlerThreads::kAdaptive or kIoLoop, or a
  // kIoLoop method) and on the worker pool.
  int64_t ran_on_loop = 0;
  int64_t ran_on_pool = 0;
  // kAdaptive: times the method moved from the loop to the pool (a handler
  // blocked its loop, or ran long); whether it runs on the loop now.
  int64_t moves_to_pool = 0;
  bool on_loop_now = false;
};

struct ServerStats {
  MethodStats total;  // every request, including unknown methods
  // Connections closed for a protocol error (bad magic, oversized body, ...).
  int64_t protocol_errors = 0;
  // Connections refused by ServerOptions::authenticator (answered ERPCAUTH
  // and closed).
  int64_t auth_failures = 0;
  // The memory budget (ServerOptions::memory_budget_bytes): its limit, what
  // it holds now and at most so far, how often a connection stopped reading
  // for it, how many wait for room now, frames refused from their header and
  // compressed payloads refused (ELIMIT) for it.
  size_t memory_budget_bytes = 0;
  int64_t memory_held_bytes = 0;
  int64_t memory_held_peak_bytes = 0;
  int64_t budget_read_pauses = 0;
  int64_t connections_waiting_for_memory = 0;
  int64_t frames_refused = 0;
  int64_t decompressions_refused = 0;
  // Times the server gave memory back after a burst
  // (release_memory_after_bursts).
  int64_t memory_releases = 0;
  // Connections whose reading is paused now by output backpressure (answers
  // not read by the peer), counted since start.
  int64_t output_pauses = 0;
  // Open connections now (0 before Start() and after Shutdown()).
  int64_t connections = 0;
  // Times an I/O loop blocked in a handler was handed to another thread
  // (HandlerThreads::kAdaptive).
  int64_t loop_handoffs = 0;
  // Calls waiting in the worker pool's queue now.
  int64_t queued_calls = 0;
  // The server's I/O loops since start (netpoll::TransportStatsSnapshot):
  // connections accepted, bytes read and written, busy-poll spins, eventfd
  // wake-ups by other threads.
  int64_t connections_accepted = 0;
  int64_t bytes_read = 0;
  int64_t bytes_written = 0;
  int64_t busy_polls = 0;
  int64_t wakeups = 0;
  // Keyed "package.Service/Method".
  std::map<std::string, MethodStats> methods;
};

}  // namespace nprpc

#endif  // RPC_SERVER_OPTIONS_H_
