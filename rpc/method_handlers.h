// MethodHandlers for the three styles of generated service bases, over the
// untyped rpc/service.h layer. Generated code only.
//
//   sync:      absl::Status Fn(ServerContext&, const Request&, Response*)
//              runs where the server runs handlers (its worker pool) and
//              completes the call with the returned status.
//   callback:  void Fn(ServerContext&, const Request&, Response*, Responder)
//              runs on the server's I/O loop (it must not block) and
//              completes the call through the Responder, once, from any
//              thread.
//   coroutine: Task<absl::Status> Fn(ServerContext&, const Request&, Response*)
//              starts on the server's I/O loop (it must not block); after
//              each co_await it continues where the awaited work completed
//              (for a stub call: the channel's loop thread) and completes the
//              call from there.
// Callback and coroutine handlers skip the hand-off to a worker thread (the
// largest cost of a small call): MethodHandler::ExecutionMode::kIoLoop.
//
// Every style makes the incoming call current (ScopedServerContext) while the
// handler's synchronous part runs, and a coroutine handler's tasks carry it
// along, so outgoing stub calls inherit its deadline and metadata.
//
// Thread safety: Call() runs concurrently on many threads; the function must
// allow that (generated code binds a member function of the user's service).
#ifndef RPC_METHOD_HANDLERS_H_
#define RPC_METHOD_HANDLERS_H_

#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"
#include "rpc/context_propagation.h"
#include "rpc/server_context.h"
#include "rpc/service.h"
#include "rpc/task.h"

namespace nprpc {
namespace codegen_internal {

// UNIMPLEMENTED (answered as ENOMETHOD) naming "service/method".
absl::Status Unimplemented(absl::string_view service, absl::string_view method);

// Adds a generated method to `service`; aborts on a duplicate name, which
// only a bug in the generator can cause.
void AddGeneratedMethod(Service& service, absl::string_view method,
                        std::unique_ptr<MethodHandler> handler);

template <typename Request, typename Response>
class TypedMethodHandler : public MethodHandler {
 public:
  std::unique_ptr<google::protobuf::Message> NewRequest() const final {
    return std::make_unique<Request>();
  }
  std::unique_ptr<google::protobuf::Message> NewResponse() const final {
    return std::make_unique<Response>();
  }
};

template <typename Request, typename Response, typename Fn>
class SyncMethodHandler final : public TypedMethodHandler<Request, Response> {
 public:
  explicit SyncMethodHandler(Fn fn) : fn_(std::move(fn)) {}
  void Call(ServerContext& context, const google::protobuf::Message& request,
            google::protobuf::Message* response, Responder done) override {
    absl::Status status;
    {
      ScopedServerContext scope(&context);
      status = fn_(context, static_cast<const Request&>(request), static_cast<Response*>(response));
    }
    done.Finish(std::move(status));
  }

 private:
  Fn fn_;
};

template <typename Request, typename Response, typename Fn>
class CallbackMethodHandler final : public TypedMethodHandler<Request, Response> {
 public:
  explicit CallbackMethodHandler(Fn fn) : fn_(std::move(fn)) {}
  void Call(ServerContext& context, const google::protobuf::Message& request,
            google::protobuf::Message* response, Responder done) override {
    ScopedServerContext scope(&context);
    fn_(context, static_cast<const Request&>(request), static_cast<Response*>(response),
        std::move(done));
  }
  MethodHandler::ExecutionMode execution_mode() const override {
    return MethodHandler::ExecutionMode::kIoLoop;
  }

 private:
  Fn fn_;
};

template <typename Request, typename Response, typename Fn>
class CoroutineMethodHandler final : public TypedMethodHandler<Request, Response> {
 public:
  explicit CoroutineMethodHandler(Fn fn) : fn_(std::move(fn)) {}
  void Call(ServerContext& context, const google::protobuf::Message& request,
            google::protobuf::Message* response, Responder done) override {
    ScopedServerContext scope(&context);
    Task<absl::Status> task =
        fn_(context, static_cast<const Request&>(request), static_cast<Response*>(response));
    task.InheritContext(&context);
    // `done` keeps context, request and response alive until it runs.
    StartDetached(std::move(task), absl::AnyInvocable<void(absl::Status)>(
                                       [done = std::move(done)](absl::Status status) {
                                         done.Finish(std::move(status));
                                       }));
  }
  MethodHandler::ExecutionMode execution_mode() const override {
    return MethodHandler::ExecutionMode::kIoLoop;
  }

 private:
  Fn fn_;
};

template <typename Request, typename Response, typename Fn>
std::unique_ptr<MethodHandler> MakeSyncHandler(Fn fn) {
  return std::make_unique<SyncMethodHandler<Request, Response, Fn>>(std::move(fn));
}
template <typename Request, typename Response, typename Fn>
std::unique_ptr<MethodHandler> MakeCallbackHandler(Fn fn) {
  return std::make_unique<CallbackMethodHandler<Request, Response, Fn>>(std::move(fn));
}
template <typename Request, typename Response, typename Fn>
std::unique_ptr<MethodHandler> MakeCoroutineHandler(Fn fn) {
  return std::make_unique<CoroutineMethodHandler<Request, Response, Fn>>(std::move(fn));
}

}  // namespace codegen_internal
}  // namespace nprpc

#endif  // RPC_METHOD_HANDLERS_H_
