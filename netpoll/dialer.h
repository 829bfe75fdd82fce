// Dialer: opens client connections with a non-blocking connect and a timeout.
//
//   netpoll::DialOptions options;
//   options.timeout = absl::Seconds(1);
//   options.callbacks = callbacks;           // on_request, on_disconnect, ...
//   netpoll::Dialer::Dial(loop, "127.0.0.1:8000", options,
//                         [](absl::StatusOr<ConnectionPtr> conn) { ... });
//
// Numeric addresses (IPv4, IPv6, unix:/path) connect straight away. Names
// ("localhost:8000") are resolved on the Dialer's resolver thread, never on a
// loop thread.
//
// `done` runs exactly once, on the loop thread: with an active connection
// (on_connect has run), or with DeadlineExceeded on timeout, Unavailable when
// the connect failed, or the resolver's error.
//
// TLS: with a client context in options.connection.tls, `done` waits for
// the handshake too (bounded by `timeout` and the context's handshake
// timeout) and a failed one completes it with Unavailable naming the cause
// ("certificate has expired", "unable to get local issuer certificate",
// "hostname mismatch", ...). A context without a server name verifies the
// server against the name dialed ("localhost:8000": SNI and certificate
// name "localhost", TlsContext::ForServerName), or against the IP address
// when the address is numeric (the certificate's IP SANs).
//
// Thread safety: Dial() is safe from any thread; DialSync() must not run on a
// loop thread (it blocks).
#ifndef NETPOLL_DIALER_H_
#define NETPOLL_DIALER_H_

#include <memory>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "netpoll/connection.h"
#include "netpoll/event_loop.h"
#include "netpoll/socket.h"
#include "netpoll/socket_address.h"

namespace netpoll {

struct DialOptions {
  absl::Duration timeout = absl::Seconds(5);
  ConnectionOptions connection;
  std::shared_ptr<const ConnectionCallbacks> callbacks;
  // TCP connections only (not unix:).
  TcpKeepAliveOptions keepalive;
};

class Dialer {
 public:
  using DoneCallback = absl::AnyInvocable<void(absl::StatusOr<ConnectionPtr>)>;

  // `loop` must outlive the connection.
  static void Dial(EventLoop* loop, absl::string_view address, const DialOptions& options,
                   DoneCallback done);
  static void Dial(EventLoop* loop, const SocketAddress& address, const DialOptions& options,
                   DoneCallback done);
  // Blocks the calling (non-loop) thread until Dial() completes.
  static absl::StatusOr<ConnectionPtr> DialSync(EventLoop* loop, absl::string_view address,
                                                const DialOptions& options);
};

}  // namespace netpoll

#endif  // NETPOLL_DIALER_H_
