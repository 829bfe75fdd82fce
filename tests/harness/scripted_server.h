// ScriptedServer: a baidu_std server whose behaviour per method is scripted,
// for fault-injection tests of clients. It speaks the wire format through the
// frame codec directly (no nprpc::Server), so a test controls every byte.
//
// Methods of any service (the payload must parse as example.EchoRequest):
//   Echo      answers EchoResponse{message} at once (attachment and
//             user_fields echoed)
//   Slow      answers after request.code() milliseconds
//   Never     never answers
//   Close     closes the connection without answering
//   Reset     resets the connection (RST) without answering
//   Garbage   answers with bytes that are not a baidu_std frame
//   Twice     answers twice with the same correlation_id
//   Stray     answers first with a correlation_id the client never sent,
//             then normally
//   Fail      answers with error_code = request.code() (2001 when 0)
//   Whoami    answers with this server's address as the message (after the
//             server's echo delay, see SetEchoDelay)
//   Peer      answers with what TLS established about the client:
//             "verified|<subject>" (a client certificate that verified),
//             "anonymous|" (TLS without one) or "<plaintext>"
//
// With a server TLS context (netpoll/tls_context.h) it speaks TLS only.
//
//   ScriptedServer server;
//   ASSERT_TRUE(server.Start().ok());            // 127.0.0.1, ephemeral port
//   auto channel = nprpc::Channel::Create(server.address());
//   server.Kill();                               // all connections reset
//   server.Restart();                            // same port again
//
// Thread safety: every method is safe from any thread (not from the server's
// own loop).
#ifndef TESTS_HARNESS_SCRIPTED_SERVER_H_
#define TESTS_HARNESS_SCRIPTED_SERVER_H_

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "netpoll/server.h"
#include "netpoll/tls_context.h"

namespace nprpc::testing {

class ScriptedServer {
 public:
  // `tls`: a server context (TLS required on every connection), or null for
  // plaintext.
  explicit ScriptedServer(std::shared_ptr<const netpoll::TlsContext> tls = nullptr);
  ~ScriptedServer();

  // Binds 127.0.0.1 on an ephemeral port (or `port`).
  absl::Status Start(int port = 0);
  // Resets every connection (as if the process died) and stops listening.
  void Kill();
  // Listens again on the same port.
  absl::Status Restart();

  std::string address() const;
  int port() const { return port_; }
  // Delays Echo and Whoami answers on this server (0: none).
  void SetEchoDelay(absl::Duration delay) {
    echo_delay_ms_.store(absl::ToInt64Milliseconds(delay));
  }
  // Requests received (all methods).
  int64_t requests() const { return requests_.load(); }
  // Answers written after a delay (Slow; Echo and Whoami with an echo delay).
  int64_t delayed_answers() const { return delayed_answers_.load(); }
  // Connections open now, and accepted since the last Start()/Restart().
  size_t connections();
  int64_t connections_accepted();

 private:
  std::shared_ptr<netpoll::ConnectionCallbacks> MakeCallbacks();

  const std::shared_ptr<const netpoll::TlsContext> tls_;
  std::unique_ptr<netpoll::EventLoopGroup> loops_;
  std::unique_ptr<netpoll::Server> server_;
  int port_ = 0;
  std::atomic<int64_t> requests_{0};
  std::atomic<int64_t> delayed_answers_{0};
  std::atomic<int64_t> echo_delay_ms_{0};
};

}  // namespace nprpc::testing

#endif  // TESTS_HARNESS_SCRIPTED_SERVER_H_
