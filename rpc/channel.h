// Channel: the client side of calls to one server or a group of servers, in
// baidu_std or gRPC (ChannelOptions::protocol "grpc": any gRPC server, and
// streaming calls through NewStream).
//
//   nprpc::ChannelOptions options;
//   options.timeout = absl::Seconds(1);
//   auto channel = nprpc::Channel::Create("127.0.0.1:8000", options);
//   // or "list://10.0.0.1:8000,10.0.0.2:8000", or a NamingService
//   example::EchoRequest request;
//   request.set_message("hello");
//   example::EchoResponse response;
//   absl::Status s = (*channel)->CallMethod("example.EchoService", "Echo",
//                                           request, &response);
//
// Connection types (ChannelOptions::connection_type), per endpoint:
//   single  all calls multiplexed on one connection, matched by
//           correlation_id (the default; the fastest for most traffic)
//   pooled  one call at a time per connection, from a connection pool
//           (for servers that cannot multiplex, or very large messages)
//   short   a new connection per call (rare calls, or legacy servers)
//
// Each call picks an endpoint with the load balancer (rr, wrr, random, la,
// c_hash). Endpoints that fail to connect are taken out and probed back in
// with backoff. Failed attempts are retried (RetryOptions) with backoff and
// jitter, never past the deadline, on an endpoint not yet tried, within a
// retry budget. Backup requests (hedging) send a second attempt after a delay;
// the first answer wins. Attempts get fresh correlation ids, so a late answer
// to an abandoned attempt is dropped.
//
// Exactly once: every call completes once, with the response, an error
// response, DEADLINE_EXCEEDED (ERPCTIMEDOUT), CANCELLED, or UNAVAILABLE.
//
// Threads: `done` runs on one of the channel's I/O loop threads (or, when the
// call fails before it is sent, on the calling thread), so callbacks must not
// block. The sync CallMethod blocks its caller: on a loop thread of the
// channel (e.g. inside a `done` callback) it returns FAILED_PRECONDITION
// instead of deadlocking.
//
// Thread safety: CallMethod, in_flight, attempts and outlier_stats are safe
// from any thread.
// The destructor blocks until the calls in flight have completed and the
// connections are closed, so it must run on a thread that is not one of the
// channel's loop threads (ChannelOptions::loops), and not inside a `done`
// callback, which runs on one of them: that aborts with a message naming
// this rule (waiting there could deadlock). The response message and
// CallOptions::info must stay alive until the call completes; the request
// only until CallMethod returns.
#ifndef RPC_CHANNEL_H_
#define RPC_CHANNEL_H_

#include <memory>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "netpoll/event_loop_group.h"
#include "netpoll/socket.h"
#include "netpoll/tls_context.h"
#include "rpc/authenticator.h"
#include "rpc/baidu_std.h"
#include "rpc/call_options.h"
#include "rpc/interceptor.h"
#include "rpc/naming_service.h"
#include "rpc/outlier_detection.h"
#include "rpc/retry_policy.h"
#include "rpc/stream_core.h"

namespace nprpc {

class ChannelCore;

enum class ConnectionType { kSingle, kPooled, kShort };

// "single", "pooled", "short".
absl::StatusOr<ConnectionType> ParseConnectionType(absl::string_view name);

struct ChannelOptions {
  // The wire protocol: "baidu_std", or "grpc" (gRPC over HTTP/2, h2c with
  // prior knowledge: calls any gRPC server, and carries streaming calls,
  // NewStream). Channel::Create fails with INVALID_ARGUMENT for an unknown
  // name.
  std::string protocol = "baidu_std";
  ConnectionType connection_type = ConnectionType::kSingle;
  // "rr", "wrr", "random", "la" (least outstanding) or "c_hash".
  std::string load_balancer = "rr";
  // Applies when a call sets neither timeout nor deadline.
  absl::Duration timeout = absl::Seconds(5);
  absl::Duration connect_timeout = absl::Seconds(1);
  RetryOptions retry;
  // Infinite: no backup requests unless a call asks for them.
  absl::Duration backup_request_delay = absl::InfiniteDuration();
  // single: after a failed dial, or a connection that broke before it
  // delivered any answer, calls to that endpoint fail fast for this long
  // (doubling up to max_reconnect_backoff; the first answer resets it).
  absl::Duration reconnect_backoff = absl::Milliseconds(10);
  absl::Duration max_reconnect_backoff = absl::Seconds(1);
  // An endpoint that failed is probed (a connect) after this long, doubling
  // up to max_health_check_interval until a probe succeeds.
  absl::Duration health_check_interval = absl::Milliseconds(100);
  absl::Duration max_health_check_interval = absl::Seconds(5);
  // A call that finds no server (the naming service has not answered yet,
  // or an update emptied the list for a moment) waits this long for one,
  // never past its deadline, before failing with "no server available".
  absl::Duration naming_wait = absl::Seconds(1);
  // TCP keepalive on every connection (off by default): a server behind a
  // blackhole (no RST, no answer) is detected after idle + interval * count
  // instead of at each call's deadline (netpoll/socket.h).
  netpoll::TcpKeepAliveOptions tcp_keepalive;
  // Ejects endpoints whose calls fail or are slow compared with their
  // peers' (off by default; rpc/outlier_detection.h).
  OutlierDetectionOptions outlier;
  // dns:// targets: resolve again this often (and soon after an endpoint
  // fails to connect).
  absl::Duration dns_refresh_interval = absl::Seconds(30);
  // pooled and short.
  size_t max_connections_per_endpoint = 256;
  size_t max_idle_per_endpoint = 64;
  absl::Duration idle_timeout = absl::Minutes(1);
  size_t max_body_size = kDefaultMaxBodySize;
  // Requests waiting unsent on one connection may hold at most this much
  // memory (blocks, not payload bytes); a call beyond it fails at once with
  // EOVERCROWDED (RESOURCE_EXHAUSTED) instead of queueing behind a server
  // that does not read. brpc's socket_max_unwritten_bytes, same default.
  size_t max_unwritten_bytes = size_t{64} << 20;
  // A connection whose requests wait unsent with no progress for this long
  // (the server stopped reading) is closed; its calls fail with
  // EFAILEDSOCKET. Infinite: never.
  absl::Duration write_timeout = absl::Seconds(30);
  // I/O loops; not owned, must outlive the channel. Null: a process-wide
  // group with one loop per core that busy-polls for
  // netpoll::kRequestResponseBusyPoll after I/O (DefaultClientLoops()).
  netpoll::EventLoopGroup* loops = nullptr;
  // Presents a credential on each new connection's first request
  // (rpc/authenticator.h); null: none.
  std::shared_ptr<const Authenticator> authenticator{};
  // grpc: the largest response message accepted (RESOURCE_EXHAUSTED beyond).
  size_t max_receive_message_size = size_t{4} << 20;
  // grpc: after this long, an HTTP/2 PING checks the connection (besides the
  // TCP `keepalive` above); not acked within
  // keepalive_timeout, the connection closes and its calls fail with
  // UNAVAILABLE. Infinite: no pings.
  absl::Duration keepalive_time = absl::InfiniteDuration();
  absl::Duration keepalive_timeout = absl::Seconds(20);
  // Run around every call, interceptors[0] outermost (rpc/interceptor.h).
  ClientInterceptors interceptors{};
  // Per-method client metrics (rpc/metrics.h, nprpc_client_* in /metrics).
  bool method_metrics = true;
  // TLS for every connection (netpoll/tls_context.h, a client context from
  // netpoll::TlsContext::NewClient: CAs, server name for SNI and
  // verification, client certificate for mTLS, ALPN, session resumption).
  // A context without a server name takes it from the target, as gRPC
  // does: "api.internal:443", "list://a.internal:80,..." and
  // "dns://api.internal:443" send SNI and verify the certificate against
  // the host name ("api.internal"); an IP address ("10.0.0.1:443") is
  // matched against the certificate's IP SANs. A server name set in the
  // context wins. A failed handshake fails the calls waiting for it with
  // UNAVAILABLE naming the cause. Null: plaintext.
  std::shared_ptr<const netpoll::TlsContext> tls{};
};

// The process-wide client loops (created on first use, never destroyed).
netpoll::EventLoopGroup* DefaultClientLoops();

class Channel {
 public:
  using DoneCallback = absl::AnyInvocable<void(absl::Status)>;

  // `target`: "host:port", "[v6]:port", "unix:/path", "list://a,b,...",
  // "dns://name:port", "file:///path" or a registered scheme
  // (rpc/naming_services.h). Does not connect yet.
  static absl::StatusOr<std::unique_ptr<Channel>> Create(absl::string_view target,
                                                         const ChannelOptions& options = {});
  // Endpoints from a naming service (shared: it may outlive the channel).
  static absl::StatusOr<std::unique_ptr<Channel>> Create(std::shared_ptr<NamingService> naming,
                                                         const ChannelOptions& options = {});
  // In-flight calls complete with CANCELLED; returns after they have. Not on
  // one of the channel's loop threads (see Thread safety above).
  ~Channel();
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  // Async: `done` runs exactly once.
  void CallMethod(absl::string_view service, absl::string_view method,
                  const google::protobuf::Message& request, google::protobuf::Message* response,
                  const CallOptions& options, DoneCallback done);

  // Sync: blocks until the call completes. On one of the channel's loop
  // threads it returns FAILED_PRECONDITION at once (it would deadlock).
  absl::Status CallMethod(absl::string_view service, absl::string_view method,
                          const google::protobuf::Message& request,
                          google::protobuf::Message* response, const CallOptions& options = {});

  // Starts a call of a streaming method (rpc/stream_core.h; generated stubs
  // wrap it in typed readers and writers). Only a protocol with streams
  // carries it (ChannelOptions::protocol "grpc"); otherwise, and when the
  // call cannot start, the stream fails: Finish() reports why.
  // The load balancer picks the endpoint (options.hash_key); a stream is
  // never retried nor hedged. Applied: the deadline (options.timeout /
  // deadline, else the channel's timeout), options.cancel, metadata, trace
  // (traceparent) and compress_type (gzip, zlib); interceptors' BeforeCall
  // (may add metadata or reject) and AfterCall with the final status (byte
  // counts 0). Not counted in in_flight() nor in method metrics.
  std::shared_ptr<ClientStreamCore> NewStream(absl::string_view service, absl::string_view method,
                                              const CallOptions& options = {});

  // Calls started and not yet completed.
  size_t in_flight() const;
  // Attempts (first tries, retries, backups) sent so far.
  int64_t attempts() const;
  // Outlier ejections so far and now (zeros when detection is off).
  OutlierStats outlier_stats() const;

 private:
  Channel(std::shared_ptr<ChannelCore> core, netpoll::EventLoopGroup* loops,
          absl::Duration default_timeout, ClientInterceptors interceptors, bool method_metrics);
  // True on one of the channel's loop threads.
  bool OnLoopThread() const;

  const std::shared_ptr<ChannelCore> core_;
  netpoll::EventLoopGroup* const loops_;  // not owned
  const absl::Duration default_timeout_;
  const ClientInterceptors interceptors_;  // ChannelOptions::interceptors
  const bool method_metrics_;
};

}  // namespace nprpc

#endif  // RPC_CHANNEL_H_
