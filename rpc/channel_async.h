// CallMethodAsync(): awaiting a Channel call from an nprpc coroutine
// (rpc/task.h). Generated stubs' FooAsync() methods use it.
//
//   absl::Status s = co_await nprpc::CallMethodAsync(channel, "example.EchoService", "Echo",
//                                                    request, &response);
//
// Thread safety: an awaitable is used by the one coroutine that awaits it.
#ifndef RPC_CHANNEL_ASYNC_H_
#define RPC_CHANNEL_ASYNC_H_

#include <atomic>
#include <coroutine>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"
#include "rpc/call_options.h"
#include "rpc/channel.h"
#include "rpc/task.h"

namespace nprpc {

// Awaits Channel::CallMethod(..., done): the call starts when awaited, and
// the awaiting coroutine resumes with its status on the channel's I/O loop
// thread when it completes (or on the awaiting thread, without suspending,
// when the channel completes it at once, e.g. while reconnecting after a
// failed dial). `service`, `method`, `request` and `response` must outlive
// the await; `options` is copied.
class [[nodiscard]] CallMethodAwaitable {
 public:
  CallMethodAwaitable(Channel* channel, absl::string_view service, absl::string_view method,
                      const google::protobuf::Message& request, google::protobuf::Message* response,
                      CallOptions options, bool propagate)
      : channel_(channel),
        service_(service),
        method_(method),
        request_(&request),
        response_(response),
        options_(std::move(options)),
        propagate_(propagate) {}
  CallMethodAwaitable(const CallMethodAwaitable&) = delete;
  CallMethodAwaitable& operator=(const CallMethodAwaitable&) = delete;

  bool await_ready() const noexcept { return false; }
  template <typename Promise>
  bool await_suspend(std::coroutine_handle<Promise> awaiting) {
    const bool propagate = propagate_ && options_.propagate_context;
    return Start(propagate ? task_internal::ContextOf(awaiting) : nullptr, awaiting);
  }
  absl::Status await_resume() { return std::move(status_); }

 private:
  // Starts the call; false when it already completed (do not suspend).
  bool Start(const ServerContext* context, std::coroutine_handle<> awaiting);

  Channel* const channel_;
  const absl::string_view service_;
  const absl::string_view method_;
  const google::protobuf::Message* const request_;
  google::protobuf::Message* const response_;
  CallOptions options_;
  const bool propagate_;
  absl::Status status_;
  // Whoever of Start() and the completion comes second resumes (or goes on).
  std::atomic<bool> rendezvous_{false};
};

// `co_await CallMethodAsync(...)` yields the call's absl::Status; see
// CallMethodAwaitable. `propagate`: merge the awaiting task's context into
// `options` (PropagateContext()).
inline CallMethodAwaitable CallMethodAsync(Channel* channel, absl::string_view service,
                                           absl::string_view method,
                                           const google::protobuf::Message& request,
                                           google::protobuf::Message* response,
                                           CallOptions options = CallOptions(),
                                           bool propagate = true) {
  return CallMethodAwaitable(channel, service, method, request, response, std::move(options),
                             propagate);
}

}  // namespace nprpc

#endif  // RPC_CHANNEL_ASYNC_H_
