// MethodHandlers of streaming methods for the three styles of generated
// service bases (rpc/server_streaming.h has the signatures and the threads).
// Generated code only.
//
//   MakeSyncStreamHandler        kWorkerPool: CallStream() runs the function,
//                                which may block, and finishes the stream with
//                                its status.
//   MakeCallbackStreamHandler    kIoLoop: CallStream() runs the function, which
//                                returns the reactor; the framework owns it and
//                                the reactor's Finish() ends the call.
//   MakeCoroutineStreamHandler   kIoLoop: CallStream() starts the coroutine;
//                                its co_return status finishes the stream.
//
// each <Request, Response, StreamKind>(fn) for a streaming StreamKind. A
// server-streaming handler runs once the request arrived (sync: read blocking; callback and
// coroutine: read without blocking, the function then runs on the I/O loop).
// A client-streaming handler's response is written before an OK status.
//
// Call() (the path of protocols without streams, baidu_std) answers
// UNIMPLEMENTED naming the method and its kind; servers refuse earlier.
//
// Thread safety: CallStream() runs concurrently on many threads; the function
// must allow that (generated code binds a member function of the service).
#ifndef RPC_STREAM_HANDLERS_H_
#define RPC_STREAM_HANDLERS_H_

#include <memory>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"
#include "rpc/context_propagation.h"
#include "rpc/method_handlers.h"
#include "rpc/server_context.h"
#include "rpc/server_streaming.h"
#include "rpc/service.h"
#include "rpc/stream_core.h"
#include "rpc/task.h"

namespace nprpc {
namespace codegen_internal {

// UNIMPLEMENTED: "<service>/<method> is a <kind> method; call it over a
// protocol with streams (gRPC)".
absl::Status StreamingOverUnary(const ServerContext& context, StreamKind kind);
// INTERNAL: a server-streaming call whose client half-closed without a request.
absl::Status MissingStreamRequest(const ServerContext& context);

template <typename Request, typename Response, StreamKind Kind>
class StreamMethodHandler : public TypedMethodHandler<Request, Response> {
 public:
  StreamKind stream_kind() const final { return Kind; }
  void Call(ServerContext& context, const google::protobuf::Message&, google::protobuf::Message*,
            Responder done) final {
    done.Finish(StreamingOverUnary(context, Kind));
  }
};

// ------------------------------------------------------------------ Sync

template <typename Request, typename Response, StreamKind Kind, typename Fn>
class SyncStreamHandler final : public StreamMethodHandler<Request, Response, Kind> {
 public:
  explicit SyncStreamHandler(Fn fn) : fn_(std::move(fn)) {}

  void CallStream(std::shared_ptr<ServerStreamCore> stream) override {
    ServerContext& context = stream->context();
    ScopedServerContext scope(&context);
    stream->Finish(Run(*stream, context));
  }

 private:
  absl::Status Run(ServerStreamCore& stream, ServerContext& context) {
    if constexpr (Kind == StreamKind::kClientStreaming) {
      ServerReader<Request> reader(&stream);
      Response response;
      absl::Status status = fn_(context, &reader, &response);
      // A failed write means the call ended; Finish() is dropped then.
      if (status.ok()) stream_internal::BlockingWrite(stream, response);
      return status;
    } else if constexpr (Kind == StreamKind::kServerStreaming) {
      Request request;
      if (!stream_internal::BlockingRead(stream, &request)) return MissingStreamRequest(context);
      ServerWriter<Response> writer(&stream);
      return fn_(context, static_cast<const Request&>(request), &writer);
    } else {
      ServerReaderWriter<Response, Request> stream_rw(&stream);
      return fn_(context, &stream_rw);
    }
  }

  Fn fn_;
};

// ------------------------------------------------------------------ Callback

template <typename Request, typename Response, StreamKind Kind, typename Fn>
class CallbackStreamHandler final : public StreamMethodHandler<Request, Response, Kind> {
 public:
  explicit CallbackStreamHandler(Fn fn) : fn_(std::move(fn)) {}

  void CallStream(std::shared_ptr<ServerStreamCore> stream) override {
    ServerContext& context = stream->context();
    if constexpr (Kind == StreamKind::kClientStreaming) {
      auto response = std::make_unique<Response>();
      Response* raw = response.get();
      ScopedServerContext scope(&context);
      std::unique_ptr<ServerReadReactor<Request>> reactor = fn_(context, raw);
      stream_internal::ServerReactorDriver::Start(std::move(stream), std::move(reactor),
                                                  std::move(response), raw);
    } else if constexpr (Kind == StreamKind::kServerStreaming) {
      auto request = std::make_unique<Request>();
      Request* raw = request.get();
      ServerStreamCore* core = stream.get();
      core->Read(raw,
                 [this, stream = std::move(stream), request = std::move(request)](bool ok) mutable {
                   ServerContext& ctx = stream->context();
                   if (!ok) {
                     stream->Finish(MissingStreamRequest(ctx));
                     return;
                   }
                   ScopedServerContext scope(&ctx);
                   std::unique_ptr<ServerWriteReactor<Response>> reactor =
                       fn_(ctx, static_cast<const Request&>(*request));
                   stream_internal::ServerReactorDriver::Start(
                       std::move(stream), std::move(reactor), std::move(request), nullptr);
                 });
    } else {
      ScopedServerContext scope(&context);
      std::unique_ptr<ServerBidiReactor<Request, Response>> reactor = fn_(context);
      stream_internal::ServerReactorDriver::Start(std::move(stream), std::move(reactor), nullptr,
                                                  nullptr);
    }
  }
  MethodHandler::ExecutionMode execution_mode() const override {
    return MethodHandler::ExecutionMode::kIoLoop;
  }

 private:
  Fn fn_;
};

// ------------------------------------------------------------------ Coroutine

template <typename Request, typename Response, StreamKind Kind, typename Fn>
class CoroutineStreamHandler final : public StreamMethodHandler<Request, Response, Kind> {
 public:
  explicit CoroutineStreamHandler(Fn fn) : fn_(std::move(fn)) {}

  void CallStream(std::shared_ptr<ServerStreamCore> stream) override {
    ServerContext& context = stream->context();
    ScopedServerContext scope(&context);
    ServerStreamCore* core = stream.get();
    Task<absl::Status> task = Run(core, &context);
    task.InheritContext(&context);
    // The callback keeps the stream (and its context) alive until the end.
    StartDetached(std::move(task), absl::AnyInvocable<void(absl::Status)>(
                                       [stream = std::move(stream)](absl::Status status) {
                                         stream->Finish(std::move(status));
                                       }));
  }
  MethodHandler::ExecutionMode execution_mode() const override {
    return MethodHandler::ExecutionMode::kIoLoop;
  }

 private:
  // `core` and `context` outlive the task (StartDetached's callback holds
  // the stream).
  Task<absl::Status> Run(ServerStreamCore* core, ServerContext* context) {
    if constexpr (Kind == StreamKind::kClientStreaming) {
      ServerStreamReader<Request> reader(core);
      Response response;
      absl::Status status = co_await fn_(*context, reader, &response);
      if (status.ok()) co_await stream_internal::WriteAwaiter<ServerStreamCore>(core, response);
      co_return status;
    } else if constexpr (Kind == StreamKind::kServerStreaming) {
      std::optional<Request> request =
          co_await stream_internal::ReadAwaiter<Request, ServerStreamCore>(core);
      if (!request.has_value()) co_return MissingStreamRequest(*context);
      ServerStreamWriter<Response> writer(core);
      co_return co_await fn_(*context, static_cast<const Request&>(*request), writer);
    } else {
      ServerStream<Request, Response> server_stream(core);
      co_return co_await fn_(*context, server_stream);
    }
  }

  Fn fn_;
};

// ------------------------------------------------------------------ Factories

template <typename Request, typename Response, StreamKind Kind, typename Fn>
std::unique_ptr<MethodHandler> MakeSyncStreamHandler(Fn fn) {
  return std::make_unique<SyncStreamHandler<Request, Response, Kind, Fn>>(std::move(fn));
}
template <typename Request, typename Response, StreamKind Kind, typename Fn>
std::unique_ptr<MethodHandler> MakeCallbackStreamHandler(Fn fn) {
  return std::make_unique<CallbackStreamHandler<Request, Response, Kind, Fn>>(std::move(fn));
}
template <typename Request, typename Response, StreamKind Kind, typename Fn>
std::unique_ptr<MethodHandler> MakeCoroutineStreamHandler(Fn fn) {
  return std::make_unique<CoroutineStreamHandler<Request, Response, Kind, Fn>>(std::move(fn));
}

// The reactor of an unoverridden callback method: it finishes with
// UNIMPLEMENTED naming "service/method" as soon as the framework takes it.
template <typename Reactor>
std::unique_ptr<Reactor> UnimplementedReactor(absl::string_view service, absl::string_view method) {
  class Unimplemented final : public Reactor {
   public:
    explicit Unimplemented(absl::Status status) { this->Finish(std::move(status)); }
  };
  return std::make_unique<Unimplemented>(codegen_internal::Unimplemented(service, method));
}

}  // namespace codegen_internal
}  // namespace nprpc

#endif  // RPC_STREAM_HANDLERS_H_
