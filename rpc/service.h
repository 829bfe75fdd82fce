// Service, MethodHandler and Responder: the generic, untyped layer under
// generated services.
//
// A Service is a full service name ("example.EchoService") plus a table of
// MethodHandlers by method name. A MethodHandler makes the request and
// response messages of its method and runs it; it answers through a
// Responder, exactly once, from any thread, before or after Call() returns.
// Generated typed bases (codegen) implement MethodHandler per method.
//
// Until codegen exists, a service can be assembled from a descriptor and
// lambdas:
//
//   auto service = std::make_unique<nprpc::Service>(
//       example::EchoRequest::descriptor()->file()->FindServiceByName("EchoService"));
//   service->AddMethod("Echo", nprpc::TypedUnary<example::EchoRequest, example::EchoResponse>(
//       [](nprpc::ServerContext& ctx, const example::EchoRequest& req,
//          example::EchoResponse* resp) {
//         resp->set_message(req.message());
//         return absl::OkStatus();
//       }));
//   server.AddService(std::move(service));
//
// Status -> wire (HandlerErrorCode()): a handler's absl::Status becomes the
// response's error_code through rpc/errors.h ErrorCodeOf(): an explicit brpc
// number (MakeRpcError(4242, ...)) is sent as is; otherwise the canonical code
// decides: kUnimplemented -> ENOMETHOD 1002, kInvalidArgument -> EREQUEST 1003,
// kUnauthenticated/kPermissionDenied -> ERPCAUTH 1004, kDeadlineExceeded ->
// ERPCTIMEDOUT 1008, kUnavailable -> EFAILEDSOCKET 1009, kResourceExhausted ->
// ELIMIT 2004, anything else -> EINTERNAL 2001. The status message becomes
// error_text. Where the number does not imply the code (kNotFound ->
// EINTERNAL, ...), the code also travels in the response user field
// kStatusCodeField, so an nprpc client gets the handler's exact code.
//
// Completing twice: the first completion wins; any later one is ignored with
// a WARNING log and Finish() returns false. It is never a crash, in any build,
// because a second completion is usually a race the handler lost (e.g.
// against its own timeout) rather than memory corruption. Dropping every copy
// of a Responder without completing answers EINTERNAL ("handler dropped the
// call"), so a call can never be silently lost.
//
// Thread safety: a Service is configured (AddMethod) by one thread before it
// is added to a Server; afterwards only its const methods are used, from any
// thread. MethodHandler::Call() runs concurrently on many threads.
// Responder is safe from any thread; copies share one completion.
#ifndef RPC_SERVICE_H_
#define RPC_SERVICE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "rpc/server_context.h"
#include "rpc/stream_core.h"

namespace nprpc {

// Receives the one answer of a call. Implemented by the server (and by tests).
class CallCompleter {
 public:
  virtual ~CallCompleter() = default;
  // Called at most once per Responder family. OK: send the response message.
  virtual void Complete(absl::Status status) = 0;
};

// The `done` of one call. Cheap to copy; every copy completes the same call.
class Responder {
 public:
  // A responder that completes nothing (Finish() returns false).
  Responder() = default;
  explicit Responder(std::shared_ptr<CallCompleter> completer);

  // Completes the call: OK sends the response message, an error sends
  // HandlerErrorCode(status) and status.message(). Returns false (and logs)
  // when the call was already completed through this responder. Any thread.
  bool Finish(absl::Status status) const;
  void operator()(absl::Status status) const { Finish(std::move(status)); }
  bool finished() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

// Runs one method.
class MethodHandler {
 public:
  virtual ~MethodHandler() = default;
  // Fresh, empty messages of the method's types. Never null.
  virtual std::unique_ptr<google::protobuf::Message> NewRequest() const = 0;
  virtual std::unique_ptr<google::protobuf::Message> NewResponse() const = 0;
  // Runs the method and completes `done` exactly once, from any thread, now
  // or later. `context`, `request` and `response` stay valid while any copy
  // of `done` exists; the handler must not touch them after completing.
  virtual void Call(ServerContext& context, const google::protobuf::Message& request,
                    google::protobuf::Message* response, Responder done) = 0;

  // Where the server runs Call(). kWorkerPool (the default) for handlers that
  // may block; kIoLoop for handlers that never block (they only start
  // asynchronous work: callback and coroutine handlers), which saves the
  // hand-off to a worker thread, the largest cost of a small call.
  // ServerOptions::handler_threads says where kWorkerPool handlers run (by
  // default on the I/O loop too, moved to the pool when they block).
  enum class ExecutionMode { kWorkerPool, kIoLoop };
  virtual ExecutionMode execution_mode() const { return ExecutionMode::kWorkerPool; }

  // How the method streams (rpc/stream_core.h). A streaming method is run by
  // CallStream(), never by Call(), and only over a protocol that carries
  // streams (gRPC); the others refuse it with a clear error.
  virtual StreamKind stream_kind() const { return StreamKind::kUnary; }
  // Streaming methods: runs the method on `stream`, where execution_mode()
  // says, and ends it with stream->Finish() exactly once, now or later. The
  // default finishes with UNIMPLEMENTED.
  virtual void CallStream(std::shared_ptr<ServerStreamCore> stream);
};

// Handlers as functions. A unary function returns its status; the server
// completes the call with it.
using UnaryHandlerFn = std::function<absl::Status(ServerContext&, const google::protobuf::Message&,
                                                  google::protobuf::Message*)>;
using AsyncHandlerFn = std::function<void(ServerContext&, const google::protobuf::Message&,
                                          google::protobuf::Message*, Responder)>;

// A unary function over the concrete message types.
template <typename Request, typename Response, typename Fn>
UnaryHandlerFn TypedUnary(Fn fn) {
  return [fn = std::move(fn)](ServerContext& ctx, const google::protobuf::Message& req,
                              google::protobuf::Message* resp) {
    return fn(ctx, static_cast<const Request&>(req), static_cast<Response*>(resp));
  };
}

// MethodHandlers over prototypes (not owned; generated default instances
// live forever) and a function, run where `mode` says (kIoLoop only for a
// function that never blocks).
std::unique_ptr<MethodHandler> MakeMethodHandler(
    const google::protobuf::Message* request_prototype,
    const google::protobuf::Message* response_prototype, AsyncHandlerFn fn,
    MethodHandler::ExecutionMode mode = MethodHandler::ExecutionMode::kWorkerPool);
std::unique_ptr<MethodHandler> MakeUnaryMethodHandler(
    const google::protobuf::Message* request_prototype,
    const google::protobuf::Message* response_prototype, UnaryHandlerFn fn,
    MethodHandler::ExecutionMode mode = MethodHandler::ExecutionMode::kWorkerPool);

// The error_code a handler's status is answered with (see the header
// comment); 0 for OK.
int32_t HandlerErrorCode(const absl::Status& status);

class Service {
 public:
  // A service with this full name ("package.Service"); add methods with
  // AddMethod(name, handler).
  explicit Service(std::string full_name);
  // A service named after `descriptor` (not owned; generated descriptors live
  // forever). AddMethod(name, fn) takes the message types from it.
  explicit Service(const google::protobuf::ServiceDescriptor* descriptor);
  virtual ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  const std::string& full_name() const { return full_name_; }
  // nullptr for a service built from a name.
  const google::protobuf::ServiceDescriptor* descriptor() const { return descriptor_; }

  // AlreadyExists for a second handler of one name; InvalidArgument for an
  // empty name or a null handler.
  absl::Status AddMethod(const std::string& name, std::unique_ptr<MethodHandler> handler);
  // Descriptor-built services only (FailedPrecondition otherwise). NotFound
  // when the descriptor has no such method; Internal when its message types
  // are not linked into the binary.
  absl::Status AddMethod(absl::string_view name, UnaryHandlerFn fn);
  absl::Status AddAsyncMethod(absl::string_view name, AsyncHandlerFn fn);

  // nullptr when absent.
  MethodHandler* FindMethod(absl::string_view name) const;
  // Sorted.
  std::vector<std::string> method_names() const;

 private:
  absl::StatusOr<std::unique_ptr<MethodHandler>> HandlerFromDescriptor(absl::string_view name,
                                                                       AsyncHandlerFn fn) const;

  const std::string full_name_;
  const google::protobuf::ServiceDescriptor* const descriptor_ = nullptr;
  absl::flat_hash_map<std::string, std::unique_ptr<MethodHandler>> methods_;
};

}  // namespace nprpc

#endif  // RPC_SERVICE_H_
