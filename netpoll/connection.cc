#include "netpoll/connection.h"

#include <sys/socket.h>

#include <algorithm>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "netpoll/logging.h"
#include "netpoll/tls_session.h"

namespace netpoll {
namespace {
std::atomic<uint64_t> g_next_connection_id{1};
// A read shorter than this (and than what was asked for) drained the socket.
constexpr size_t kShortRead = 4096;
// The smallest read offer (one 4 KiB block); see HandleRead.
constexpr size_t kMinReadHint = 4096;
// The memory budget hears of a connection's changes in steps of at least this
// much (see SyncBudget): the budget's shared counter is touched rarely, and
// it is off by less than this per connection.
constexpr int64_t kBudgetGranule = 16 << 10;
// The first byte of a TLS handshake record (a ClientHello).
constexpr char kTlsHandshakeRecord = 0x16;
// How long a connection whose TLS handshake failed waits for its peer to
// read the alert and close (LingerAfterFailedHandshake).
constexpr absl::Duration kTlsFailedLinger = absl::Seconds(1);
}  // namespace

ConnectionPtr Connection::Create(EventLoop* loop, UniqueFd fd, const SocketAddress& local,
                                 const SocketAddress& peer, const ConnectionOptions& options,
                                 std::shared_ptr<const ConnectionCallbacks> callbacks) {
  return ConnectionPtr(
      new Connection(loop, std::move(fd), local, peer, options, std::move(callbacks)));
}

Connection::Connection(EventLoop* loop, UniqueFd fd, const SocketAddress& local,
                       const SocketAddress& peer, const ConnectionOptions& options,
                       std::shared_ptr<const ConnectionCallbacks> callbacks)
    : loop_(loop),
      id_(g_next_connection_id.fetch_add(1, std::memory_order_relaxed)),
      local_(local),
      peer_(peer),
      callbacks_(callbacks ? std::move(callbacks) : std::make_shared<ConnectionCallbacks>()),
      max_output_bytes_(options.max_output_bytes),
      flush_after_writes_(options.flush_after_writes),
      budget_(options.memory_budget),
      options_(options),
      fd_(std::move(fd)) {}

Connection::~Connection() {
  // What the layer above charged and never released (it should not happen).
  if (budget_ != nullptr && budget_charged_ != 0) budget_->Add(-budget_charged_);
  // A connection that was never started (or whose Start failed) still owes its
  // close callbacks.
  std::vector<absl::AnyInvocable<void()>> callbacks;
  {
    MutexLock lock(&mu_);
    if (!closed_) {
      closed_ = true;
      callbacks.swap(close_callbacks_);
    }
  }
  for (auto& callback : callbacks) callback();
}

absl::Status Connection::Start() {
  loop_->AssertInLoopThread();
  NP_CHECK(state() == ConnectionState::kConnecting) << "Connection::Start called twice";
  self_ = shared_from_this();
  if (callbacks_->on_prepare) {
    absl::StatusOr<std::any> context = callbacks_->on_prepare(*this);
    if (!context.ok()) {
      absl::Status status = context.status();
      CloseInLoop(status);
      return status;
    }
    context_ = std::move(*context);
  }
  if (options_.tcp_nodelay && !local_.is_unix()) (void)SetNoDelay(fd_.get(), true);
  if (absl::Status s = loop_->AddFd(fd_.get(), kPollReadable | kPollWritable, this); !s.ok()) {
    CloseInLoop(s);
    return s;
  }
  registered_ = true;
  last_read_ = last_write_ = loop_->turn_time();
  state_.store(ConnectionState::kActive, std::memory_order_release);
  loop_->stats().Add(loop_->stats().connections_active, 1);
  ArmTimeoutTimer();
  if (options_.tls != nullptr) {
    if (absl::Status s = StartTls(); !s.ok()) {
      CloseInLoop(s);
      return s;
    }
  }
  // A copy: the callback may close the connection, which releases self_.
  if (callbacks_->on_connect) callbacks_->on_connect(ConnectionPtr(self_));
  // Bytes may have arrived before registration; edge-triggered epoll reports
  // them on ADD, so nothing else is needed here.
  return absl::OkStatus();
}

void Connection::HandleEvents(uint32_t events) {
  ConnectionPtr guard = self_;  // callbacks may close us
  if (!guard) return;
  if ((events & kPollError) && !read_interest_) {
    // Reads are paused, so no read will surface the error: close now.
    absl::Status error = SocketError(fd_.get());
    CloseInLoop(error.ok() ? absl::UnavailableError("socket error") : error);
    return;
  }
  if (events & (kPollReadable | kPollHangUp | kPollError)) {
    // A hang-up or error already reported must be read to the end (no new
    // edge will announce it); plain input may stop at a short read.
    HandleRead(/*stop_at_short_read=*/!(events & (kPollHangUp | kPollError)));
  }
  // Edge-triggered epoll reports "writable" with every input event. Only
  // output that an earlier writev left behind (EAGAIN) needs flushing here;
  // new writes leave in the flush task queued at the end of this turn.
  if ((events & kPollWritable) && !output_.empty() && state() != ConnectionState::kClosed) {
    FlushInLoop();
  }
}

void Connection::HandleRead(bool stop_at_short_read) {
  if (state() == ConnectionState::kClosed || !read_interest_) return;
  if (tls_state_ == TlsState::kFailed) {
    // Drop what the peer still sends; close when it closes.
    while (true) {
      absl::StatusOr<size_t> n = tls_wire_in_.ReadFromFd(fd_.get(), kMinReadHint);
      tls_wire_in_.Clear();
      if (!n.ok()) {
        CloseInLoop(close_reason_);
        return;
      }
      if (*n == 0) return;
    }
  }
  bool got_bytes = false;
  bool would_block = false;
  bool budget_blocked = false;
  size_t taken = 0;
  absl::Status error;
  while (input_.Len() < options_.max_input_bytes && taken < options_.max_read_per_event) {
    size_t room =
        std::min({read_hint_, options_.read_chunk_bytes, options_.max_input_bytes - input_.Len(),
                  options_.max_read_per_event - taken});
    if (!BudgetAllowsRead()) {
      // Only the bytes the layer above already paid for.
      if (prepaid_input_ == 0) {
        budget_blocked = true;
        break;
      }
      room = std::min(room, prepaid_input_);
    }
    absl::StatusOr<size_t> n =
        (tls_state_ == TlsState::kOff ? input_ : tls_wire_in_).ReadFromFd(fd_.get(), room);
    if (!n.ok()) {
      error = n.status();
      break;
    }
    if (*n == 0) {
      would_block = true;
      break;
    }
    got_bytes = true;
    taken += *n;
    prepaid_input_ -= std::min(prepaid_input_, *n);
    loop_->stats().Add(loop_->stats().bytes_in, static_cast<int64_t>(*n));
    bytes_read_.fetch_add(static_cast<int64_t>(*n), std::memory_order_relaxed);
    // The next read offers what this one suggests: x4 after a full read (a
    // stream), halved after one that used under an eighth (small frames).
    // A 16-byte echo then reads into a 4 KiB block, not a 64 KiB one: with
    // 1,000 connections a turn took 64 MiB of blocks, far beyond the block
    // cache, and the heap churn showed as page faults (8 % of the server).
    if (*n == room) {
      read_hint_ = std::min(read_hint_ * 4, options_.read_chunk_bytes);
    } else if (*n < room / 8) {
      read_hint_ = std::max(read_hint_ / 2, kMinReadHint);
    }
    // A stream socket that returns fewer bytes than were asked for has an
    // empty receive queue, and edge-triggered epoll reports any byte (or FIN)
    // that arrives after this read: skip the read that would only say EAGAIN
    // (a third of the syscalls of a small echo). ReadFromFd offers at least
    // room (at least kMinReadHint = kShortRead unless the input is nearly
    // full), so a read below min(room, kShortRead) drained the socket.
    if (stop_at_short_read && *n < std::min(room, kShortRead)) {
      would_block = true;
      break;
    }
  }
  if (got_bytes && tls_state_ != TlsState::kOff) {
    absl::Status tls_error;
    got_bytes = DecryptInput(tls_error);
    if (!tls_error.ok() && (error.ok() || !absl::IsOutOfRange(tls_error))) error = tls_error;
    if (state() == ConnectionState::kClosed) return;
    if (!got_bytes) SyncBudget();  // a record still arriving is held meanwhile
  }
  if (got_bytes) {
    last_read_ = loop_->turn_time();
    if (callbacks_->on_request && state() != ConnectionState::kClosed) {
      ConnectionPtr self = self_;  // the handler may close us, releasing self_
      callbacks_->on_request(self, input_);
    }
    input_.Release();
    SyncBudget();
  }
  if (!error.ok()) {
    if (absl::IsOutOfRange(error)) {
      // The peer closed its write side: send what is pending, then close,
      // unless the handler wants to answer what it is still working on.
      peer_closed_ = true;
      if (callbacks_->on_peer_closed && state() == ConnectionState::kActive) {
        UpdateReadInterest();  // stops reading: nothing more will come
        ConnectionPtr self = self_;
        callbacks_->on_peer_closed(self);
      } else {
        CloseAfterFlush(absl::UnavailableError("connection closed by peer"));
      }
    } else if (tls_ != nullptr && tls_->is_server() && !tls_->handshake_done()) {
      LingerAfterFailedHandshake(error);
    } else {
      // A TLS alert owed to the peer leaves before the close.
      if (tls_ != nullptr && !output_.empty()) (void)WriteOutputOnce();
      CloseInLoop(error);
    }
    return;
  }
  if (budget_blocked && state() == ConnectionState::kActive) {
    // The handler may have consumed enough to be under the reserve again.
    if (BudgetAllowsRead() || prepaid_input_ > 0) {
      budget_blocked = false;
    } else {
      PauseForBudget();
    }
  }
  UpdateReadInterest();
  // Edge-triggered: reading stopped at max_input_bytes or max_read_per_event,
  // not at EAGAIN, so the bytes left in the socket raise no new event (and a
  // peer blocked on a full socket sends none). If the handler consumed enough
  // to read again, do so.
  if (!would_block && read_interest_) {
    loop_->QueueInLoop([self = shared_from_this()] { self->HandleRead(); });
  }
}

void Connection::UpdateReadInterest() {
  if (!registered_ || state() == ConnectionState::kClosed) return;
  cap_paused_ = input_.Len() >= options_.max_input_bytes;
  bool want = !user_paused_ && !cap_paused_ && !output_paused_ && !budget_paused_ &&
              !peer_closed_ && state() == ConnectionState::kActive;
  if (want == read_interest_) return;
  read_interest_ = want;
  // The read timeout measures the peer's silence while we listen.
  if (want) last_read_ = loop_->turn_time();
  uint32_t interest = kPollWritable | (want ? static_cast<uint32_t>(kPollReadable) : 0u);
  // Re-arming EPOLLIN with MOD reports bytes that arrived while paused.
  if (absl::Status s = loop_->ModifyFd(fd_.get(), interest, this); !s.ok()) CloseInLoop(s);
}

absl::Status Connection::Write(absl::string_view data) {
  LinkBuffer buffer;
  buffer.WriteBinary(data);
  return Write(std::move(buffer));
}

absl::Status Connection::Write(LinkBuffer data) { return Write(std::move(data), nullptr); }

absl::Status Connection::Write(LinkBuffer data, absl::AnyInvocable<void()> then) {
  size_t n = data.Len();
  if (n == 0) {
    if (then != nullptr) loop_->QueueInLoop(std::move(then));
    return absl::OkStatus();
  }
  // A small write is copied behind the previous ones (sharing their block)
  // instead of bringing its own block: a 37-byte answer would hold 4 KiB.
  const bool copy = n < LinkBuffer::kCopyThreshold;
  bool queue_flush = false;
  bool early = false;
  absl::Status refused;
  {
    MutexLock lock(&mu_);
    const size_t held = output_memory_.load(std::memory_order_relaxed);
    if (closing_ || closed_) {
      refused = absl::FailedPreconditionError("connection is closed");
    } else if (held + (copy ? n : data.BlockBytes()) > max_output_bytes_) {
      refused = absl::ResourceExhaustedError(
          absl::StrCat("connection output buffer full (", held, " bytes held by ",
                       output_bytes_.load(std::memory_order_relaxed), " bytes pending, cap ",
                       max_output_bytes_, ")"));
    } else {
      output_bytes_.fetch_add(n, std::memory_order_relaxed);
      const size_t before = pending_.BlockBytes();
      if (copy) {
        data.ForEachChunk([this](absl::string_view chunk) {
          mu_.AssertHeld();
          pending_.WriteBinary(chunk);
        });
      } else {
        pending_.Append(std::move(data));
      }
      AddOutputMemory(static_cast<int64_t>(pending_.BlockBytes()) - static_cast<int64_t>(before));
      if (then != nullptr) after_flush_.push_back(std::move(then));
      queue_flush = !flush_queued_;
      flush_queued_ = true;
      if (flush_after_writes_ > 0 && ++pending_writes_ >= flush_after_writes_) {
        pending_writes_ = 0;
        early = true;
      }
    }
  }
  if (!refused.ok()) {
    // `then` is still ours (it moved only when the write was accepted): it
    // runs anyway (outside mu_: QueueInLoop locks).
    // NOLINTNEXTLINE(bugprone-use-after-move)
    if (then != nullptr) loop_->QueueInLoop(std::move(then));
    return refused;
  }
  // On the loop thread, typically while a batch of input is being handled:
  // send what is ready now so the peer starts on it while this turn goes on.
  if (early && loop_->IsInLoopThread()) FlushEarlyInLoop();
  if (queue_flush) {
    // Queued (also on the loop thread) so that every write of this turn leaves
    // in one writev.
    loop_->QueueInLoop([self = shared_from_this()] { self->FlushInLoop(); });
  }
  return absl::OkStatus();
}

void Connection::TakePendingLocked() {
  if (pending_.empty()) return;
  if (tls_state_ != TlsState::kOff) {
    // Plaintext: EncryptOutput() makes it output_ once the handshake is done.
    const int64_t before = static_cast<int64_t>(tls_plain_out_.BlockBytes()) +
                           static_cast<int64_t>(pending_.BlockBytes());
    tls_plain_out_.Append(std::move(pending_));
    AddOutputMemory(static_cast<int64_t>(tls_plain_out_.BlockBytes()) - before);
    return;
  }
  // Write progress is measured from when output became pending.
  if (output_.empty()) last_write_ = loop_->turn_time();
  const int64_t before =
      static_cast<int64_t>(output_.BlockBytes()) + static_cast<int64_t>(pending_.BlockBytes());
  output_.Append(std::move(pending_));
  AddOutputMemory(static_cast<int64_t>(output_.BlockBytes()) - before);
}

absl::StatusOr<size_t> Connection::WriteOutputOnce() {
  const size_t before = output_.BlockBytes();
  absl::StatusOr<size_t> n = output_.WriteToFd(fd_.get());
  if (n.ok() && *n > 0) {
    AddOutputMemory(static_cast<int64_t>(output_.BlockBytes()) - static_cast<int64_t>(before));
    last_write_ = loop_->turn_time();
    loop_->stats().Add(loop_->stats().write_calls, 1);
    output_bytes_.fetch_sub(*n, std::memory_order_relaxed);
    loop_->stats().Add(loop_->stats().bytes_out, static_cast<int64_t>(*n));
    bytes_written_.fetch_add(static_cast<int64_t>(*n), std::memory_order_relaxed);
  }
  return n;
}

// One write of the pending output, in the middle of a turn; errors and a
// full socket buffer are left to the FlushInLoop queued for the turn's end.
void Connection::FlushEarlyInLoop() {
  {
    MutexLock lock(&mu_);
    TakePendingLocked();
  }
  if (tls_ != nullptr) EncryptOutput();
  if (state() == ConnectionState::kClosed || !registered_ || output_.empty()) return;
  (void)WriteOutputOnce();
}

void Connection::FlushInLoop() {
  loop_->AssertInLoopThread();
  // Write(data, then) callbacks of the writes this flush sends: they run
  // last, on every way out (they may write; those run at the next flush).
  std::vector<absl::AnyInvocable<void()>> after_flush;
  absl::Cleanup run_after_flush = [&after_flush] {
    for (auto& callback : after_flush) callback();
  };
  {
    MutexLock lock(&mu_);
    flush_queued_ = false;
    pending_writes_ = 0;
    TakePendingLocked();
    after_flush.swap(after_flush_);
  }
  if (state() == ConnectionState::kClosed || !registered_) return;
  if (tls_ != nullptr) {
    EncryptOutput();
    if (state() == ConnectionState::kClosed) return;
    if (state() == ConnectionState::kClosing && tls_plain_out_.empty() && tls_->handshake_done()) {
      LinkBuffer wire;
      tls_->Shutdown(wire);  // close_notify, after the last answer
      AppendWire(std::move(wire));
    }
  }
  while (!output_.empty()) {
    absl::StatusOr<size_t> n = WriteOutputOnce();
    if (!n.ok()) {
      CloseInLoop(n.status());
      return;
    }
    if (*n == 0) break;  // kernel buffer full: EPOLLOUT (edge) will call us again
  }
  output_.Release();
  const size_t memory = output_memory_.load(std::memory_order_relaxed);
  if (!above_high_watermark_ && memory >= options_.output_high_watermark) {
    above_high_watermark_ = true;
    if (options_.pause_read_above_high_watermark) {
      output_paused_ = true;
      UpdateReadInterest();
    }
    if (callbacks_->on_output_watermark) callbacks_->on_output_watermark(shared_from_this(), true);
  } else if (above_high_watermark_ && memory <= options_.output_low_watermark) {
    above_high_watermark_ = false;
    if (output_paused_) {
      // Re-arming reports the input that waited meanwhile.
      output_paused_ = false;
      UpdateReadInterest();
    }
    if (callbacks_->on_output_watermark) {
      callbacks_->on_output_watermark(shared_from_this(), false);
    }
  }
  if (state() != ConnectionState::kClosed) {
    SyncBudget();
    if (state() == ConnectionState::kClosing &&
        output_bytes_.load(std::memory_order_relaxed) == 0) {
      CloseInLoop(close_reason_);
    }
  }
}

void Connection::Close(absl::Status reason) {
  auto self = shared_from_this();
  loop_->RunInLoop([self, reason = std::move(reason)] { self->CloseInLoop(reason); });
}

void Connection::Abort(absl::Status reason) {
  auto self = shared_from_this();
  loop_->RunInLoop([self, reason = std::move(reason)]() mutable {
    if (self->state() == ConnectionState::kClosed) return;
    struct linger linger = {1, 0};
    ::setsockopt(self->fd_.get(), SOL_SOCKET, SO_LINGER, &linger, sizeof(linger));
    self->CloseInLoop(reason);
  });
}

void Connection::CloseAfterFlush(absl::Status reason) {
  auto self = shared_from_this();
  loop_->RunInLoop([self, reason = std::move(reason)]() mutable {
    ConnectionState s = self->state();
    if (s == ConnectionState::kClosed || s == ConnectionState::kClosing) return;
    if (s == ConnectionState::kConnecting) {
      self->CloseInLoop(reason);
      return;
    }
    {
      MutexLock lock(&self->mu_);
      self->closing_ = true;
    }
    self->close_reason_ = std::move(reason);
    self->state_.store(ConnectionState::kClosing, std::memory_order_release);
    self->UpdateReadInterest();
    self->FlushInLoop();
  });
}

void Connection::CloseInLoop(const absl::Status& reason) {
  loop_->AssertInLoopThread();
  if (state() == ConnectionState::kClosed) return;
  bool was_started = registered_;
  state_.store(ConnectionState::kClosed, std::memory_order_release);
  std::vector<absl::AnyInvocable<void()>> after_flush;
  {
    MutexLock lock(&mu_);
    closing_ = true;
    pending_.Clear();
    after_flush.swap(after_flush_);
  }
  // Owed to the writers whatever happens to their data.
  for (auto& callback : after_flush) loop_->QueueInLoop(std::move(callback));
  output_.Clear();
  input_.Clear();
  if (tls_state_ != TlsState::kOff) {
    tls_wire_in_.Clear();
    tls_plain_out_.Clear();
    loop_->Cancel(tls_timer_);
    tls_timer_ = kInvalidTimerId;
    tls_.reset();
    if (on_tls_handshake_ != nullptr) {
      auto done = std::move(on_tls_handshake_);
      on_tls_handshake_ = nullptr;
      if (absl::StartsWith(reason.message(), "TLS")) {
        done(reason);
      } else {
        done(absl::Status(reason.ok() ? absl::StatusCode::kUnavailable : reason.code(),
                          absl::StrCat("TLS handshake not finished: ",
                                       reason.ok() ? "connection closed" : reason.message())));
      }
    }
  }
  output_bytes_.store(0, std::memory_order_relaxed);
  output_memory_.store(0, std::memory_order_relaxed);
  prepaid_input_ = 0;
  SyncBudget(/*exact=*/true);  // what stays charged is the layer above's
  loop_->Cancel(timeout_timer_);
  timeout_timer_ = kInvalidTimerId;
  if (registered_) {
    (void)loop_->RemoveFd(fd_.get());
    registered_ = false;
    loop_->stats().Add(loop_->stats().connections_active, -1);
    loop_->stats().Add(loop_->stats().connections_closed, 1);
  }
  fd_.reset();
  ConnectionPtr self = std::move(self_);
  if (!self) self = shared_from_this();
  if (was_started && callbacks_->on_disconnect) callbacks_->on_disconnect(self, reason);
  std::vector<absl::AnyInvocable<void()>> callbacks;
  {
    MutexLock lock(&mu_);
    closed_ = true;
    callbacks.swap(close_callbacks_);
  }
  for (auto& callback : callbacks) callback();
  // Let go at the end of the turn: other events of this turn may still point
  // at this connection.
  loop_->QueueInLoop([self = std::move(self)] {});
}

void Connection::PauseRead() {
  auto self = shared_from_this();
  loop_->RunInLoop([self] {
    self->user_paused_ = true;
    self->UpdateReadInterest();
  });
}

void Connection::ResumeRead() {
  auto self = shared_from_this();
  loop_->RunInLoop([self] {
    self->user_paused_ = false;
    self->UpdateReadInterest();
    // Input the handler left buffered while paused (whole frames it chose
    // not to take yet) gets another on_request now: the peer may be waiting
    // for answers and send nothing that would trigger one.
    if (!self->input_.empty() && self->callbacks_->on_request && self->active()) {
      self->callbacks_->on_request(self, self->input_);
      self->input_.Release();
      self->UpdateReadInterest();
    }
  });
}

void Connection::AddCloseCallback(absl::AnyInvocable<void()> callback) {
  {
    MutexLock lock(&mu_);
    if (!closed_) {
      close_callbacks_.push_back(std::move(callback));
      return;
    }
  }
  loop_->RunInLoop(std::move(callback));
}

void Connection::SetTimeouts(absl::Duration read, absl::Duration write, absl::Duration idle) {
  auto self = shared_from_this();
  loop_->RunInLoop([self, read, write, idle] {
    self->options_.read_timeout = read;
    self->options_.write_timeout = write;
    self->options_.idle_timeout = idle;
    if (self->state() == ConnectionState::kClosed) return;
    self->loop_->Cancel(self->timeout_timer_);
    self->timeout_timer_ = kInvalidTimerId;
    self->ArmTimeoutTimer();
  });
}

void Connection::ChargeHeld(int64_t delta) {
  loop_->AssertInLoopThread();
  if (budget_ == nullptr) return;
  extra_held_ += delta;
  SyncBudget(/*exact=*/state() == ConnectionState::kClosed);
}

void Connection::SetPrepaidInput(size_t bytes) {
  loop_->AssertInLoopThread();
  prepaid_input_ = bytes;
  if (bytes > 0 && budget_paused_) {
    budget_paused_ = false;
    UpdateReadInterest();
  }
}

size_t Connection::TransportHeldBytes() const {
  // tls_wire_in_: a TLS record still arriving (TlsSession hands OpenSSL only
  // whole records, so OpenSSL frees its read buffer after each read); and
  // what an established session keeps in OpenSSL.
  return input_.BlockBytes() + tls_wire_in_.BlockBytes() +
         (tls_ != nullptr ? TlsSession::kHeldBytes : 0) +
         output_memory_.load(std::memory_order_relaxed);
}

size_t Connection::held_bytes() const {
  return TransportHeldBytes() + static_cast<size_t>(std::max<int64_t>(extra_held_, 0));
}

bool Connection::BudgetAllowsRead() const {
  return budget_ == nullptr || budget_->MayRead(held_bytes());
}

void Connection::PauseForBudget() {
  budget_paused_ = true;
  UpdateReadInterest();
  std::weak_ptr<Connection> weak = weak_from_this();
  budget_->WaitForRoom([weak] {
    std::shared_ptr<Connection> self = weak.lock();
    if (self == nullptr) return;
    self->loop_->RunInLoop([self] {
      if (!self->budget_paused_ || self->state() == ConnectionState::kClosed) return;
      self->budget_paused_ = false;
      self->UpdateReadInterest();  // re-arming reports the bytes that waited
    });
  });
}

void Connection::SyncBudget(bool exact) {
  if (budget_ == nullptr) return;
  const int64_t held = static_cast<int64_t>(TransportHeldBytes()) + extra_held_;
  const int64_t diff = held - budget_charged_;
  if (diff == 0 || (!exact && diff < kBudgetGranule && diff > -kBudgetGranule)) return;
  budget_charged_ = held;
  budget_->Add(diff);
}

absl::Duration Connection::MinTimeout() const {
  return std::min({options_.read_timeout, options_.write_timeout, options_.idle_timeout});
}

void Connection::ArmTimeoutTimer() {
  absl::Duration min_timeout = MinTimeout();
  if (min_timeout == absl::InfiniteDuration()) return;
  // Re-armed lazily: activity only updates timestamps; the timer re-checks.
  absl::Duration delay = std::max(min_timeout / 2, absl::Milliseconds(1));
  std::weak_ptr<Connection> weak = weak_from_this();
  timeout_timer_ = loop_->RunAfter(delay, [weak] {
    if (auto self = weak.lock()) {
      self->timeout_timer_ = kInvalidTimerId;
      self->CheckTimeouts();
    }
  });
}

void Connection::CheckTimeouts() {
  if (state() == ConnectionState::kClosed) return;
  absl::Time now = MonotonicNow();
  const char* which = nullptr;
  if (now - std::max(last_read_, last_write_) >= options_.idle_timeout) {
    which = "idle timeout";
  } else if (!input_.empty() && read_interest_ && now - last_read_ >= options_.read_timeout) {
    which = "read timeout";
  } else if (pending_output_bytes() > 0 && now - last_write_ >= options_.write_timeout) {
    which = "write timeout";
  }
  if (which != nullptr) {
    loop_->stats().Add(loop_->stats().timeouts, 1);
    CloseInLoop(absl::DeadlineExceededError(which));
    return;
  }
  ArmTimeoutTimer();
}

std::shared_ptr<const TlsInfo> Connection::tls_info() const {
  MutexLock lock(&mu_);
  return tls_info_;
}

void Connection::SetTlsHandshakeCallback(absl::AnyInvocable<void(const absl::Status&)> done) {
  loop_->AssertInLoopThread();
  on_tls_handshake_ = std::move(done);
}

absl::Status Connection::StartTls() {
  if (options_.tls->is_server()) {
    tls_state_ = TlsState::kSniffing;
    return absl::OkStatus();
  }
  return BeginTlsSession();
}

absl::Status Connection::BeginTlsSession() {
  const TlsContext& context = *options_.tls;
  std::string peer_ip;
  if (!peer_.is_unix()) {
    peer_ip = peer_.ToString();
    // "1.2.3.4:80" / "[::1]:80" -> the address alone.
    peer_ip = peer_ip.substr(0, peer_ip.rfind(':'));
    if (!peer_ip.empty() && peer_ip.front() == '[') peer_ip = peer_ip.substr(1, peer_ip.size() - 2);
  }
  absl::StatusOr<std::unique_ptr<TlsSession>> session =
      TlsSession::Create(options_.tls, context.is_server() ? "" : peer_.ToString(), peer_ip);
  if (!session.ok()) return session.status();
  tls_ = *std::move(session);
  tls_state_ = TlsState::kOn;
  std::weak_ptr<Connection> weak = weak_from_this();
  const absl::Duration timeout = context.handshake_timeout();
  tls_timer_ = loop_->RunAfter(timeout, [weak, timeout] {
    auto self = weak.lock();
    if (self == nullptr) return;
    self->tls_timer_ = kInvalidTimerId;
    if (self->tls_ == nullptr || self->tls_->handshake_done()) return;
    absl::Status s = absl::DeadlineExceededError(
        absl::StrCat("TLS handshake timed out after ", absl::FormatDuration(timeout)));
    if (self->options_.tls->is_server()) {
      NP_LOG(WARNING) << "closing connection from " << self->peer_.ToString() << ": " << s;
    }
    self->CloseInLoop(s);
  });
  LinkBuffer wire;
  absl::Status s = tls_->Start(wire);
  AppendWire(std::move(wire));
  if (!s.ok()) return s;
  if (!output_.empty()) FlushInLoop();
  return absl::OkStatus();
}

void Connection::LingerAfterFailedHandshake(const absl::Status& reason) {
  while (!output_.empty()) {  // the alert: a few bytes, into an empty socket buffer
    absl::StatusOr<size_t> n = WriteOutputOnce();
    if (!n.ok() || *n == 0) break;
  }
  ::shutdown(fd_.get(), SHUT_WR);
  close_reason_ = reason;
  tls_state_ = TlsState::kFailed;
  tls_.reset();  // its memory now, not after the linger
  tls_wire_in_.Clear();
  input_.Clear();
  loop_->Cancel(tls_timer_);
  std::weak_ptr<Connection> weak = weak_from_this();
  tls_timer_ = loop_->RunAfter(kTlsFailedLinger, [weak] {
    if (auto self = weak.lock()) {
      self->tls_timer_ = kInvalidTimerId;
      self->CloseInLoop(self->close_reason_);
    }
  });
}

bool Connection::DecryptInput(absl::Status& error) {
  if (tls_state_ == TlsState::kSniffing) {
    char first = 0;
    if (!tls_wire_in_.PeekCopy(1, &first)) return false;
    if (first != kTlsHandshakeRecord) {
      if (options_.tls_required) {
        error = absl::UnavailableError(
            absl::StrCat("plaintext on a TLS-only port (first byte 0x",
                         absl::Hex(static_cast<unsigned char>(first), absl::kZeroPad2), ")"));
        NP_LOG(WARNING) << "closing connection from " << peer_.ToString() << ": " << error;
        return false;
      }
      tls_state_ = TlsState::kOff;
      input_.Append(std::move(tls_wire_in_));
      output_.Append(std::move(tls_plain_out_));
      return true;
    }
    if (error = BeginTlsSession(); !error.ok()) return false;
  }
  const bool was_done = tls_->handshake_done();
  const size_t before = input_.Len();
  LinkBuffer wire;
  absl::Status s = tls_->Receive(tls_wire_in_, input_, wire);
  AppendWire(std::move(wire));
  if (!s.ok()) {
    if (!absl::IsOutOfRange(s) && tls_->is_server()) {
      NP_LOG(WARNING) << "closing connection from " << peer_.ToString() << ": " << s;
    }
    error = s;
  } else if (!was_done && tls_->handshake_done()) {
    OnTlsHandshakeDone(absl::OkStatus());
    EncryptOutput();
  }
  if (state() != ConnectionState::kClosed && !output_.empty()) {
    MutexLock lock(&mu_);
    if (!flush_queued_) {
      flush_queued_ = true;
      loop_->QueueInLoop([self = shared_from_this()] { self->FlushInLoop(); });
    }
  }
  return input_.Len() > before;
}

void Connection::OnTlsHandshakeDone(const absl::Status& status) {
  loop_->Cancel(tls_timer_);
  tls_timer_ = kInvalidTimerId;
  {
    MutexLock lock(&mu_);
    tls_info_ = tls_->info();
  }
  if (on_tls_handshake_ != nullptr) {
    auto done = std::move(on_tls_handshake_);
    on_tls_handshake_ = nullptr;
    done(status);
  }
}

void Connection::EncryptOutput() {
  if (tls_ == nullptr || !tls_->handshake_done() || tls_plain_out_.empty()) return;
  const size_t plain = tls_plain_out_.Len();
  const size_t plain_memory = tls_plain_out_.BlockBytes();
  LinkBuffer wire;
  absl::Status s = tls_->Send(tls_plain_out_, wire);
  output_bytes_.fetch_sub(plain, std::memory_order_relaxed);
  AddOutputMemory(-static_cast<int64_t>(plain_memory));
  AppendWire(std::move(wire));
  if (!s.ok()) CloseInLoop(s);
}

void Connection::AppendWire(LinkBuffer wire) {
  if (wire.empty()) return;
  if (output_.empty()) last_write_ = loop_->turn_time();
  const size_t before = output_.BlockBytes();
  output_bytes_.fetch_add(wire.Len(), std::memory_order_relaxed);
  output_.Append(std::move(wire));
  AddOutputMemory(static_cast<int64_t>(output_.BlockBytes()) - static_cast<int64_t>(before));
}

}  // namespace netpoll
