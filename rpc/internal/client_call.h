// ClientCall: one attempt of a client call on one transport, from send to
// completion, in any protocol.
//
// An attempt completes exactly once: the first of CompleteWithAnswer() and
// Complete() wins, later ones return false. The response message is written
// only by the winning CompleteWithAnswer(), whose decoder runs under the
// attempt's lock and before `done`, so a concurrent Complete() (timeout,
// cancel, hedge lost) from another thread never races with parsing.
//
// Thread safety: every method is safe from any thread.
#ifndef RPC_INTERNAL_CLIENT_CALL_H_
#define RPC_INTERNAL_CLIENT_CALL_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "netpoll/mutex.h"
#include "rpc/call_options.h"

namespace nprpc {

class ClientCall {
 public:
  using DoneCallback = absl::AnyInvocable<void(absl::Status)>;
  // Turns the server's answer into the response message and `info` (null
  // when the caller did not ask for it); returns the call's status.
  using Decoder =
      absl::FunctionRef<absl::Status(google::protobuf::Message& response, CallInfo* info)>;

  // `id` is unique in the process (baidu_std sends it as the correlation_id).
  // `response` and `info` (may be null) are not owned and must outlive the
  // attempt's completion.
  ClientCall(int64_t id, google::protobuf::Message* response, CallInfo* info, DoneCallback done)
      : id_(id), response_(response), info_(info), done_(std::move(done)) {}

  int64_t id() const { return id_; }
  bool completed() const;
  // True when the server's answer completed the attempt (an error code in it
  // came from the server, not from our side of the connection).
  bool answered_by_server() const;

  // The server answered: runs `decode` under the attempt's lock, then
  // completes with its status. Returns false (without running `decode`) if
  // the attempt had already completed.
  bool CompleteWithAnswer(Decoder decode);
  // Completes with `status`. Returns false if already completed.
  bool Complete(absl::Status status);

  // The endpoint address, for CallInfo.
  void set_remote_address(std::string address);

 private:
  // Marks completion under the lock; returns the callback to run.
  DoneCallback TakeDoneLocked(const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int64_t id_;
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
