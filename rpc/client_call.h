// ClientCall: the state of one client call, from send to completion.
//
// A call completes exactly once: Complete() returns false for every attempt
// after the first. The transport arranges for all attempts to run on the
// call's loop thread, so the response message is written by one thread and
// only before `done` runs.
//
// Thread safety: created on any thread; after it is handed to a transport,
// loop thread only.
#ifndef RPC_CLIENT_CALL_H_
#define RPC_CLIENT_CALL_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "netpoll/timer_queue.h"
#include "rpc/call_options.h"
#include "rpc/frame_codec.h"

namespace nprpc {

class ClientCall {
 public:
  using DoneCallback = absl::AnyInvocable<void(absl::Status)>;

  ClientCall(int64_t correlation_id, absl::Time deadline, google::protobuf::Message* response,
             CallInfo* info, DoneCallback done)
      : correlation_id_(correlation_id),
        deadline_(deadline),
        start_(absl::Now()),
        response_(response),
        info_(info),
        done_(std::move(done)) {}

  int64_t correlation_id() const { return correlation_id_; }
  absl::Time deadline() const { return deadline_; }
  bool completed() const { return completed_; }

  // Parses a response frame into the response message and CallInfo, then
  // completes. Returns false if the call had already completed.
  bool CompleteWithResponse(DecodedFrame frame, size_t max_body_size);
  // Completes with an error (or OK). Returns false if already completed.
  bool Complete(absl::Status status);

  // Set by the transport; cancelled at completion.
  // Written by the sending thread, read at completion on the loop thread.
  std::atomic<netpoll::TimerId> timer{netpoll::kInvalidTimerId};
  std::optional<CancellationToken> cancel;
  std::atomic<uint64_t> cancel_registration{0};
  std::string remote_address;
  std::function<void(netpoll::TimerId)> cancel_timer;

 private:
  const int64_t correlation_id_;
  const absl::Time deadline_;
  const absl::Time start_;
  google::protobuf::Message* const response_;  // not owned; outlives the call
  CallInfo* const info_;                       // not owned; may be null
  DoneCallback done_;
  bool completed_ = false;
};

using ClientCallPtr = std::shared_ptr<ClientCall>;

}  // namespace nprpc

#endif  // RPC_CLIENT_CALL_H_
