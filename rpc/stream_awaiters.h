// The awaitables behind the coroutine streams of rpc/server_streaming.h and
// rpc/client_streaming.h: one Read, Write, WritesDone or Finish of a
// ServerStreamCore or ClientStreamCore (rpc/stream_core.h), to co_await.
//
//   std::optional<Request> request = co_await ReadAwaiter<Request, ServerStreamCore>(core);
//   bool written = co_await WriteAwaiter<ServerStreamCore>(core, response);
//
// Each awaiter starts its operation in await_suspend() and resumes the
// coroutine from the operation's callback, so the coroutine always continues
// on a loop thread of the stream's connection (the core never runs a callback
// inside the call that started it): code after the co_await must not block.
// The awaiting coroutine is suspended before the operation starts, so the
// callback may resume it on the loop thread even before await_suspend()
// returns; await_suspend() touches nothing after starting the operation.
//
// Thread safety: an awaiter is used by the one coroutine that awaits it. The
// core's rule applies: at most one read and one write-side operation
// (Write or WritesDone) outstanding per stream.
#ifndef RPC_STREAM_AWAITERS_H_
#define RPC_STREAM_AWAITERS_H_

#include <coroutine>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "google/protobuf/message.h"
#include "rpc/stream_core.h"

namespace nprpc {
namespace stream_internal {

// co_await: the next message, or nullopt at the end of the stream.
template <typename Message, typename Core>
class ReadAwaiter {
 public:
  explicit ReadAwaiter(Core* core) : core_(core) {}
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> awaiting) {
    core_->Read(&message_, [this, awaiting](bool ok) {
      ok_ = ok;
      awaiting.resume();
    });
  }
  std::optional<Message> await_resume() {
    if (!ok_) return std::nullopt;
    return std::optional<Message>(std::move(message_));
  }

 private:
  Core* const core_;
  Message message_;
  bool ok_ = false;
};

// co_await: true once the transport took the message (flow control), false
// when the call ended. The message is serialized before await_suspend()
// returns.
template <typename Core>
class WriteAwaiter {
 public:
  WriteAwaiter(Core* core, const google::protobuf::Message& message)
      : core_(core), message_(&message) {}
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> awaiting) {
    core_->Write(*message_, [this, awaiting](bool ok) {
      ok_ = ok;
      awaiting.resume();
    });
  }
  bool await_resume() const { return ok_; }

 private:
  Core* const core_;
  const google::protobuf::Message* const message_;
  bool ok_ = false;
};

// co_await: ClientStreamCore::WritesDone(); false when the call had ended.
class WritesDoneAwaiter {
 public:
  explicit WritesDoneAwaiter(ClientStreamCore* core) : core_(core) {}
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> awaiting) {
    core_->WritesDone([this, awaiting](bool ok) {
      ok_ = ok;
      awaiting.resume();
    });
  }
  bool await_resume() const { return ok_; }

 private:
  ClientStreamCore* const core_;
  bool ok_ = false;
};

// co_await: ClientStreamCore::Finish(), the call's status.
class FinishAwaiter {
 public:
  explicit FinishAwaiter(ClientStreamCore* core) : core_(core) {}
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> awaiting) {
    core_->Finish([this, awaiting](absl::Status status) {
      status_ = std::move(status);
      awaiting.resume();
    });
  }
  absl::Status await_resume() { return std::move(status_); }

 private:
  ClientStreamCore* const core_;
  absl::Status status_;
};

}  // namespace stream_internal
}  // namespace nprpc

#endif  // RPC_STREAM_AWAITERS_H_
