// FunctionStreamHandler: a streaming MethodHandler whose body is a function
// of the stream (rpc/stream_core.h), over example.EchoRequest/EchoResponse,
// for tests and fuzz targets of the streaming protocols.
//
//   service.AddMethod("Chat", std::make_unique<FunctionStreamHandler>(
//       StreamKind::kBidiStreaming, MethodHandler::ExecutionMode::kIoLoop,
//       [](std::shared_ptr<ServerStreamCore> stream) { ... stream->Finish(...); }));
//
// Thread safety: the body runs where the execution mode says, concurrently
// for concurrent calls.
#ifndef RPC_INTERNAL_TESTING_FUNCTION_STREAM_HANDLER_H_
#define RPC_INTERNAL_TESTING_FUNCTION_STREAM_HANDLER_H_

#include <functional>
#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "proto/echo.pb.h"
#include "rpc/service.h"
#include "rpc/stream_core.h"

namespace nprpc::testing {

class FunctionStreamHandler final : public MethodHandler {
 public:
  using Body = std::function<void(std::shared_ptr<ServerStreamCore>)>;
  FunctionStreamHandler(StreamKind kind, ExecutionMode mode, Body body)
      : kind_(kind), mode_(mode), body_(std::move(body)) {}

  std::unique_ptr<google::protobuf::Message> NewRequest() const override {
    return std::make_unique<example::EchoRequest>();
  }
  std::unique_ptr<google::protobuf::Message> NewResponse() const override {
    return std::make_unique<example::EchoResponse>();
  }
  void Call(ServerContext&, const google::protobuf::Message&, google::protobuf::Message*,
            Responder done) override {
    done(absl::UnimplementedError("streaming"));
  }
  ExecutionMode execution_mode() const override { return mode_; }
  StreamKind stream_kind() const override { return kind_; }
  void CallStream(std::shared_ptr<ServerStreamCore> stream) override { body_(std::move(stream)); }

 private:
  const StreamKind kind_;
  const ExecutionMode mode_;
  const Body body_;
};

}  // namespace nprpc::testing

#endif  // RPC_INTERNAL_TESTING_FUNCTION_STREAM_HANDLER_H_
