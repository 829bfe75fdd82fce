// CallOptions: per-call settings of a client call, and CallInfo: what came
// back besides the response message.
//
//   nprpc::CallOptions options;
//   options.timeout = absl::Milliseconds(200);
//   options.metadata = {{"x-tenant", "acme"}};
//   nprpc::CallInfo info;
//   options.info = &info;                  // response attachment, metadata
//   absl::Status s = channel->CallMethod("example.EchoService", "Echo",
//                                        request, &response, options);
//   int brpc_code = nprpc::ErrorCodeOf(s);  // the wire error number
//
// A CancellationToken cancels an in-flight call from any thread:
//
//   nprpc::CancellationToken cancel;
//   options.cancel = cancel;
//   channel->CallMethod(..., options, done);
//   cancel.Cancel();  // done runs once, with CANCELLED, unless it already ran
//
// Thread safety: CallOptions and CallInfo are plain values owned by the
// caller. CancellationToken is a shared handle; Cancel() is safe from any
// thread.
#ifndef RPC_CALL_OPTIONS_H_
#define RPC_CALL_OPTIONS_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"
#include "netpoll/link_buffer.h"
#include "netpoll/mutex.h"
#include "rpc/baidu_std.h"
#include "rpc/trace_context.h"

namespace nprpc {

// Cancels the calls it was given to. Copies share one state.
class CancellationToken {
 public:
  CancellationToken();

  // Cancels every call registered now and any registered later. Idempotent.
  void Cancel() const;
  bool IsCancelled() const;

  // Runs `on_cancel` once when cancelled (at once if already). Returns an id
  // for Unregister(). Used by the channel.
  uint64_t Register(absl::AnyInvocable<void()> on_cancel) const;
  // Forgets a callback that has not run (no-op if it has).
  void Unregister(uint64_t id) const;

 private:
  struct State {
    netpoll::Mutex mu;
    bool cancelled ABSL_GUARDED_BY(mu) = false;
    uint64_t next_id ABSL_GUARDED_BY(mu) = 1;
    std::vector<std::pair<uint64_t, absl::AnyInvocable<void()>>> callbacks ABSL_GUARDED_BY(mu);
  };
  std::shared_ptr<State> state_;
};

// Filled by the channel when CallOptions::info points at it.
struct CallInfo {
  netpoll::LinkBuffer response_attachment;
  std::vector<std::pair<std::string, std::string>> response_metadata;
  // The brpc error number of a failed call (0 on success); also available
  // as ErrorCodeOf(status).
  int32_t error_code = 0;
  std::string remote_address;
  absl::Duration latency;
};

struct CallOptions {
  // The call's deadline is the earlier of `deadline` and now + `timeout`.
  // Unset (infinite) both: the channel's default timeout applies. The
  // remaining time is sent to the server as timeout_ms.
  absl::Duration timeout = absl::InfiniteDuration();
  absl::Time deadline = absl::InfiniteFuture();

  // Sent as baidu_std user_fields.
  std::vector<std::pair<std::string, std::string>> metadata;
  // Sent as the request meta's trace_id, span_id, parent_span_id, log_id
  // and request_id (each only when set).
  TraceContext trace;

  // Moved out (zero-copy) by the call; not owned, must outlive the call's
  // start. Null: no attachment.
  netpoll::LinkBuffer* request_attachment = nullptr;

  CompressType compress_type = CompressType::kNone;  // payload only
  bool checksum = false;                             // CRC32C over the payload

  std::optional<CancellationToken> cancel;

  // Consistent hashing ("c_hash" load balancer): calls with the same key go
  // to the same server while it is available.
  std::string hash_key;
  // The method is safe to run twice: failures listed in
  // RetryOptions::retryable_error_codes may then be retried too.
  bool idempotent = false;
  // Overrides ChannelOptions::retry.max_retries for this call.
  std::optional<int> max_retries;
  // Overrides ChannelOptions::backup_request_delay: after this long without
  // an answer, a second attempt goes to another server; the first answer
  // wins and the other attempt is cancelled.
  std::optional<absl::Duration> backup_request_delay;

  // Not owned; filled before completion when set. Must outlive the call.
  CallInfo* info = nullptr;

  // Generated stubs merge the deadline and metadata of the incoming call being
  // handled (if any) into these options; false opts this call out.
  bool propagate_context = true;
};

}  // namespace nprpc

#endif  // RPC_CALL_OPTIONS_H_
