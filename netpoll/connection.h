// Connection: one established stream socket (TCP or Unix) on one EventLoop.
//
// Lifecycle (each step runs on the connection's loop thread):
//
//   Start():  on_prepare (may reject; returns the connection's context)
//             -> fd registered -> kActive -> on_connect
//   input:    bytes read until EAGAIN -> on_request(conn, input); the handler
//             consumes whole frames and leaves a partial frame buffered. It is
//             called again only when more bytes arrive.
//   EOF:      on_peer_closed if set (the handler closes when done), else
//             CloseAfterFlush
//   close:    kClosed -> fd removed and closed -> on_disconnect(reason)
//             -> close callbacks, each exactly once, in the order added.
//
// Writes are safe from any thread. All writes issued during one loop turn are
// coalesced and leave in one writev() at the end of that turn.
//
// Backpressure: reading stops while buffered input reaches max_input_bytes
// (and resumes when the handler consumes), PauseRead()/ResumeRead() stop and
// restart EPOLLIN (ResumeRead() also calls on_request again when input is
// buffered, so a paused handler may leave whole frames for later), and the
// output has high/low watermark callbacks, optionally stops reading while above
// the high watermark (pause_read_above_high_watermark: a peer that does not
// read its answers stops being read), and a hard cap (Write() fails with
// ResourceExhausted beyond max_output_bytes). Output limits count the memory
// the output holds (LinkBuffer::BlockBytes()), not its payload bytes, and
// small writes (under LinkBuffer::kCopyThreshold) are copied into shared
// blocks, so many small answers do not hold a 4 KiB block each.
//
// Memory budget (optional, shared by many connections): the connection
// charges the memory its input and output hold, plus what the layer above
// charges for it (ChargeHeld()), to a netpoll::MemoryBudget, and reads only
// while the budget allows (MemoryBudget::MayRead) or while input the layer
// above already paid for is expected (SetPrepaidInput()). Denied, it stops
// reading until the budget has room again.
//
// Timeouts (checked on a lazily re-armed per-connection timer): read timeout
// = a partial frame sits buffered with no new bytes while reading is on (a
// connection paused by its own side is not the peer's fault); write timeout = output is
// pending with no progress; idle timeout = no bytes either way. Each closes the
// connection with DeadlineExceeded.
//
// Ownership: Connections are shared (ConnectionPtr). While registered with its
// loop a connection keeps itself alive; after close it lets go at the end of
// the loop turn, so handlers never see a dangling connection. Close every
// connection before stopping its loop: one still registered when the loop
// stops for good keeps itself alive (a leak).
//
// TLS (optional, ConnectionOptions::tls; netpoll/tls_context.h): the
// connection runs a TlsSession between the socket and its buffers, on its
// loop: bytes read are decrypted into the input before on_request, writes
// are encrypted on their way to the socket, so the layer above sees
// plaintext as without TLS. A client context handshakes at Start(); a server
// context sniffs the first byte: 0x16 (a TLS handshake record) starts TLS,
// anything else is plaintext unless tls_required. Writes made before the
// handshake finishes wait for it. A failed handshake closes the connection
// with Unavailable naming the cause; one not done within the context's
// handshake_timeout with DeadlineExceeded. Once done, tls_info() has the
// peer's identity.
//
// Thread safety: Write(), Close(), CloseAfterFlush(), PauseRead(),
// ResumeRead(), AddCloseCallback() and the const accessors are safe from any
// thread. Start(), ChargeHeld(), SetPrepaidInput() and the callbacks run on
// the loop thread.
#ifndef NETPOLL_CONNECTION_H_
#define NETPOLL_CONNECTION_H_

#include <any>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "netpoll/event_loop.h"
#include "netpoll/link_buffer.h"
#include "netpoll/memory_budget.h"
#include "netpoll/mutex.h"
#include "netpoll/poller.h"
#include "netpoll/socket.h"
#include "netpoll/socket_address.h"

namespace netpoll {

class Connection;
class TlsContext;
class TlsSession;
struct TlsInfo;
using ConnectionPtr = std::shared_ptr<Connection>;

enum class ConnectionState { kConnecting, kActive, kClosing, kClosed };

struct ConnectionOptions {
  // Infinite disables a timeout.
  absl::Duration read_timeout = absl::InfiniteDuration();
  absl::Duration write_timeout = absl::InfiniteDuration();
  absl::Duration idle_timeout = absl::InfiniteDuration();
  // Reading pauses while this much input is buffered.
  size_t max_input_bytes = 64 << 20;
  // Watermark callbacks fire when pending output crosses high (upwards) and
  // then low (downwards). Output is measured by the memory it holds
  // (LinkBuffer::BlockBytes()).
  size_t output_high_watermark = 4 << 20;
  size_t output_low_watermark = 1 << 20;
  // Stop reading while output is above the high watermark, until it drains
  // below the low one.
  bool pause_read_above_high_watermark = false;
  // Write() fails with ResourceExhausted when output would hold more.
  size_t max_output_bytes = 256 << 20;
  // Shared by many connections; null: no budget.
  std::shared_ptr<MemoryBudget> memory_budget;
  // Bytes read in one go before on_request sees them and other connections
  // of the loop get their turn.
  size_t max_read_per_event = 256 << 10;
  // Writes on the loop thread leave in one writev at the end of the turn;
  // every this many writes within a turn (per connection) they leave at
  // once, so that a peer sending a batch of requests gets the first answers
  // while the rest are still being handled, and both sides stay busy
  // instead of taking turns. 0: only at the end of the turn.
  int flush_after_writes = 8;
  // Bytes one read may take at most (reads start at 4 KiB and grow while
  // they fill what they offer).
  size_t read_chunk_bytes = 64 << 10;
  bool tcp_nodelay = true;
  // TLS (see above): a server context (TLS when the peer starts with a
  // handshake record) or a client context (the connection handshakes at
  // Start()). Null: plaintext.
  std::shared_ptr<const TlsContext> tls;
  // Server context: refuse peers that do not start with TLS.
  bool tls_required = false;
};

// Shared by every connection of a server or dialer. Unset callbacks are
// skipped. All run on the connection's loop thread.
struct ConnectionCallbacks {
  // Before the fd is registered. An error rejects the connection (it is closed
  // without on_connect/on_disconnect; close callbacks still run). The value
  // becomes the connection's context().
  std::function<absl::StatusOr<std::any>(Connection&)> on_prepare;
  std::function<void(const ConnectionPtr&)> on_connect;
  // New input. Views from input.Next()/Peek() are valid only during the call:
  // Slice() what must outlive it.
  std::function<void(const ConnectionPtr&, LinkBuffer& input)> on_request;
  std::function<void(const ConnectionPtr&, const absl::Status& reason)> on_disconnect;
  // The peer closed its write side (EOF) after its last bytes went to
  // on_request. Unset: the connection flushes pending output and closes
  // (CloseAfterFlush). Set: reading stops but the connection stays open for
  // writing, and closing it (typically CloseAfterFlush once every answer is
  // written) is up to the callback; timeouts still apply.
  std::function<void(const ConnectionPtr&)> on_peer_closed;
  // above_high = true when output crossed the high watermark, false when it
  // drained below the low one.
  std::function<void(const ConnectionPtr&, bool above_high)> on_output_watermark;
};

class Connection : public std::enable_shared_from_this<Connection>, private IoHandler {
 public:
  // `loop` must outlive the connection. `fd` is a connected, non-blocking
  // socket. Call Start() on the loop thread to register it.
  static ConnectionPtr Create(EventLoop* loop, UniqueFd fd, const SocketAddress& local,
                              const SocketAddress& peer, const ConnectionOptions& options,
                              std::shared_ptr<const ConnectionCallbacks> callbacks);
  ~Connection() override;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Loop thread. Runs on_prepare, registers the fd, runs on_connect. Returns
  // the on_prepare error (the connection is then closed).
  absl::Status Start();

  // Queues data for sending (no copy for LinkBuffer). FailedPrecondition when
  // the connection is closing or closed; ResourceExhausted above
  // max_output_bytes (nothing is queued then).
  absl::Status Write(LinkBuffer data);
  // Write(data), then runs `then` on the loop thread once the data is handed
  // to the socket (or the connection closed): one loop task for both, where
  // a separate EventLoop::QueueInLoop(then) would take the loop's queue lock
  // once more per write. `then` runs exactly once, also when the write fails
  // (then it is queued on the loop by itself).
  absl::Status Write(LinkBuffer data, absl::AnyInvocable<void()> then);
  absl::Status Write(absl::string_view data);

  // Closes now; pending output is dropped. `reason` reaches on_disconnect.
  void Close(absl::Status reason = absl::OkStatus());
  // Closes now with SO_LINGER 0, so the peer sees a reset (RST) instead of
  // an orderly close.
  void Abort(absl::Status reason = absl::AbortedError("connection aborted"));
  // Stops reading, sends pending output, then closes (bounded by the write
  // timeout, if any).
  void CloseAfterFlush(absl::Status reason = absl::OkStatus());

  void PauseRead();
  void ResumeRead();

  // Runs `callback` once when the connection closes (at once, on the loop
  // thread, if it already has).
  void AddCloseCallback(absl::AnyInvocable<void()> callback);

  // Loop thread, before Start(), client TLS only: `done` runs once, on the
  // loop thread, when the handshake finishes (OK) or the connection closes
  // before that (the close reason). Null clears it.
  void SetTlsHandshakeCallback(absl::AnyInvocable<void(const absl::Status&)> done);
  // What the TLS handshake established (peer identity, ALPN, version,
  // cipher); null without TLS or before the handshake finished (it finishes
  // before on_request sees the first plaintext byte). Any thread.
  std::shared_ptr<const TlsInfo> tls_info() const;
  // Whether the connection speaks TLS (decided at Start() for clients, at
  // the first byte for servers). Loop thread.
  bool is_tls() const { return tls_ != nullptr; }

  // Changes the timeouts (takes effect at the next check).
  void SetTimeouts(absl::Duration read, absl::Duration write, absl::Duration idle);

  // Loop thread. Charges (delta > 0) or releases bytes the layer above holds
  // for this connection (decoded requests, ...) to the memory budget; they
  // count towards this connection's share until released, also after close.
  // No-op without a budget.
  void ChargeHeld(int64_t delta);
  // Loop thread. The next `bytes` of input are already charged to the budget
  // by the layer above (a frame whose header announced them): reading them is
  // allowed even when the budget is spent. 0 cancels.
  void SetPrepaidInput(size_t bytes);
  // Memory this connection holds: input (TLS records still arriving
  // included) and output blocks, a TLS session's state
  // (TlsSession::kHeldBytes), plus ChargeHeld().
  // Loop thread.
  size_t held_bytes() const;
  // Whether reading is stopped by backpressure of this side (pause, output
  // watermark, memory budget, input cap). Loop thread.
  bool read_paused() const { return !read_interest_; }

  uint64_t id() const { return id_; }
  EventLoop* loop() const { return loop_; }
  ConnectionState state() const { return state_.load(std::memory_order_acquire); }
  bool active() const { return state() == ConnectionState::kActive; }
  const SocketAddress& local_address() const { return local_; }
  const SocketAddress& peer_address() const { return peer_; }
  // Set by on_prepare; loop thread only (or before Start()).
  std::any& context() { return context_; }
  // Bytes queued for sending and not yet taken by the kernel. Any thread.
  size_t pending_output_bytes() const { return output_bytes_.load(std::memory_order_relaxed); }
  // Memory those bytes hold (LinkBuffer::BlockBytes()). Any thread.
  size_t pending_output_memory() const { return output_memory_.load(std::memory_order_relaxed); }
  // Buffered input; loop thread only.
  size_t buffered_input_bytes() const { return input_.Len(); }
  // When the connection was made (accepted or dialed).
  absl::Time created_at() const { return created_at_; }
  // Bytes read from and written to the socket so far. Any thread (written by
  // the loop thread only, so reading costs the loop nothing).
  int64_t bytes_read() const { return bytes_read_.load(std::memory_order_relaxed); }
  int64_t bytes_written() const { return bytes_written_.load(std::memory_order_relaxed); }

 private:
  Connection(EventLoop* loop, UniqueFd fd, const SocketAddress& local, const SocketAddress& peer,
             const ConnectionOptions& options,
             std::shared_ptr<const ConnectionCallbacks> callbacks);

  void HandleEvents(uint32_t events) override;
  // Reads until EAGAIN, or with stop_at_short_read until a read returns less
  // than it asked for (the socket is drained then; see connection.cc).
  void HandleRead(bool stop_at_short_read = false);
  void FlushInLoop();
  void FlushEarlyInLoop();  // loop thread
  // Loop thread: moves pending_ behind output_.
  void TakePendingLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Loop thread: one write of output_, counted (bytes, calls, progress).
  absl::StatusOr<size_t> WriteOutputOnce();
  void CloseInLoop(const absl::Status& reason);
  void UpdateReadInterest();
  // Whether the memory budget lets this connection read now.
  bool BudgetAllowsRead() const;
  // Stops reading until the budget has room (or prepaid input is expected).
  void PauseForBudget();
  // held_bytes() without ChargeHeld(). Loop thread.
  size_t TransportHeldBytes() const;
  // Brings the budget's charge of this connection up to date: at once when
  // `exact`, else when it is off by kBudgetGranule or more.
  void SyncBudget(bool exact = false);
  // Adds delta (may be negative) to output_memory_.
  void AddOutputMemory(int64_t delta) {
    output_memory_.fetch_add(static_cast<size_t>(delta), std::memory_order_relaxed);
  }
  void CheckTimeouts();
  void ArmTimeoutTimer();
  // TLS (loop thread). StartTls(): at Start(), a client handshakes, a server
  // waits for the first byte. DecryptInput(): the bytes read this turn
  // (tls_wire_in_) go through the session into input_; returns whether
  // input_ got plaintext, sets `error` when the connection must close.
  absl::Status StartTls();
  bool DecryptInput(absl::Status& error);
  absl::Status BeginTlsSession();
  // A server's handshake failed with `reason`: sends the alert, shuts the
  // write side and drops input until the peer closes (or kTlsFailedLinger),
  // then closes with `reason`. Closing at once, with the client's first
  // request unread, would send a reset that can overtake the alert, and
  // the client would not learn why (TLS 1.3 clients finish their handshake
  // before the server checks their certificate).
  void LingerAfterFailedHandshake(const absl::Status& reason);
  // Encrypts tls_plain_out_ into output_ once the handshake is done.
  void EncryptOutput();
  // Appends bytes for the socket (ciphertext) to output_, counted.
  void AppendWire(LinkBuffer wire);
  void OnTlsHandshakeDone(const absl::Status& status);
  absl::Duration MinTimeout() const;

  // Constant after construction.
  EventLoop* const loop_;  // not owned; outlives this
  const uint64_t id_;
  const SocketAddress local_;
  const SocketAddress peer_;
  const absl::Time created_at_ = absl::Now();
  std::atomic<int64_t> bytes_read_{0};
  std::atomic<int64_t> bytes_written_{0};
  const std::shared_ptr<const ConnectionCallbacks> callbacks_;
  // Copies of the options Write() needs: Write() runs on any thread, and
  // options_ below is the loop thread's (SetTimeouts() rewrites it there).
  const size_t max_output_bytes_;
  const int flush_after_writes_;
  const std::shared_ptr<MemoryBudget> budget_;

  std::atomic<ConnectionState> state_{ConnectionState::kConnecting};
  std::atomic<size_t> output_bytes_{0};
  std::atomic<size_t> output_memory_{0};  // BlockBytes() of pending_ and output_

  // Loop thread only (Write() reads the constant copies above instead).
  ConnectionOptions options_;
  UniqueFd fd_;
  std::any context_;
  LinkBuffer input_;
  LinkBuffer output_;
  ConnectionPtr self_;  // keeps the connection alive while registered
  bool registered_ = false;
  bool user_paused_ = false;
  bool cap_paused_ = false;
  bool read_interest_ = true;
  bool above_high_watermark_ = false;
  bool output_paused_ = false;  // above the high watermark, pause_read_above_high_watermark
  bool budget_paused_ = false;  // waiting for the memory budget
  bool peer_closed_ = false;
  int64_t extra_held_ = 0;      // ChargeHeld()
  int64_t budget_charged_ = 0;  // what the budget holds for this connection
  size_t prepaid_input_ = 0;    // SetPrepaidInput()
  absl::Status close_reason_;
  absl::Time last_read_;
  absl::Time last_write_;
  TimerId timeout_timer_ = kInvalidTimerId;
  // TLS, loop thread only. kSniffing: a server context waits for the first
  // byte to pick TLS or plaintext. kFailed: LingerAfterFailedHandshake().
  enum class TlsState : uint8_t { kOff, kSniffing, kOn, kFailed };
  TlsState tls_state_ = TlsState::kOff;
  std::unique_ptr<TlsSession> tls_;
  LinkBuffer tls_wire_in_;               // ciphertext read, before decryption
  LinkBuffer tls_plain_out_;             // written plaintext waiting for encryption
  TimerId tls_timer_ = kInvalidTimerId;  // handshake timeout, or the linger after a failure
  absl::AnyInvocable<void(const absl::Status&)> on_tls_handshake_;

  mutable Mutex mu_;
  std::shared_ptr<const TlsInfo> tls_info_ ABSL_GUARDED_BY(mu_);
  LinkBuffer pending_ ABSL_GUARDED_BY(mu_);  // written by Write(), not yet in output_
  bool flush_queued_ ABSL_GUARDED_BY(mu_) = false;
  int pending_writes_ ABSL_GUARDED_BY(mu_) = 0;  // since the last flush
  size_t read_hint_ = 4096;                    // loop thread: bytes the next read offers (adaptive)
  bool closing_ ABSL_GUARDED_BY(mu_) = false;  // no more writes accepted
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<absl::AnyInvocable<void()>> close_callbacks_ ABSL_GUARDED_BY(mu_);
  // Write(data, then): run by the next FlushInLoop (or the close).
  std::vector<absl::AnyInvocable<void()>> after_flush_ ABSL_GUARDED_BY(mu_);
};

}  // namespace netpoll

#endif  // NETPOLL_CONNECTION_H_
