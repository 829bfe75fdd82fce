// SingleConnectionTransport: the "single" connection type. All calls to one
// address share one multiplexed connection, matched by correlation_id.
//
// The transport dials on demand: the first call (or the first after a
// failure) starts a dial and waits for it; calls made meanwhile queue behind
// it and leave in one write when it connects. A failed dial fails the queued
// calls and starts a backoff during which calls fail fast; the next call after
// the backoff dials again.
//
// Exactly once: whoever removes a call from pending_ (its response, the
// connection failing, Shutdown()) completes it; the others find it gone.
// Abandon() removes it too, and completes it whether it found it or not: a
// call taken by its response or by the connection failing may not have
// completed yet, and ClientCall lets only the first completion through, after
// waiting for a decode under way (see Transport::Abandon). A response for a
// call no longer pending (late, duplicated, unknown) is dropped and logged
// (rate-limited), as on pooled connections.
//
// Authentication (TransportOptions::authenticator): each new connection asks
// for a credential once it is connected (on the loop thread) and the first
// request frame written on it carries it; every later frame goes without, as
// brpc's client does. The first frame is written under mu_, so no concurrent
// Send() can overtake it. If the credential cannot be made, the calls waiting
// for the connection fail with ERPCAUTH and it closes unused. If the server
// refuses it (an ERPCAUTH answer to that first frame, then it closes), the
// calls still pending on the connection fail with that answer, not as a
// broken connection (which a retry would repeat).
//
// Thread safety: every public method is safe from any thread. Owned through
// shared_ptr; connection callbacks hold weak_ptrs.
#ifndef RPC_INTERNAL_SINGLE_CONNECTION_TRANSPORT_H_
#define RPC_INTERNAL_SINGLE_CONNECTION_TRANSPORT_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "netpoll/connection.h"
#include "netpoll/event_loop.h"
#include "netpoll/link_buffer.h"
#include "netpoll/mutex.h"
#include "netpoll/socket.h"
#include "netpoll/tls_context.h"
#include "rpc/authenticator.h"
#include "rpc/internal/client_call.h"
#include "rpc/internal/frame_codec.h"
#include "rpc/internal/transport.h"

namespace nprpc {

struct TransportOptions {
  absl::Duration connect_timeout = absl::Seconds(1);
  absl::Duration reconnect_backoff = absl::Milliseconds(10);
  absl::Duration max_reconnect_backoff = absl::Seconds(1);
  size_t max_body_size = kDefaultMaxBodySize;
  // ChannelOptions::max_unwritten_bytes and write_timeout.
  size_t max_unwritten_bytes = size_t{64} << 20;
  absl::Duration write_timeout = absl::Seconds(30);
  // ChannelOptions::authenticator; null: no credential is sent.
  std::shared_ptr<const Authenticator> authenticator{};
  netpoll::TcpKeepAliveOptions keepalive{};
  // ChannelOptions::tls; null: plaintext.
  std::shared_ptr<const netpoll::TlsContext> tls{};
};

class SingleConnectionTransport : public Transport,
                                  public std::enable_shared_from_this<SingleConnectionTransport> {
 public:
  // `loop` must outlive the transport.
  static std::shared_ptr<SingleConnectionTransport> Create(std::string address,
                                                           netpoll::EventLoop* loop,
                                                           const TransportOptions& options);
  ~SingleConnectionTransport() override;

  void Send(ClientCallPtr call, const ClientRequest& request, absl::Time deadline,
            absl::Duration timeout) override;
  void Abandon(const ClientCallPtr& call, absl::Status status) override;
  // Later Sends fail with CANCELLED.
  void Shutdown() override;
  size_t in_flight() const override;
  netpoll::EventLoop* loop() const { return loop_; }

 private:
  enum class State { kIdle, kConnecting, kConnected, kShutdown };

  SingleConnectionTransport(std::string address, netpoll::EventLoop* loop,
                            const TransportOptions& options);
  void StartDialLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnDialed(absl::StatusOr<netpoll::ConnectionPtr> conn);
  void OnInput(const netpoll::ConnectionPtr& conn, netpoll::LinkBuffer& input);
  void OnDisconnect(const netpoll::ConnectionPtr& conn, const absl::Status& reason);
  // Removes the call from pending_ and completes it with status.
  void Fail(int64_t correlation_id, absl::Status status);
  // The server answered `correlation_id` with ERPCAUTH: if that call carried
  // the credential of `conn`, the calls still pending on it will fail with
  // the answer when the server closes it.
  void NoteRefusal(const netpoll::ConnectionPtr& conn, int64_t correlation_id,
                   const std::string& error_text);
  // Removes and returns the pending call (null if none). `answer`: the
  // server answered it, which proves the connection (resets the backoff).
  ClientCallPtr Take(int64_t correlation_id, bool answer = false);

  // Constant after construction.
  const std::string address_;
  netpoll::EventLoop* const loop_;  // not owned
  const TransportOptions options_;
  const FrameDecoder decoder_;
  std::shared_ptr<const netpoll::ConnectionCallbacks> callbacks_;

  mutable netpoll::Mutex mu_;
  State state_ ABSL_GUARDED_BY(mu_) = State::kIdle;
  netpoll::ConnectionPtr conn_ ABSL_GUARDED_BY(mu_);
  // Sent or queued calls awaiting completion.
  absl::flat_hash_map<int64_t, ClientCallPtr> pending_ ABSL_GUARDED_BY(mu_);
  // Frames waiting for the dial in progress.
  std::vector<std::pair<int64_t, netpoll::LinkBuffer>> waiting_ ABSL_GUARDED_BY(mu_);
  absl::Time backoff_until_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Duration backoff_ ABSL_GUARDED_BY(mu_);
  absl::Status last_dial_error_ ABSL_GUARDED_BY(mu_);
  // The current connection delivered an answer, and how many connections in
  // a row broke before any. From the second such break on, the next dial
  // waits as after a failed one: a server that accepts and breaks every
  // connection is redialed with growing backoff, not in a loop, while one
  // broken connection is redialed at once. The first answer resets both.
  bool answered_ ABSL_GUARDED_BY(mu_) = false;
  int answerless_breaks_ ABSL_GUARDED_BY(mu_) = 0;
  // Authentication of the current connection: the credential its first frame
  // must still carry (none once written, or without an authenticator), the
  // call whose frame carried it, and the server's refusal of it.
  std::optional<std::string> credential_ ABSL_GUARDED_BY(mu_);
  std::optional<int64_t> credential_call_ ABSL_GUARDED_BY(mu_);
  // The text of the ERPCAUTH error the refusal gives the calls left. (Each
  // call gets a Status of its own: a status shared by threads is a false
  // race under TSan with the prebuilt Abseil.)
  std::optional<std::string> refused_ ABSL_GUARDED_BY(mu_);
};

}  // namespace nprpc

#endif  // RPC_INTERNAL_SINGLE_CONNECTION_TRANSPORT_H_
