#include "rpc/service.h"

#include <algorithm>
#include <atomic>
#include <utility>

#include "absl/strings/str_cat.h"
#include "netpoll/logging.h"
#include "rpc/errors.h"

namespace nprpc {

// ------------------------------------------------------------------ Responder

struct Responder::State {
  explicit State(std::shared_ptr<CallCompleter> c) : completer(std::move(c)) {}
  // The last copy is gone: a call nobody completed would hang its client
  // forever (or until its deadline), so answer it.
  ~State() {
    if (!done.exchange(true, std::memory_order_acq_rel) && completer) {
      NP_LOG(WARNING) << "handler dropped its Responder without completing the call";
      completer->Complete(MakeRpcError(EINTERNAL, "handler dropped the call without answering"));
    }
  }
  std::atomic<bool> done{false};
  const std::shared_ptr<CallCompleter> completer;
};

Responder::Responder(std::shared_ptr<CallCompleter> completer)
    : state_(std::make_shared<State>(std::move(completer))) {}

bool Responder::Finish(absl::Status status) const {
  if (!state_) return false;
  if (state_->done.exchange(true, std::memory_order_acq_rel)) {
    NP_LOG(WARNING) << "call completed twice; ignoring the second completion (" << status << ")";
    return false;
  }
  if (state_->completer) state_->completer->Complete(std::move(status));
  return true;
}

bool Responder::finished() const { return state_ && state_->done.load(std::memory_order_acquire); }

// ------------------------------------------------------------------ Handlers

namespace {

class FunctionMethodHandler : public MethodHandler {
 public:
  FunctionMethodHandler(const google::protobuf::Message* request_prototype,
                        const google::protobuf::Message* response_prototype, AsyncHandlerFn fn,
                        ExecutionMode mode)
      : request_prototype_(request_prototype),
        response_prototype_(response_prototype),
        fn_(std::move(fn)),
        mode_(mode) {}

  std::unique_ptr<google::protobuf::Message> NewRequest() const override {
    return std::unique_ptr<google::protobuf::Message>(request_prototype_->New());
  }
  std::unique_ptr<google::protobuf::Message> NewResponse() const override {
    return std::unique_ptr<google::protobuf::Message>(response_prototype_->New());
  }
  void Call(ServerContext& context, const google::protobuf::Message& request,
            google::protobuf::Message* response, Responder done) override {
    fn_(context, request, response, std::move(done));
  }
  ExecutionMode execution_mode() const override { return mode_; }

 private:
  const google::protobuf::Message* const request_prototype_;   // not owned
  const google::protobuf::Message* const response_prototype_;  // not owned
  const AsyncHandlerFn fn_;
  const ExecutionMode mode_;
};

AsyncHandlerFn AsyncFromUnary(UnaryHandlerFn fn) {
  return [fn = std::move(fn)](ServerContext& ctx, const google::protobuf::Message& req,
                              google::protobuf::Message* resp,
                              const Responder& done) { done.Finish(fn(ctx, req, resp)); };
}

}  // namespace

std::unique_ptr<MethodHandler> MakeMethodHandler(
    const google::protobuf::Message* request_prototype,
    const google::protobuf::Message* response_prototype, AsyncHandlerFn fn,
    MethodHandler::ExecutionMode mode) {
  NP_CHECK(request_prototype != nullptr && response_prototype != nullptr && fn);
  return std::make_unique<FunctionMethodHandler>(request_prototype, response_prototype,
                                                 std::move(fn), mode);
}

std::unique_ptr<MethodHandler> MakeUnaryMethodHandler(
    const google::protobuf::Message* request_prototype,
    const google::protobuf::Message* response_prototype, UnaryHandlerFn fn,
    MethodHandler::ExecutionMode mode) {
  NP_CHECK(fn);
  return MakeMethodHandler(request_prototype, response_prototype, AsyncFromUnary(std::move(fn)),
                           mode);
}

int32_t HandlerErrorCode(const absl::Status& status) {
  if (status.ok()) return 0;
  int32_t code = ErrorCodeOf(status);
  return code == 0 ? EINTERNAL : code;  // a failed status is never answered as success
}

// ------------------------------------------------------------------ Service

Service::Service(std::string full_name) : full_name_(std::move(full_name)) {}

Service::Service(const google::protobuf::ServiceDescriptor* descriptor)
    : full_name_(descriptor->full_name()), descriptor_(descriptor) {}

Service::~Service() = default;

absl::Status Service::AddMethod(const std::string& name, std::unique_ptr<MethodHandler> handler) {
  if (name.empty()) return absl::InvalidArgumentError("empty method name");
  if (handler == nullptr) return absl::InvalidArgumentError("null handler for " + name);
  auto [it, inserted] = methods_.try_emplace(name, nullptr);
  if (!inserted) {
    return absl::AlreadyExistsError(absl::StrCat(full_name_, "/", name, " already has a handler"));
  }
  it->second = std::move(handler);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<MethodHandler>> Service::HandlerFromDescriptor(
    absl::string_view name, AsyncHandlerFn fn) const {
  if (descriptor_ == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat(full_name_, " was not built from a descriptor; pass a MethodHandler"));
  }
  const google::protobuf::MethodDescriptor* method =
      descriptor_->FindMethodByName(std::string(name));
  if (method == nullptr) {
    return absl::NotFoundError(absl::StrCat(full_name_, " has no method ", name));
  }
  auto* factory = google::protobuf::MessageFactory::generated_factory();
  const google::protobuf::Message* request = factory->GetPrototype(method->input_type());
  const google::protobuf::Message* response = factory->GetPrototype(method->output_type());
  if (request == nullptr || response == nullptr) {
    return absl::InternalError(absl::StrCat("message types of ", method->full_name(),
                                            " are not compiled into this binary"));
  }
  if (!fn) return absl::InvalidArgumentError("null handler function");
  return MakeMethodHandler(request, response, std::move(fn));
}

absl::Status Service::AddMethod(absl::string_view name, UnaryHandlerFn fn) {
  if (!fn) return absl::InvalidArgumentError("null handler function");
  return AddAsyncMethod(name, AsyncFromUnary(std::move(fn)));
}

absl::Status Service::AddAsyncMethod(absl::string_view name, AsyncHandlerFn fn) {
  absl::StatusOr<std::unique_ptr<MethodHandler>> handler =
      HandlerFromDescriptor(name, std::move(fn));
  if (!handler.ok()) return handler.status();
  return AddMethod(std::string(name), std::move(*handler));
}

MethodHandler* Service::FindMethod(absl::string_view name) const {
  auto it = methods_.find(name);
  return it == methods_.end() ? nullptr : it->second.get();
}

std::vector<std::string> Service::method_names() const {
  std::vector<std::string> names;
  names.reserve(methods_.size());
  for (const auto& [name, handler] : methods_) names.push_back(name);
  std::sort(names.begin(), names.end());
  return names;
}

// The signature hands ownership to overrides; this default only reads it.
void MethodHandler::CallStream(
    std::shared_ptr<ServerStreamCore> stream) {  // NOLINT(performance-unnecessary-value-param)
  stream->Finish(absl::UnimplementedError(
      absl::StrCat(StreamKindName(stream_kind()), " calls are not implemented by this handler")));
}

}  // namespace nprpc
