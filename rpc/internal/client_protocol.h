// ClientProtocol: the client's protocol seam. A protocol names itself and
// makes the Transport of each endpoint; everything above the transport is
// protocol-independent.
//
//   Channel (facade) ── ChannelCore: endpoints, naming, health, retry budget
//        │                   │ load balancer picks an Endpoint
//        │                   └── Endpoint::transport  (made by ClientProtocol)
//        └── CallController per call: deadline, cancel, retries, backup
//               │  ClientRequest (service, method, trace, metadata,
//               │  compression, checksum, payload + attachment LinkBuffers,
//               ▼  cloned per attempt) + deadline/timeout + ClientCall
//            Transport::Send ── encodes, writes, decodes the answer ───────
//               ▲  ClientCall::CompleteWithAnswer / Complete               │
//               └──────────────────────────────────────────────────────────┘
//
// Below the line a protocol owns its wire format: framing, how deadline,
// trace context and metadata are carried, correlation of answers, decoding
// and error mapping into absl::Status with brpc error numbers (rpc/errors.h).
// Above it, the load balancer, retries, hedging and deadlines never see a
// byte of it. "baidu_std" (baidu_std_client_protocol.h) is the first
// implementation, "grpc" (grpc_client_protocol.h) the second, and the one
// whose transports also carry streaming calls (Transport::NewStream);
// client_protocols.h picks one by name (ChannelOptions::protocol).
//
// Thread safety: NewTransport() and Probe() are safe from any thread;
// Shutdown() and the destructor run on the thread that destroys the channel,
// never on one of `loops`.
#ifndef RPC_INTERNAL_CLIENT_PROTOCOL_H_
#define RPC_INTERNAL_CLIENT_PROTOCOL_H_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "netpoll/event_loop_group.h"
#include "netpoll/socket.h"
#include "netpoll/tls_context.h"
#include "rpc/authenticator.h"
#include "rpc/baidu_std.h"
#include "rpc/internal/transport.h"

namespace nprpc {

// What a protocol needs to know of the channel's options.
struct ClientProtocolOptions {
  // single: calls multiplexed on one connection per endpoint; pooled: one call
  // at a time per connection from a pool; short: a new connection per call.
  // Pooled and short share one netpoll::ConnectionPool per channel.
  enum class Connections { kSingle, kPooled, kShort };
  Connections connections = Connections::kSingle;
  netpoll::EventLoopGroup* loops = nullptr;  // not owned; outlives the protocol
  absl::Duration connect_timeout = absl::Seconds(1);
  absl::Duration reconnect_backoff = absl::Milliseconds(10);  // single
  absl::Duration max_reconnect_backoff = absl::Seconds(1);    // single
  size_t max_connections_per_endpoint = 256;                  // pooled, short
  size_t max_idle_per_endpoint = 64;                          // pooled
  absl::Duration idle_timeout = absl::Minutes(1);             // pooled
  size_t max_body_size = kDefaultMaxBodySize;
  // ChannelOptions::max_unwritten_bytes and write_timeout.
  size_t max_unwritten_bytes = size_t{64} << 20;
  absl::Duration write_timeout = absl::Seconds(30);
  // ChannelOptions::authenticator: the first request of every new connection
  // carries its credential. Null: none.
  std::shared_ptr<const Authenticator> authenticator{};
  // grpc: ChannelOptions::max_receive_message_size, keepalive_time and
  // keepalive_timeout.
  size_t max_receive_message_size = size_t{4} << 20;
  absl::Duration keepalive_time = absl::InfiniteDuration();
  absl::Duration keepalive_timeout = absl::Seconds(20);
  // ChannelOptions::tcp_keepalive, for every connection.
  netpoll::TcpKeepAliveOptions tcp_keepalive{};
  // ChannelOptions::tls: every connection is TLS. Null: plaintext.
  std::shared_ptr<const netpoll::TlsContext> tls{};
};

class ClientProtocol {
 public:
  virtual ~ClientProtocol() = default;

  // The name ChannelOptions::protocol selects it by: "baidu_std".
  virtual absl::string_view name() const = 0;

  // The transport of one endpoint ("host:port", "[v6]:port", "unix:/path").
  // Not after Shutdown().
  virtual std::shared_ptr<Transport> NewTransport(const std::string& address) = 0;

  // Checks that `address` is reachable again (a health probe: baidu_std
  // connects and closes). `done` runs once, later, never inside Probe().
  // Safe after Shutdown().
  virtual void Probe(const std::string& address, absl::AnyInvocable<void(absl::Status)> done) = 0;

  // Releases what the transports share (a connection pool), once, after
  // every transport made here has been shut down.
  virtual void Shutdown() = 0;
};

}  // namespace nprpc

#endif  // RPC_INTERNAL_CLIENT_PROTOCOL_H_
