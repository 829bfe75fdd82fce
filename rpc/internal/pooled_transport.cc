#include "rpc/internal/pooled_transport.h"

#include <any>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "netpoll/logging.h"
#include "rpc/errors.h"
#include "rpc/internal/baidu_std_client_codec.h"

namespace nprpc {

// One attempt: the call and, once acquired, the lease of its connection.
struct PooledTransport::Attempt {
  Attempt(ClientCallPtr c, std::weak_ptr<PooledTransport> t)
      : call(std::move(c)), transport(std::move(t)) {}

  // Takes the lease (empty if none or already taken) and marks the attempt
  // finished, so that a lease acquired later is returned unused.
  netpoll::ConnectionPool::Lease Finish() {
    netpoll::MutexLock lock(&mu);
    finished = true;
    return std::move(lease);
  }

  const ClientCallPtr call;
  const std::weak_ptr<PooledTransport> transport;
  netpoll::Mutex mu;
  netpoll::ConnectionPool::Lease lease ABSL_GUARDED_BY(mu);
  bool finished ABSL_GUARDED_BY(mu) = false;
};

namespace {

// The context of every pooled connection: the attempt it is carrying.
struct CallSlot {
  explicit CallSlot(size_t max_body_size) : decoder(FrameDecoderOptions{max_body_size}) {}

  std::shared_ptr<PooledTransport::Attempt> Take() {
    netpoll::MutexLock lock(&mu);
    return std::move(attempt);
  }

  // Takes the attempt only when `correlation_id` is its id.
  std::shared_ptr<PooledTransport::Attempt> TakeIf(int64_t correlation_id) {
    netpoll::MutexLock lock(&mu);
    if (attempt == nullptr || attempt->call->id() != correlation_id) return nullptr;
    return std::move(attempt);
  }

  // Whether the connection's first request (which carries the credential)
  // was written. The lease holder only: one attempt at a time.
  bool first_written() {
    netpoll::MutexLock lock(&mu);
    return written;
  }

  const FrameDecoder decoder;
  const size_t max_body_size = decoder.options().max_body_size;
  netpoll::Mutex mu;
  std::shared_ptr<PooledTransport::Attempt> attempt ABSL_GUARDED_BY(mu);
  // A request was written on this connection (the first carries the
  // credential).
  bool written ABSL_GUARDED_BY(mu) = false;
};

using SlotPtr = std::shared_ptr<CallSlot>;

SlotPtr SlotOf(const std::any& context) {
  const SlotPtr* slot = std::any_cast<SlotPtr>(&context);
  return slot ? *slot : nullptr;
}

absl::Status AcquireError(const absl::Status& status, absl::string_view address) {
  std::string text = absl::StrCat("no connection to ", address, ": ", status.message());
  if (absl::IsDeadlineExceeded(status)) return MakeRpcError(ERPCTIMEDOUT, text);
  if (absl::IsResourceExhausted(status)) return MakeRpcError(EOVERCROWDED, text);
  if (absl::IsCancelled(status)) return absl::CancelledError(text);
  return MakeRpcError(EFAILEDSOCKET, text);
}

}  // namespace

struct PooledCallbacks {
  static void OnInput(const netpoll::ConnectionPtr& conn, netpoll::LinkBuffer& input) {
    SlotPtr slot = SlotOf(conn->context());
    if (!slot) return;
    while (true) {
      DecodeResult result = slot->decoder.Decode(input);
      if (result.need_more()) return;
      if (result.is_error() || !result.frame().meta.has_response()) {
        // The stream cannot be trusted (or resynchronized) any more.
        absl::Status why = result.is_error() ? result.status()
                                             : absl::DataLossError("server sent a request frame");
        NP_LOG(WARNING) << "closing pooled connection to " << conn->peer_address().ToString()
                        << ": " << why;
        std::shared_ptr<PooledTransport::Attempt> attempt = slot->Take();
        conn->Close(why);
        if (attempt) {
          netpoll::ConnectionPool::Lease lease = attempt->Finish();
          if (lease) lease.MarkBroken();
          attempt->call->Complete(MakeRpcError(ERESPONSE, why.message()));
          if (auto transport = attempt->transport.lock()) transport->Forget(attempt->call->id());
        }
        return;
      }
      const int64_t id = result.frame().meta.correlation_id();
      std::shared_ptr<PooledTransport::Attempt> attempt = slot->TakeIf(id);
      if (!attempt) {
        // A duplicate, or an answer to an earlier call on this connection:
        // dropped, as on a single connection. The attempt in the slot (if
        // any) still waits for its own answer.
        LogUnexpectedResponse(conn->peer_address().ToString(), id);
        continue;
      }
      // Give the connection back first: the completion may issue the next call.
      // A server that refused our credential closes the connection: never
      // reuse it.
      {
        netpoll::ConnectionPool::Lease lease = attempt->Finish();
        if (lease && result.frame().meta.response().error_code() == ERPCAUTH) lease.MarkBroken();
      }
      CompleteWithBaiduStdResponse(*attempt->call, result.TakeFrame(), slot->max_body_size);
      if (auto transport = attempt->transport.lock()) transport->Forget(attempt->call->id());
    }
  }

  static void OnDisconnect(const netpoll::ConnectionPtr& conn, const absl::Status& reason) {
    SlotPtr slot = SlotOf(conn->context());
    if (!slot) return;
    std::shared_ptr<PooledTransport::Attempt> attempt = slot->Take();
    if (!attempt) return;
    { netpoll::ConnectionPool::Lease lease = attempt->Finish(); }
    attempt->call->Complete(MakeRpcError(
        EFAILEDSOCKET,
        absl::StrCat("connection to ", conn->peer_address().ToString(),
                     " broke during the call: ", reason.ok() ? "closed" : reason.message())));
    if (auto transport = attempt->transport.lock()) {
      transport->Forget(attempt->call->id());
    }
  }
};

absl::StatusOr<std::unique_ptr<netpoll::ConnectionPool>> PooledTransport::MakePool(
    netpoll::EventLoopGroup* group, const PooledTransportOptions& options) {
  auto callbacks = std::make_shared<netpoll::ConnectionCallbacks>();
  size_t max_body = options.max_body_size;
  callbacks->on_prepare = [max_body](netpoll::Connection&) -> absl::StatusOr<std::any> {
    return std::any(std::make_shared<CallSlot>(max_body));
  };
  callbacks->on_request = &PooledCallbacks::OnInput;
  callbacks->on_disconnect = &PooledCallbacks::OnDisconnect;
  netpoll::ConnectionPoolOptions pool_options;
  pool_options.group = group;
  pool_options.callbacks = std::move(callbacks);
  pool_options.dial_timeout = options.connect_timeout;
  pool_options.max_active_per_address = options.max_connections_per_endpoint;
  pool_options.max_waiters = options.max_waiters;
  pool_options.idle_timeout = options.idle_timeout;
  pool_options.connection.max_output_bytes = options.max_unwritten_bytes;
  pool_options.connection.write_timeout = options.write_timeout;
  pool_options.keepalive = options.keepalive;
  pool_options.connection.tls = options.tls;
  if (options.short_connections) {
    pool_options.max_idle_per_address = 0;
    pool_options.max_idle_global = 0;
  } else {
    pool_options.max_idle_per_address = options.max_idle_per_endpoint;
  }
  // Only a connection with no attempt in flight goes back to the pool. A
  // short one never does: the pool would hand it to a call waiting for its
  // own dial (max_idle 0 keeps none idle, but waiters come first).
  const bool reuse = !options.short_connections;
  pool_options.on_release = [reuse](const netpoll::ConnectionPtr&, const std::any& context) {
    if (!reuse) return false;
    SlotPtr slot = SlotOf(context);
    if (!slot) return false;
    netpoll::MutexLock lock(&slot->mu);
    return slot->attempt == nullptr;
  };
  return netpoll::ConnectionPool::Create(pool_options);
}

std::shared_ptr<PooledTransport> PooledTransport::Create(
    std::string address, netpoll::ConnectionPool* pool,
    std::shared_ptr<const Authenticator> authenticator) {
  return std::shared_ptr<PooledTransport>(
      new PooledTransport(std::move(address), pool, std::move(authenticator)));
}

PooledTransport::PooledTransport(std::string address, netpoll::ConnectionPool* pool,
                                 std::shared_ptr<const Authenticator> authenticator)
    : address_(std::move(address)), pool_(pool), authenticator_(std::move(authenticator)) {}

PooledTransport::~PooledTransport() = default;

size_t PooledTransport::in_flight() const {
  netpoll::MutexLock lock(&mu_);
  return attempts_.size();
}

void PooledTransport::Send(ClientCallPtr call, const ClientRequest& request, absl::Time deadline,
                           absl::Duration timeout) {
  call->set_remote_address(address_);
  netpoll::LinkBuffer frame;
  if (absl::Status encoded = EncodeBaiduStdRequest(call->id(), request, timeout, frame);
      !encoded.ok()) {
    call->Complete(std::move(encoded));
    return;
  }
  auto attempt = std::make_shared<Attempt>(call, weak_from_this());
  std::weak_ptr<PooledTransport> weak = weak_from_this();
  netpoll::MutexLock lock(&mu_);
  if (shut_down_) {
    call->Complete(absl::CancelledError("channel is shut down"));
    return;
  }
  attempts_[call->id()] = attempt;
  // Under mu_, so that Shutdown() (after which the pool may be destroyed)
  // cannot slip in between the check and the use. Acquire never runs its
  // callback inside the call, so holding mu_ here cannot deadlock.
  pool_->Acquire(address_, deadline,
                 [weak, attempt, frame = std::move(frame)](
                     absl::StatusOr<netpoll::ConnectionPool::Lease> lease) mutable {
                   if (auto self = weak.lock()) {
                     self->OnAcquired(attempt, std::move(lease), std::move(frame));
                   } else {
                     attempt->call->Complete(absl::CancelledError("channel destroyed"));
                   }
                 });
}

void PooledTransport::OnAcquired(const std::shared_ptr<Attempt>& attempt,
                                 absl::StatusOr<netpoll::ConnectionPool::Lease> lease,
                                 netpoll::LinkBuffer frame) {
  if (!lease.ok()) {
    attempt->call->Complete(AcquireError(lease.status(), address_));
    Forget(attempt->call->id());
    return;
  }
  netpoll::ConnectionPtr conn = lease->connection();
  SlotPtr slot = SlotOf(lease->context());
  {
    netpoll::MutexLock lock(&attempt->mu);
    if (attempt->finished || !slot) return;  // abandoned meanwhile: lease goes back unused
    attempt->lease = std::move(*lease);
  }
  if (authenticator_ != nullptr && !slot->first_written()) {
    // The connection's first request: it carries the credential.
    absl::StatusOr<std::string> credential = GenerateBaiduStdCredential(*authenticator_);
    absl::Status added = credential.ok() ? AddBaiduStdCredential(*std::move(credential), frame)
                                         : std::move(credential).status();
    if (!added.ok()) {
      // Nothing was written: the connection goes back unused and its next
      // request asks again.
      { netpoll::ConnectionPool::Lease unused = attempt->Finish(); }
      attempt->call->Complete(std::move(added));
      Forget(attempt->call->id());
      return;
    }
  }
  {
    netpoll::MutexLock lock(&slot->mu);
    slot->attempt = attempt;
    slot->written = true;
  }
  absl::Status written = conn->Write(std::move(frame));
  if (!written.ok()) {
    // The connection closed under us: OnDisconnect completes the attempt if
    // it saw it in the slot; make sure it completes either way.
    slot->Take();
    netpoll::ConnectionPool::Lease dead = attempt->Finish();
    if (dead) dead.MarkBroken();
    attempt->call->Complete(MakeRpcError(EFAILEDSOCKET, written.message()));
    Forget(attempt->call->id());
  }
}

void PooledTransport::Forget(int64_t correlation_id) {
  netpoll::MutexLock lock(&mu_);
  attempts_.erase(correlation_id);
}

void PooledTransport::Abandon(const ClientCallPtr& call, absl::Status status) {
  std::shared_ptr<Attempt> attempt;
  {
    netpoll::MutexLock lock(&mu_);
    auto it = attempts_.find(call->id());
    if (it != attempts_.end()) {
      attempt = std::move(it->second);
      attempts_.erase(it);
    }
  }
  if (!attempt) {
    // Completed, or taken by Shutdown() and maybe not completed yet: it must
    // have completed when Abandon() returns (transport.h).
    call->Complete(std::move(status));
    return;
  }
  netpoll::ConnectionPool::Lease lease = attempt->Finish();
  // The response may still be in flight: never reuse this connection.
  if (lease) lease.MarkBroken();
  attempt->call->Complete(std::move(status));
}

void PooledTransport::Shutdown() {
  std::vector<std::shared_ptr<Attempt>> attempts;
  {
    netpoll::MutexLock lock(&mu_);
    shut_down_ = true;
    for (auto& [id, attempt] : attempts_) attempts.push_back(std::move(attempt));
    attempts_.clear();
  }
  for (auto& attempt : attempts) {
    netpoll::ConnectionPool::Lease lease = attempt->Finish();
    if (lease) lease.MarkBroken();
    attempt->call->Complete(absl::CancelledError("channel destroyed"));
  }
}

}  // namespace nprpc
