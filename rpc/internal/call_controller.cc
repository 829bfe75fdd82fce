#include "rpc/internal/call_controller.h"

#include <algorithm>
#include <utility>

#include "rpc/errors.h"
#include "rpc/retry_policy.h"

namespace nprpc {
namespace {

std::atomic<int64_t> g_next_attempt_id{1};

}  // namespace

absl::Time CallDeadline(const CallOptions& options, absl::Duration default_timeout,
                        absl::Time now) {
  absl::Time deadline = options.deadline;
  if (options.timeout != absl::InfiniteDuration()) {
    deadline = std::min(deadline, now + options.timeout);
  }
  if (deadline == absl::InfiniteFuture() && default_timeout != absl::InfiniteDuration()) {
    deadline = now + default_timeout;
  }
  return deadline;
}

struct CallController::Attempt {
  ClientCallPtr call;
  EndpointPtr endpoint;
  // Used when attempts may overlap (backup requests): each parses into its
  // own message and the winner's is swapped into the caller's.
  std::unique_ptr<google::protobuf::Message> private_response;
  std::unique_ptr<CallInfo> private_info;
  absl::Time start;
  bool done = false;  // guarded by the controller's mu_
  // The call completed without it and gave up on it (another attempt won,
  // the call was cancelled, or it failed otherwise): its outcome says
  // nothing about its endpoint. Guarded by the controller's mu_.
  bool abandoned = false;
};

CallController::CallController(std::shared_ptr<ChannelCore> core, ClientRequest request,
                               google::protobuf::Message* response, const CallOptions& options,
                               absl::Time deadline, DoneCallback done)
    : core_(std::move(core)),
      request_(std::move(request)),
      response_(response),
      info_(options.info),
      deadline_(deadline),
      start_(core_->clock().Now()),
      hash_key_(options.hash_key),
      idempotent_(options.idempotent),
      max_retries_(options.max_retries.value_or(core_->options().retry.max_retries)),
      backup_delay_(options.backup_request_delay.value_or(core_->options().backup_request_delay)),
      cancel_(options.cancel),
      done_(std::move(done)) {}

CallController::~CallController() = default;

void CallController::Start() {
  auto self = shared_from_this();
  if (metrics_ != nullptr) metrics_->OnStart();
  if (!core_->Register(self)) {
    Finish(absl::CancelledError("channel is shut down"), nullptr);
    return;
  }
  core_->budget().OnCall();
  Clock& clock = core_->clock();
  std::weak_ptr<CallController> weak = self;
  if (deadline_ != absl::InfiniteFuture()) {
    deadline_timer_ = clock.RunAfter(deadline_ - clock.Now(), [weak] {
      if (auto call = weak.lock()) {
        call->Finish(MakeRpcError(ERPCTIMEDOUT, "deadline exceeded before the response"), nullptr);
      }
    });
  }
  if (cancel_.has_value()) {
    cancel_registration_ = cancel_->Register([weak] {
      if (auto call = weak.lock()) call->Finish(absl::CancelledError("call cancelled"), nullptr);
    });
  }
  StartAttempt();
  if (hedging() && deadline_ - clock.Now() > backup_delay_) {
    backup_timer_ = clock.RunAfter(backup_delay_, [weak] {
      if (auto call = weak.lock()) call->MaybeStartBackup();
    });
  }
}

void CallController::Cancel(absl::Status status) { Finish(std::move(status), nullptr); }

void CallController::StartAttempt() {
  const absl::Time now = core_->clock().Now();
  std::vector<const Endpoint*> tried;
  {
    netpoll::MutexLock lock(&mu_);
    if (finished_) return;
    for (const auto& attempt : attempts_) tried.push_back(attempt->endpoint.get());
  }
  EndpointPtr endpoint = core_->Select(hash_key_, tried);
  if (!endpoint) {
    if (WaitForEndpoints(now)) return;
    Finish(MakeRpcError(EFAILEDSOCKET, "no server available (empty server list)"), nullptr);
    return;
  }
  auto attempt = std::make_shared<Attempt>();
  attempt->endpoint = endpoint;
  attempt->start = now;
  std::weak_ptr<CallController> weak = shared_from_this();
  {
    netpoll::MutexLock lock(&mu_);
    // Once the call has finished (a deadline or Cancel() on another thread),
    // its `done` may have run and the caller may have freed the response and
    // info: they are touched only before that, under mu_, which Finish()
    // takes before it runs `done`.
    if (finished_) {
      endpoint->Release();
      return;
    }
    google::protobuf::Message* target = response_;
    CallInfo* info = info_;
    if (hedging()) {
      attempt->private_response.reset(response_->New());
      target = attempt->private_response.get();
      if (info_ != nullptr) {
        attempt->private_info = std::make_unique<CallInfo>();
        info = attempt->private_info.get();
      }
    } else {
      response_->Clear();  // a retry must not merge into a failed attempt's fields
    }
    // The attempt and its ClientCall hold each other (the callback keeps the
    // attempt's private response alive as long as the call may write it) until
    // the call completes, which it does once sent: made only past the check
    // above, it always is.
    attempt->call =
        std::make_shared<ClientCall>(g_next_attempt_id.fetch_add(1, std::memory_order_relaxed),
                                     target, info, [weak, attempt](absl::Status status) {
                                       if (auto call = weak.lock())
                                         call->OnAttemptDone(attempt, std::move(status));
                                     });
    // Select() acquired the endpoint; OnAttemptDone releases it.
    attempts_.push_back(attempt);
  }
  core_->CountAttempt();
  const absl::Duration timeout =
      deadline_ == absl::InfiniteFuture() ? absl::InfiniteDuration() : deadline_ - now;
  endpoint->transport->Send(attempt->call, request_, deadline_, timeout);
}

bool CallController::WaitForEndpoints(absl::Time now) {
  absl::Time give_up;
  {
    netpoll::MutexLock lock(&mu_);
    if (finished_) return true;  // nothing to fail: the call has completed
    if (first_wait_ == absl::InfinitePast()) first_wait_ = now;
    give_up = std::min(deadline_, first_wait_ + core_->options().naming_wait);
    if (now >= give_up) return false;
    waiting_for_endpoints_ = true;
  }
  const ChannelCore::AwaitResult awaited = core_->AwaitEndpoints(weak_from_this());
  if (awaited != ChannelCore::AwaitResult::kWaiting) {
    {
      netpoll::MutexLock lock(&mu_);
      waiting_for_endpoints_ = false;
    }
    if (awaited == ChannelCore::AwaitResult::kClosed) return false;
    // Non-empty again already: one more look, which ends in an attempt, a
    // new wait, or the failure.
    StartAttempt();
    return true;
  }
  std::weak_ptr<CallController> weak = shared_from_this();
  Clock::TimerId timer = core_->clock().RunAfter(give_up - now, [weak] {
    auto call = weak.lock();
    if (!call) return;
    {
      netpoll::MutexLock lock(&call->mu_);
      if (!call->waiting_for_endpoints_) return;
      call->waiting_for_endpoints_ = false;
    }
    call->Finish(MakeRpcError(EFAILEDSOCKET, "no server available (empty server list)"), nullptr);
  });
  netpoll::MutexLock lock(&mu_);
  retry_timer_ = timer;
  return true;
}

void CallController::OnEndpointsAvailable() {
  {
    netpoll::MutexLock lock(&mu_);
    if (finished_ || !waiting_for_endpoints_) return;
    waiting_for_endpoints_ = false;
  }
  StartAttempt();
}

void CallController::MaybeStartBackup() {
  {
    netpoll::MutexLock lock(&mu_);
    if (finished_ || attempts_.size() != 1 || attempts_[0]->done) return;
  }
  if (!core_->budget().TrySpend()) return;
  StartAttempt();
}

void CallController::OnAttemptDone(const std::shared_ptr<Attempt>& attempt, absl::Status status) {
  Clock& clock = core_->clock();
  attempt->endpoint->Release();
  if (status.ok()) attempt->endpoint->RecordLatency(clock.Now() - attempt->start);
  const bool answered = attempt->call->answered_by_server();
  // Only our own connection failures say the endpoint is unreachable; an
  // EFAILEDSOCKET the server answered with is about its downstream.
  if (!answered && ErrorCodeOf(status) == EFAILEDSOCKET) {
    core_->ReportConnectionFailure(attempt->endpoint);
  }
  bool others_running = false;
  int retries = 0;
  bool abandoned = false;
  {
    netpoll::MutexLock lock(&mu_);
    attempt->done = true;
    abandoned = attempt->abandoned;
  }
  if (!abandoned) {
    core_->ReportOutcome(*attempt->endpoint, status, answered, clock.Now() - attempt->start);
  }
  {
    netpoll::MutexLock lock(&mu_);
    if (finished_) return;
    for (const auto& other : attempts_) others_running |= !other->done;
    retries = static_cast<int>(attempts_.size()) - 1;
  }
  const RetryOptions& retry = core_->options().retry;
  if (status.ok() || !IsRetryable(status, answered, idempotent_, retry)) {
    Finish(std::move(status), attempt);
    return;
  }
  if (others_running) return;  // the backup (or the original) may still answer
  absl::Duration backoff = RetryBackoff(retries + 1, retry);
  if (retries >= max_retries_ || clock.Now() + backoff >= deadline_ ||
      !core_->budget().TrySpend()) {
    Finish(std::move(status), attempt);
    return;
  }
  std::weak_ptr<CallController> weak = shared_from_this();
  Clock::TimerId timer = clock.RunAfter(backoff, [weak] {
    if (auto call = weak.lock()) call->StartAttempt();
  });
  netpoll::MutexLock lock(&mu_);
  retry_timer_ = timer;  // a Finish() before this line leaves it to fire as a no-op
}

void CallController::Finish(absl::Status status, const std::shared_ptr<Attempt>& winner) {
  std::vector<std::shared_ptr<Attempt>> losers;
  Clock::TimerId retry_timer;
  {
    netpoll::MutexLock lock(&mu_);
    if (finished_) return;
    finished_ = true;
    // At the deadline the attempts still running timed out: that counts
    // against their endpoints. Otherwise they are merely given up.
    const bool deadline = winner == nullptr && ErrorCodeOf(status) == ERPCTIMEDOUT;
    for (const auto& attempt : attempts_) {
      if (attempt != winner && !attempt->done) {
        attempt->abandoned = !deadline;
        losers.push_back(attempt);
      }
    }
    retry_timer = retry_timer_;
  }
  Clock& clock = core_->clock();
  clock.Cancel(deadline_timer_.load());
  clock.Cancel(backup_timer_.load());
  clock.Cancel(retry_timer);
  if (cancel_.has_value()) cancel_->Unregister(cancel_registration_.load());
  // Losers are abandoned before the winner's response is moved over, so no
  // attempt still writes into memory the caller is about to see.
  for (auto& loser : losers) {
    // A fresh Status per loser: sharing one rep across threads would hide its
    // refcount from TSan (Debian's Abseil is not instrumented).
    absl::Status loser_status = status.ok() ? absl::CancelledError("another attempt answered first")
                                            : absl::Status(status.code(), status.message());
    loser->endpoint->transport->Abandon(loser->call, std::move(loser_status));
  }
  if (winner && winner->private_response) {
    response_->GetReflection()->Swap(response_, winner->private_response.get());
  }
  if (winner && winner->private_info && info_ != nullptr) *info_ = std::move(*winner->private_info);
  if (info_ != nullptr && !winner) {
    info_->error_code = status.ok() ? 0 : ErrorCodeOf(status);
    info_->latency = clock.Now() - start_;
  }
  if (metrics_ != nullptr) {
    metrics_->OnEnd(status.ok() ? 0 : ErrorCodeOf(status), clock.Now() - start_,
                    request_.payload.Len() + request_.attachment.Len(),
                    status.ok() ? response_->ByteSizeLong() : 0);
  }
  if (observer_ != nullptr) {
    observer_->OnCallDone(status, *response_, winner ? winner->endpoint->node.address : "");
  }
  DoneCallback done = std::move(done_);
  core_->Unregister(shared_from_this());
  done(std::move(status));
}

}  // namespace nprpc
