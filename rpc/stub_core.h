// StubCore: what a generated Stub does for every method, typed by templates:
// the blocking, callback and awaitable calls over one Channel, with the
// incoming call's context merged into the options (rpc/task.h,
// "Context propagation").
//
// Generated code only; users see it through EchoService::Stub:
//
//   auto stub = example::EchoService::NewStub(channel.get());
//   absl::StatusOr<example::EchoResponse> r = stub->Echo(request);      // blocks
//   stub->Echo(request, [](absl::StatusOr<example::EchoResponse> r) {  // loop thread
//     ...
//   }, nprpc::CallOptions());
//   absl::StatusOr<example::EchoResponse> a = co_await stub->EchoAsync(request);
//
// Streaming methods (rpc/client_streaming.h) start a call with
// Channel::NewStream() and wrap it: a blocking reader/writer, a reactor the
// caller owns, or (awaited) a coroutine stream.
//
// Which context propagates: blocking and callback calls (and streams) take
// CurrentServerContext() of the calling thread (set while a generated handler
// runs); awaitable calls (and awaited streams) take the context of the
// coroutine that awaits them.
// StubOptions::propagate_context = false turns both off.
//
// Thread safety: const and safe from any thread. The channel must outlive the
// stub and its calls.
#ifndef RPC_STUB_CORE_H_
#define RPC_STUB_CORE_H_

#include <memory>
#include <string>
#include <utility>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"
#include "rpc/call_options.h"
#include "rpc/channel.h"
#include "rpc/channel_async.h"
#include "rpc/client_streaming.h"
#include "rpc/context_propagation.h"
#include "rpc/stream_core.h"
#include "rpc/task.h"

namespace nprpc {

// Settings of one generated stub.
struct StubOptions {
  // Merge the current incoming call's deadline, trace context and forwarded user fields
  // into every call (PropagateContext()). False: calls carry only their own
  // CallOptions.
  bool propagate_context = true;
};

// The completion of a callback-style stub call. Runs once, on the channel's
// loop thread (or on the calling thread when the call fails before it is
// sent), so it must not block.
template <typename Response>
using Callback = absl::AnyInvocable<void(absl::StatusOr<Response>)>;

namespace codegen_internal {

class StubCore {
 public:
  // `channel`: not owned, must outlive the stub. `service`: the full name,
  // must outlive the stub (generated code passes a literal).
  StubCore(Channel* channel, absl::string_view service, const StubOptions& options);

  Channel* channel() const { return channel_; }
  absl::string_view service() const { return service_; }
  const StubOptions& options() const { return options_; }

  // Blocks (never on a loop thread nor in a coroutine).
  template <typename Response>
  absl::StatusOr<Response> BlockingCall(absl::string_view method,
                                        const google::protobuf::Message& request,
                                        const CallOptions& options) const {
    Response response;
    absl::Status status = Call(method, request, &response, options);
    if (!status.ok()) return status;
    return response;
  }

  template <typename Response>
  void CallbackCall(absl::string_view method, const google::protobuf::Message& request,
                    Callback<Response> done, const CallOptions& options) const {
    auto response = std::make_unique<Response>();
    Response* raw = response.get();
    Call(method, request, raw, options,
         [response = std::move(response), done = std::move(done)](absl::Status status) mutable {
           if (!done) return;
           if (!status.ok()) {
             std::move(done)(std::move(status));
           } else {
             std::move(done)(std::move(*response));
           }
         });
  }

  // Lazy: the call starts when the task is awaited. `request` must outlive
  // the await.
  template <typename Response>
  Task<absl::StatusOr<Response>> AwaitableCall(absl::string_view method,
                                               const google::protobuf::Message& request,
                                               CallOptions options) const {
    Response response;
    absl::Status status = co_await CallMethodAsync(channel_, service_, method, request, &response,
                                                   std::move(options), options_.propagate_context);
    if (!status.ok()) co_return status;
    co_return std::move(response);
  }

  // ---------------------------------------------------------- Streaming

  // A new call of a streaming method, with the thread's context merged in.
  std::shared_ptr<ClientStreamCore> NewStream(absl::string_view method,
                                              const CallOptions& options) const;

  // Sync forms: the call starts at once; the typed stream blocks.
  template <typename Response>
  std::unique_ptr<ClientReader<Response>> ServerStreamingCall(
      absl::string_view method, const google::protobuf::Message& request,
      const CallOptions& options) const {
    return std::make_unique<ClientReader<Response>>(NewStream(method, options), request);
  }
  template <typename Request>
  std::unique_ptr<ClientWriter<Request>> ClientStreamingCall(absl::string_view method,
                                                             google::protobuf::Message* response,
                                                             const CallOptions& options) const {
    return std::make_unique<ClientWriter<Request>>(NewStream(method, options), response);
  }
  template <typename Request, typename Response>
  std::unique_ptr<ClientReaderWriter<Request, Response>> BidiStreamingCall(
      absl::string_view method, const CallOptions& options) const {
    return std::make_unique<ClientReaderWriter<Request, Response>>(NewStream(method, options));
  }

  // Callback forms: binds `reactor` (not owned) to a new call. `request`: a
  // server-streaming call's request; `response`: a client-streaming call's.
  void ReactorCall(absl::string_view method, stream_internal::ClientReactorBase* reactor,
                   const google::protobuf::Message* request, google::protobuf::Message* response,
                   const CallOptions& options) const;

  // Coroutine forms: lazy; awaiting starts the call with the awaiting
  // coroutine's context and yields the stream. `request` must outlive the
  // await (it is sent when the await starts).
  template <typename Response>
  Task<ClientStreamReader<Response>> AwaitableServerStreamingCall(
      absl::string_view method, const google::protobuf::Message& request,
      CallOptions options) const {
    const ServerContext* context = co_await CurrentTaskContext();
    co_return ClientStreamReader<Response>(
        NewStreamWithContext(method, context, std::move(options)), request);
  }
  template <typename Request, typename Response>
  Task<ClientStreamWriter<Request, Response>> AwaitableClientStreamingCall(
      absl::string_view method, CallOptions options) const {
    const ServerContext* context = co_await CurrentTaskContext();
    co_return ClientStreamWriter<Request, Response>(
        NewStreamWithContext(method, context, std::move(options)));
  }
  template <typename Request, typename Response>
  Task<ClientStream<Request, Response>> AwaitableBidiStreamingCall(absl::string_view method,
                                                                   CallOptions options) const {
    const ServerContext* context = co_await CurrentTaskContext();
    co_return ClientStream<Request, Response>(
        NewStreamWithContext(method, context, std::move(options)));
  }

 private:
  std::shared_ptr<ClientStreamCore> NewStreamWithContext(absl::string_view method,
                                                         const ServerContext* context,
                                                         CallOptions options) const;
  absl::Status Call(absl::string_view method, const google::protobuf::Message& request,
                    google::protobuf::Message* response, const CallOptions& options) const;
  void Call(absl::string_view method, const google::protobuf::Message& request,
            google::protobuf::Message* response, const CallOptions& options,
            Channel::DoneCallback done) const;
  // `options` with the thread's current context merged in, when propagating.
  CallOptions WithThreadContext(const CallOptions& options) const;

  Channel* const channel_;
  const absl::string_view service_;
  const StubOptions options_;
};

}  // namespace codegen_internal
}  // namespace nprpc

#endif  // RPC_STUB_CORE_H_
