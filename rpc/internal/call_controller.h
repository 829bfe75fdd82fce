// CallController: one logical client call: its deadline, cancellation,
// attempts, retries and backup request. It picks endpoints through the
// ChannelCore and sends each attempt's ClientRequest through the endpoint's
// Transport; it never sees the wire format.
//
//   auto call = std::make_shared<CallController>(core, std::move(request),
//       response, options, CallDeadline(options, timeout, core->clock().Now()),
//       std::move(done));
//   call->Start();  // `done` runs exactly once, maybe inside Start()
//
// The call completes exactly once (Finish()), with the first of: a response,
// an error that is not retried, the deadline (ERPCTIMEDOUT), the
// cancellation token (CANCELLED), Cancel() (channel shutdown). Attempts still
// running then are abandoned on their transports (their late answers are
// dropped). A failed attempt is retried (IsRetryable()) after
// RetryBackoff(), never when the backoff would reach the deadline, on an
// endpoint the call has not tried yet when one is available, while the
// channel's retry budget allows. A backup attempt goes to another endpoint
// after backup_request_delay (if the deadline is further away and the
// budget allows); each overlapping attempt parses into its own message and
// the winner's is swapped into the caller's. Without backups, the caller's
// message is cleared before each attempt, so a retry never merges into what
// a failed attempt left there. An attempt that finds no endpoint at all
// waits for the naming service (ChannelCore::AwaitEndpoints) up to the
// core's naming_wait, never past the deadline, then fails with
// EFAILEDSOCKET "no server available".
//
// Thread safety: Start() once, from the thread that made the controller;
// Cancel() and the transports' completions from any thread. Timers run on
// the core's clock.
#ifndef RPC_INTERNAL_CALL_CONTROLLER_H_
#define RPC_INTERNAL_CALL_CONTROLLER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "netpoll/mutex.h"
#include "rpc/call_options.h"
#include "rpc/internal/channel_core.h"
#include "rpc/internal/client_call.h"
#include "rpc/internal/clock.h"
#include "rpc/internal/load_balancer.h"
#include "rpc/internal/transport.h"
#include "rpc/metrics.h"

namespace nprpc {

// The earlier of options.deadline and now + options.timeout; now +
// default_timeout when neither is set; InfiniteFuture when that is infinite.
absl::Time CallDeadline(const CallOptions& options, absl::Duration default_timeout, absl::Time now);

// Sees a call's outcome just before its `done` runs (the channel's metrics,
// span and interceptors). Called once, on the completing thread.
class CallObserver {
 public:
  virtual ~CallObserver() = default;
  // `response` is the caller's message (filled when `status` is OK);
  // `remote` the address of the answering endpoint (empty when none).
  virtual void OnCallDone(const absl::Status& status, const google::protobuf::Message& response,
                          absl::string_view remote) = 0;
};

class CallController final : public InFlightCall,
                             public EndpointWaiter,
                             public std::enable_shared_from_this<CallController> {
 public:
  using DoneCallback = absl::AnyInvocable<void(absl::Status)>;

  // `response` and options.info (may be null) are not owned and must stay
  // alive until `done` has run.
  CallController(std::shared_ptr<ChannelCore> core, ClientRequest request,
                 google::protobuf::Message* response, const CallOptions& options,
                 absl::Time deadline, DoneCallback done);
  ~CallController() override;

  // Before Start(): told the outcome before `done` runs.
  void set_observer(std::unique_ptr<CallObserver> observer) { observer_ = std::move(observer); }
  // Before Start(): the method's client metrics (not owned; process-wide).
  void set_metrics(MethodMetrics* metrics) { metrics_ = metrics; }
  // Registers the call, arms the deadline, cancellation and backup timer and
  // sends the first attempt.
  void Start();
  // Completes a call still running with `status` (channel shutdown).
  void Cancel(absl::Status status) override;
  // The endpoint set is non-empty again: starts the attempt that waited.
  void OnEndpointsAvailable() override;

 private:
  struct Attempt;

  bool hedging() const { return backup_delay_ != absl::InfiniteDuration(); }
  void StartAttempt();
  // No endpoint: waits for one (true) or gives up (false: the wait or the
  // deadline is over, or the channel is shut down).
  bool WaitForEndpoints(absl::Time now);
  void MaybeStartBackup();
  void OnAttemptDone(const std::shared_ptr<Attempt>& attempt, absl::Status status);
  // Completes the call once: `winner` (may be null) supplies the response.
  void Finish(absl::Status status, const std::shared_ptr<Attempt>& winner);

  // Constant after construction.
  const std::shared_ptr<ChannelCore> core_;
  const ClientRequest request_;                // every attempt sends it (buffers cloned)
  google::protobuf::Message* const response_;  // not owned
  CallInfo* const info_;                       // not owned; may be null
  const absl::Time deadline_;
  const absl::Time start_;
  const std::string hash_key_;
  const bool idempotent_;
  const int max_retries_;
  const absl::Duration backup_delay_;
  const std::optional<CancellationToken> cancel_;

  DoneCallback done_;                       // taken by the one Finish()
  std::unique_ptr<CallObserver> observer_;  // may be null; used by the one Finish()
  MethodMetrics* metrics_ = nullptr;        // may be null
  // Set in Start(), read by Finish() on whichever thread completes.
  std::atomic<Clock::TimerId> deadline_timer_{Clock::kNoTimer};
  std::atomic<Clock::TimerId> backup_timer_{Clock::kNoTimer};
  std::atomic<uint64_t> cancel_registration_{0};

  netpoll::Mutex mu_;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::shared_ptr<Attempt>> attempts_ ABSL_GUARDED_BY(mu_);
  // The retry backoff timer, or the timer ending a wait for endpoints.
  Clock::TimerId retry_timer_ ABSL_GUARDED_BY(mu_) = Clock::kNoTimer;
  bool waiting_for_endpoints_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time first_wait_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace nprpc

#endif  // RPC_INTERNAL_CALL_CONTROLLER_H_
