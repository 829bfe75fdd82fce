#include "rpc/internal/single_connection_transport.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "netpoll/dialer.h"
#include "netpoll/logging.h"
#include "rpc/errors.h"
#include "rpc/internal/baidu_std_client_codec.h"

namespace nprpc {

std::shared_ptr<SingleConnectionTransport> SingleConnectionTransport::Create(
    std::string address, netpoll::EventLoop* loop, const TransportOptions& options) {
  std::shared_ptr<SingleConnectionTransport> transport(
      new SingleConnectionTransport(std::move(address), loop, options));
  std::weak_ptr<SingleConnectionTransport> weak = transport;
  auto callbacks = std::make_shared<netpoll::ConnectionCallbacks>();
  callbacks->on_request = [weak](const netpoll::ConnectionPtr& conn, netpoll::LinkBuffer& in) {
    if (auto self = weak.lock()) {
      self->OnInput(conn, in);
    } else {
      conn->Close(absl::CancelledError("channel destroyed"));
    }
  };
  callbacks->on_disconnect = [weak](const netpoll::ConnectionPtr& conn, const absl::Status& why) {
    if (auto self = weak.lock()) self->OnDisconnect(conn, why);
  };
  transport->callbacks_ = std::move(callbacks);
  return transport;
}

SingleConnectionTransport::SingleConnectionTransport(std::string address, netpoll::EventLoop* loop,
                                                     const TransportOptions& options)
    : address_(std::move(address)),
      loop_(loop),
      options_(options),
      decoder_(FrameDecoderOptions{options.max_body_size}),
      backoff_(options.reconnect_backoff) {}

SingleConnectionTransport::~SingleConnectionTransport() = default;

size_t SingleConnectionTransport::in_flight() const {
  netpoll::MutexLock lock(&mu_);
  return pending_.size();
}

void SingleConnectionTransport::Send(ClientCallPtr call, const ClientRequest& request,
                                     absl::Time /*deadline*/, absl::Duration timeout) {
  const int64_t id = call->id();
  call->set_remote_address(address_);
  netpoll::LinkBuffer frame;
  if (absl::Status encoded = EncodeBaiduStdRequest(id, request, timeout, frame); !encoded.ok()) {
    call->Complete(std::move(encoded));
    return;
  }
  netpoll::ConnectionPtr conn;
  absl::Status fail_now;
  absl::Status written;  // of a first frame, written under mu_
  {
    netpoll::MutexLock lock(&mu_);
    switch (state_) {
      case State::kShutdown:
        fail_now = absl::CancelledError("channel is shut down");
        break;
      case State::kConnected:
        if (credential_.has_value()) {
          // The connection's first frame (the calls it was dialed for were
          // abandoned): it carries the credential, and is written before any
          // other Send() can write.
          fail_now = AddBaiduStdCredential(*credential_, frame);
          if (!fail_now.ok()) break;
          credential_.reset();
          credential_call_ = id;
          pending_[id] = call;
          written = conn_->Write(std::move(frame));
          if (!written.ok()) conn = conn_;
          break;
        }
        pending_[id] = call;
        conn = conn_;
        break;
      case State::kConnecting:
        pending_[id] = call;
        waiting_.emplace_back(id, std::move(frame));
        break;
      case State::kIdle:
        if (absl::Now() < backoff_until_) {
          fail_now = MakeRpcError(
              EFAILEDSOCKET,
              absl::StrCat("cannot connect to ", address_, " (retrying after ",
                           absl::FormatDuration(backoff_), "): ", last_dial_error_.message()));
          break;
        }
        pending_[id] = call;
        waiting_.emplace_back(id, std::move(frame));
        StartDialLocked();
        break;
    }
  }
  if (!fail_now.ok()) {
    call->Complete(std::move(fail_now));
    return;
  }
  if (conn) {
    // NOLINTNEXTLINE(bugprone-use-after-move): frame moved only where it was written.
    if (written.ok()) written = conn->Write(std::move(frame));
    if (!written.ok()) {
      Fail(id, MakeRpcError(absl::IsResourceExhausted(written) ? EOVERCROWDED : EFAILEDSOCKET,
                            written.message()));
    }
  }
}

void SingleConnectionTransport::StartDialLocked() {
  state_ = State::kConnecting;
  netpoll::DialOptions options;
  options.timeout = options_.connect_timeout;
  options.callbacks = callbacks_;
  options.connection.max_output_bytes = options_.max_unwritten_bytes;
  options.connection.write_timeout = options_.write_timeout;
  options.keepalive = options_.keepalive;
  options.connection.tls = options_.tls;
  std::weak_ptr<SingleConnectionTransport> weak = weak_from_this();
  netpoll::Dialer::Dial(loop_, address_, options,
                        [weak](absl::StatusOr<netpoll::ConnectionPtr> conn) {
                          if (auto self = weak.lock()) {
                            self->OnDialed(std::move(conn));
                          } else if (conn.ok()) {
                            (*conn)->Close(absl::CancelledError("channel destroyed"));
                          }
                        });
}

void SingleConnectionTransport::OnDialed(absl::StatusOr<netpoll::ConnectionPtr> conn) {
  loop_->AssertInLoopThread();
  // The new connection's credential, asked for before taking mu_ (the
  // authenticator may take its time).
  std::optional<std::string> credential;
  std::optional<std::string> no_credential;  // why none could be made
  if (conn.ok() && options_.authenticator != nullptr) {
    absl::StatusOr<std::string> made = GenerateBaiduStdCredential(*options_.authenticator);
    if (made.ok()) {
      credential = *std::move(made);
    } else {
      no_credential = std::string(made.status().message());
    }
  }
  std::vector<std::pair<int64_t, netpoll::LinkBuffer>> waiting;
  // Each call gets a status of its own (see refused_).
  std::vector<std::pair<ClientCallPtr, absl::Status>> failed;
  absl::Status written;
  {
    netpoll::MutexLock lock(&mu_);
    waiting.swap(waiting_);
    if (state_ == State::kShutdown) {
      if (conn.ok()) (*conn)->Close(absl::CancelledError("channel shut down"));
      return;
    }
    // Fails the waiting calls still pending with (code, text).
    std::optional<std::pair<int32_t, std::string>> fail_waiting;
    if (!conn.ok()) {
      state_ = State::kIdle;
      last_dial_error_ = conn.status();
      backoff_until_ = absl::Now() + backoff_;
      backoff_ = std::min(backoff_ * 2, options_.max_reconnect_backoff);
      fail_waiting.emplace(EFAILEDSOCKET, absl::StrCat("cannot connect to ", address_, ": ",
                                                       conn.status().message()));
    } else if (no_credential.has_value()) {
      // Nothing is sent; the next call dials and asks again.
      state_ = State::kIdle;
      fail_waiting.emplace(ERPCAUTH, *no_credential);
    } else {
      state_ = State::kConnected;
      conn_ = *conn;
      answered_ = false;  // the backoff resets with the first answer (Take)
      backoff_until_ = absl::InfinitePast();
      credential_ = std::move(credential);
      credential_call_.reset();
      refused_.reset();
      // One write, under mu_: a Send() that sees kConnected writes after it,
      // so the frame carrying the credential goes first.
      netpoll::LinkBuffer batch;
      for (auto& [id, frame] : waiting) {
        auto it = pending_.find(id);
        if (it == pending_.end()) continue;
        if (credential_.has_value()) {
          if (absl::Status added = AddBaiduStdCredential(*credential_, frame); !added.ok()) {
            failed.emplace_back(std::move(it->second), std::move(added));
            pending_.erase(it);
            continue;
          }
          credential_.reset();
          credential_call_ = id;
        }
        batch.Append(std::move(frame));
      }
      if (!batch.empty()) written = conn_->Write(std::move(batch));
    }
    // Calls that timed out or were cancelled while dialing are gone from
    // pending_.
    for (auto& [id, frame] : waiting) {
      if (!fail_waiting.has_value()) break;
      auto it = pending_.find(id);
      if (it == pending_.end()) continue;
      failed.emplace_back(std::move(it->second),
                          MakeRpcError(fail_waiting->first, fail_waiting->second));
      pending_.erase(it);
    }
  }
  if (conn.ok() && no_credential.has_value()) {
    (*conn)->Close(absl::CancelledError("no credential for the connection"));
  } else if (conn.ok() && !written.ok()) {
    (*conn)->Close(written);  // OnDisconnect fails the calls
  }
  for (auto& [call, why] : failed) call->Complete(std::move(why));
}

ClientCallPtr SingleConnectionTransport::Take(int64_t correlation_id, bool answer) {
  netpoll::MutexLock lock(&mu_);
  auto it = pending_.find(correlation_id);
  if (it == pending_.end()) return nullptr;
  ClientCallPtr call = std::move(it->second);
  pending_.erase(it);
  if (answer && !answered_) {
    answered_ = true;
    answerless_breaks_ = 0;
    backoff_ = options_.reconnect_backoff;
  }
  return call;
}

void SingleConnectionTransport::Abandon(const ClientCallPtr& call, absl::Status status) {
  // Forgotten first, so a late answer is dropped. Then completed even when
  // not found: OnInput() or OnDisconnect() may have taken it from pending_
  // and not completed it yet (on the loop thread, maybe decoding the answer
  // into the response right now). Complete() waits for such a decode under
  // the call's lock, so when Abandon() returns nothing writes into the
  // caller's response any more (the controller frees it next).
  (void)Take(call->id());
  call->Complete(std::move(status));
}

void SingleConnectionTransport::Fail(int64_t correlation_id, absl::Status status) {
  if (ClientCallPtr call = Take(correlation_id)) call->Complete(std::move(status));
}

void SingleConnectionTransport::OnInput(const netpoll::ConnectionPtr& conn,
                                        netpoll::LinkBuffer& input) {
  while (true) {
    DecodeResult result = decoder_.Decode(input);
    if (result.need_more()) return;
    if (result.is_error()) {
      static netpoll::LogRateLimiter limiter(absl::Seconds(1));
      if (int64_t skipped = 0; limiter.Allow(&skipped)) {
        NP_LOG(WARNING) << "closing connection to " << address_ << ": " << result.status() << " ("
                        << skipped << " more such closes since the last report)";
      }
      conn->Close(MakeRpcError(ERESPONSE, result.status().message()));
      return;
    }
    DecodedFrame frame = result.TakeFrame();
    if (!frame.meta.has_response()) {
      NP_LOG(WARNING) << "closing connection to " << address_ << ": server sent a request frame";
      conn->Close(MakeRpcError(ERESPONSE, "server sent a request frame"));
      return;
    }
    if (frame.meta.response().error_code() == ERPCAUTH) {
      NoteRefusal(conn, frame.meta.correlation_id(), frame.meta.response().error_text());
    }
    // A response for a call that already completed (timeout, cancel), a
    // duplicate or an unknown id is dropped here.
    if (ClientCallPtr call = Take(frame.meta.correlation_id(), /*answer=*/true)) {
      CompleteWithBaiduStdResponse(*call, std::move(frame), options_.max_body_size);
    } else {
      LogUnexpectedResponse(address_, frame.meta.correlation_id());
    }
  }
}

void SingleConnectionTransport::NoteRefusal(const netpoll::ConnectionPtr& conn,
                                            int64_t correlation_id, const std::string& error_text) {
  netpoll::MutexLock lock(&mu_);
  if (conn_ != conn || credential_call_ != correlation_id) return;
  refused_ = absl::StrCat("connection to ", address_,
                          " refused by the server: ", BoundedQuote(error_text, kMaxErrorText));
}

void SingleConnectionTransport::OnDisconnect(const netpoll::ConnectionPtr& conn,
                                             const absl::Status& reason) {
  std::vector<ClientCallPtr> failed;
  std::optional<std::string> refused;
  {
    netpoll::MutexLock lock(&mu_);
    if (conn_ != conn) return;
    conn_.reset();
    refused = std::exchange(refused_, std::nullopt);
    credential_.reset();
    if (state_ != State::kShutdown) {
      state_ = State::kIdle;
      if (!answered_ && ++answerless_breaks_ >= 2) {
        // Broke before any answer, again: the next dial waits, as after a
        // failed one.
        last_dial_error_ = absl::UnavailableError(
            absl::StrCat("connection broke before any answer: ",
                         reason.ok() ? "closed by the server" : reason.message()));
        backoff_until_ = absl::Now() + backoff_;
        backoff_ = std::min(backoff_ * 2, options_.max_reconnect_backoff);
      }
    }
    for (auto& [id, call] : pending_) failed.push_back(std::move(call));
    pending_.clear();
  }
  std::string why = reason.ok() ? "connection closed" : std::string(reason.message());
  for (auto& call : failed) {
    if (refused.has_value()) {
      // Not a broken connection: not to be retried.
      call->Complete(MakeRpcError(ERPCAUTH, *refused));
      continue;
    }
    call->Complete(MakeRpcError(
        EFAILEDSOCKET, absl::StrCat("connection to ", address_, " broke during the call: ", why)));
  }
}

void SingleConnectionTransport::Shutdown() {
  auto self = shared_from_this();
  netpoll::Notification done;
  loop_->RunInLoop([self, &done] {
    std::vector<ClientCallPtr> cancelled;
    netpoll::ConnectionPtr conn;
    {
      netpoll::MutexLock lock(&self->mu_);
      self->state_ = State::kShutdown;
      conn = std::move(self->conn_);
      for (auto& [id, call] : self->pending_) cancelled.push_back(std::move(call));
      self->pending_.clear();
      self->waiting_.clear();
    }
    for (auto& call : cancelled) call->Complete(absl::CancelledError("channel destroyed"));
    if (conn) conn->Close(absl::CancelledError("channel destroyed"));
    done.Notify();
  });
  if (!loop_->IsInLoopThread()) done.WaitForNotification();
}

}  // namespace nprpc
