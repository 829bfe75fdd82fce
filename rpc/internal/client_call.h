// ClientCall: one attempt of a client call on one transport, from send to
// completion.
//
// An attempt completes exactly once: the first of CompleteWithResponse() and
// Complete() wins, later ones return false. The response message is written
// only by the winning CompleteWithResponse(), under the attempt's lock, and
// before `done` runs, so a concurrent Complete() (timeout, cancel, hedge lost)
// from another thread never races with parsing.
//
// Thread safety: every method is safe from any thread.
#ifndef RPC_INTERNAL_CLIENT_CALL_H_
#define RPC_INTERNAL_CLIENT_CALL_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "netpoll/mutex.h"
#include "rpc/call_options.h"
#include "rpc/internal/frame_codec.h"

namespace nprpc {

class ClientCall {
 public:
  using DoneCallback = absl::AnyInvocable<void(absl::Status)>;

  // `response` and `info` (may be null) are not owned and must outlive the
  // attempt's completion.
  ClientCall(int64_t correlation_id, google::protobuf::Message* response, CallInfo* info,
             DoneCallback done)
      : correlation_id_(correlation_id), response_(response), info_(info), done_(std::move(done)) {}

  int64_t correlation_id() const { return correlation_id_; }
  bool completed() const;
  // True when the server's response completed the attempt (an error code in
  // it came from the server, not from our side of the connection).
  bool answered_by_server() const;

  // Parses a response frame into the response message and CallInfo, then
  // completes. Returns false if the attempt had already completed.
  bool CompleteWithResponse(DecodedFrame frame, size_t max_body_size);
  // Completes with `status`. Returns false if already completed.
  bool Complete(absl::Status status);

  // The endpoint address, for CallInfo.
  void set_remote_address(std::string address);

 private:
  // Marks completion under the lock; returns the callback to run, or null.
  DoneCallback TakeDoneLocked(const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int64_t correlation_id_;
  google::protobuf::Message* const response_;  // not owned
  CallInfo* const info_;                       // not owned; may be null
  const absl::Time start_ = absl::Now();

  mutable netpoll::Mutex mu_;
  DoneCallback done_ ABSL_GUARDED_BY(mu_);
  bool completed_ ABSL_GUARDED_BY(mu_) = false;
  bool answered_by_server_ ABSL_GUARDED_BY(mu_) = false;
  std::string remote_address_ ABSL_GUARDED_BY(mu_);
};

using ClientCallPtr = std::shared_ptr<ClientCall>;

}  // namespace nprpc

#endif  // RPC_INTERNAL_CLIENT_CALL_H_
