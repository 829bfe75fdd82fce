// GrpcClientTransport: the transport of one endpoint in the "grpc" client
// protocol (grpc_client_protocol.h): gRPC over HTTP/2 (h2c with prior
// knowledge), many calls multiplexed as streams on one connection.
//
//   Send(call, request)   -> a stream: HEADERS (:path /service/method,
//                            grpc-timeout, metadata, traceparent, te,
//                            grpc-encoding), one length-prefixed message,
//                            END_STREAM; the answer (headers, one message,
//                            trailers with grpc-status) completes `call`.
//   NewStream(request)    -> a ClientStreamCore (rpc/stream_core.h) on a
//                            stream of the same connection.
//
// Loop: the transport lives on one netpoll loop. Its connection, the nghttp2
// client session that frames it (nghttp2_session_mem_recv over the input
// LinkBuffer, nghttp2_session_mem_send into Connection writes) and every
// stream's state are touched on that loop only; public methods post to it.
//
// Connections: one per endpoint, dialed on demand like
// SingleConnectionTransport (calls made while dialing wait for it; a failed
// dial fails them with EFAILEDSOCKET and starts a backoff, doubling up to
// max_reconnect_backoff, during which calls fail fast; the server's first
// SETTINGS frame resets it). When the server sends GOAWAY, its streams above
// last-stream-id fail with UNAVAILABLE (ELOGOFF: retried like a refusal by a
// stopping server), the others finish on the old connection, and new calls
// dial a new one. The server's MAX_CONCURRENT_STREAMS: calls beyond it wait in
// nghttp2's queue of streams to open, up to max_queued_streams more; beyond
// that they fail at once with EOVERCROWDED (RESOURCE_EXHAUSTED, retried on
// another endpoint). A connection runs out of stream ids after 2^30 calls:
// it then drains like after GOAWAY.
//
// Status: the server's grpc-status and grpc-message (percent-decoded) give
// the call's absl::Status with the exact canonical code (no brpc number
// payload; ErrorCodeOf() derives one). Without grpc-status, an HTTP status
// other than 200 is mapped as gRPC's spec says (404 UNIMPLEMENTED, 503
// UNAVAILABLE, ...). RST_STREAM from the server: REFUSED_STREAM -> ELOGOFF
// (UNAVAILABLE, retried), CANCEL -> CANCELLED, ENHANCE_YOUR_CALM ->
// RESOURCE_EXHAUSTED, others INTERNAL. A broken connection fails its calls
// with EFAILEDSOCKET (UNAVAILABLE, retried; the endpoint is probed).
//
// Flow control: the connection window is given back as DATA arrives; a
// stream's window only as its messages are read (unary: at once; a stream:
// when the reader has taken every whole message received), so a slow reader
// stops its server's writer and at most the stream window (256 KiB) plus one
// message is buffered per stream. Writes: a stream's Write callback runs once
// its unsent bytes are at most kStreamSendBound.
//
// Keepalive (keepalive_time finite): a PING after that long without one;
// not acked within keepalive_timeout, the connection closes and its calls
// fail with UNAVAILABLE.
//
// Thread safety: every public method is safe from any thread. Owned through
// shared_ptr; loop tasks and connection callbacks hold weak_ptrs.
#ifndef RPC_INTERNAL_GRPC_CLIENT_TRANSPORT_H_
#define RPC_INTERNAL_GRPC_CLIENT_TRANSPORT_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "netpoll/connection.h"
#include "netpoll/dialer.h"
#include "netpoll/event_loop.h"
#include "netpoll/tls_context.h"
#include "rpc/internal/client_call.h"
#include "rpc/internal/grpc_wire.h"
#include "rpc/internal/transport.h"
#include "rpc/stream_core.h"

namespace nprpc {

struct GrpcTransportOptions {
  absl::Duration connect_timeout = absl::Seconds(1);
  absl::Duration reconnect_backoff = absl::Milliseconds(10);
  absl::Duration max_reconnect_backoff = absl::Seconds(1);
  // Largest response message accepted (RESOURCE_EXHAUSTED beyond).
  size_t max_receive_message_size = grpc_wire::kDefaultMaxMessageSize;
  // ChannelOptions::max_unwritten_bytes and write_timeout.
  size_t max_unwritten_bytes = size_t{64} << 20;
  absl::Duration write_timeout = absl::Seconds(30);
  // ChannelOptions::keepalive (TCP keepalive on the connection).
  netpoll::TcpKeepAliveOptions tcp_keepalive{};
  // HTTP/2 PINGs (ChannelOptions::keepalive_time); infinite: none.
  absl::Duration keepalive_time = absl::InfiniteDuration();
  absl::Duration keepalive_timeout = absl::Seconds(20);
  // Streams waiting for a slot beyond the server's MAX_CONCURRENT_STREAMS.
  size_t max_queued_streams = 1024;
  // TLS for the connection (a client context offering ALPN "h2"; null:
  // plaintext h2c). When ALPN was negotiated the server must have chosen
  // "h2", or the dial fails with EFAILEDSOCKET naming what it chose. A
  // server that chose none is accepted: an nprpc server answers HTTP/2
  // whatever ALPN says (it sniffs the preface), and a server that does not
  // speak HTTP/2 fails at its first frame; gRPC C++ servers always choose h2.
  std::shared_ptr<const netpoll::TlsContext> tls{};
  // :authority; empty: the address ("localhost" for a unix socket).
  std::string authority;
};

namespace grpc_client_internal {
class GrpcConnection;
class GrpcStream;
}  // namespace grpc_client_internal

class GrpcClientTransport final : public Transport,
                                  public std::enable_shared_from_this<GrpcClientTransport> {
 public:
  // A stream's Write callback runs once its unsent bytes are at most this.
  static constexpr size_t kStreamSendBound = 64 * 1024;
  // The window each stream gives its server (SETTINGS_INITIAL_WINDOW_SIZE),
  // and the connection's.
  static constexpr int32_t kStreamWindow = 256 * 1024;
  static constexpr int32_t kConnectionWindow = 16 << 20;

  // `loop` must outlive the transport.
  static std::shared_ptr<GrpcClientTransport> Create(std::string address, netpoll::EventLoop* loop,
                                                     const GrpcTransportOptions& options);
  ~GrpcClientTransport() override;

  void Send(ClientCallPtr call, const ClientRequest& request, absl::Time deadline,
            absl::Duration timeout) override;
  void Abandon(const ClientCallPtr& call, absl::Status status) override;
  void Shutdown() override;
  size_t in_flight() const override { return in_flight_.load(std::memory_order_relaxed); }
  std::shared_ptr<ClientStreamCore> NewStream(const ClientRequest& request,
                                              ClientStreamStart start) override;

  netpoll::EventLoop* loop() const { return loop_; }
  const std::string& address() const { return address_; }
  const GrpcTransportOptions& options() const { return options_; }

 private:
  friend class grpc_client_internal::GrpcConnection;
  friend class grpc_client_internal::GrpcStream;
  using GrpcConnectionPtr = std::shared_ptr<grpc_client_internal::GrpcConnection>;
  using GrpcStreamPtr = std::shared_ptr<grpc_client_internal::GrpcStream>;

  GrpcClientTransport(std::string address, netpoll::EventLoop* loop,
                      const GrpcTransportOptions& options);
  // Loop thread: puts `stream` on the current connection (dialing one if
  // needed), or ends it (shut down, backoff).
  void StartInLoop(const GrpcStreamPtr& stream);
  // Loop thread, from connections.
  void OnConnectionReady(grpc_client_internal::GrpcConnection* conn);
  void OnConnectionDialFailed(grpc_client_internal::GrpcConnection* conn, const absl::Status& why);
  void OnConnectionProven();
  void OnConnectionDraining(grpc_client_internal::GrpcConnection* conn);
  // `why` (the connection's end) is kept when it broke before the handshake.
  void OnConnectionClosed(grpc_client_internal::GrpcConnection* conn, bool proven,
                          const absl::Status& why);
  void ForgetUnary(int64_t call_id);

  const std::string address_;
  netpoll::EventLoop* const loop_;  // not owned
  const GrpcTransportOptions options_;
  std::atomic<size_t> in_flight_{0};
  std::atomic<bool> shutdown_{false};

  // Loop thread only.
  GrpcConnectionPtr current_;                          // connecting or connected
  absl::flat_hash_set<GrpcConnectionPtr> draining_;    // after GOAWAY
  absl::flat_hash_map<int64_t, GrpcStreamPtr> unary_;  // by ClientCall id
  absl::Time backoff_until_ = absl::InfinitePast();
  absl::Duration backoff_;
  absl::Status last_dial_error_;
  int unproven_breaks_ = 0;  // connections in a row that broke before SETTINGS
};

}  // namespace nprpc

#endif  // RPC_INTERNAL_GRPC_CLIENT_TRANSPORT_H_
