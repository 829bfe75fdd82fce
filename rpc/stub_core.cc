#include "rpc/stub_core.h"

#include <utility>

#include "netpoll/logging.h"

namespace nprpc {
namespace codegen_internal {

StubCore::StubCore(Channel* channel, absl::string_view service, const StubOptions& options)
    : channel_(channel), service_(service), options_(options) {
  NP_CHECK(channel_ != nullptr) << "a stub of " << service << " needs a channel";
}

CallOptions StubCore::WithThreadContext(const CallOptions& options) const {
  const ServerContext* context = CurrentServerContext();
  if (!options_.propagate_context || !options.propagate_context || context == nullptr) {
    return options;
  }
  return PropagateContext(*context, options);
}

absl::Status StubCore::Call(absl::string_view method, const google::protobuf::Message& request,
                            google::protobuf::Message* response, const CallOptions& options) const {
  return channel_->CallMethod(service_, method, request, response, WithThreadContext(options));
}

void StubCore::Call(absl::string_view method, const google::protobuf::Message& request,
                    google::protobuf::Message* response, const CallOptions& options,
                    Channel::DoneCallback done) const {
  channel_->CallMethod(service_, method, request, response, WithThreadContext(options),
                       std::move(done));
}

std::shared_ptr<ClientStreamCore> StubCore::NewStream(absl::string_view method,
                                                      const CallOptions& options) const {
  return channel_->NewStream(service_, method, WithThreadContext(options));
}

std::shared_ptr<ClientStreamCore> StubCore::NewStreamWithContext(absl::string_view method,
                                                                 const ServerContext* context,
                                                                 CallOptions options) const {
  if (options_.propagate_context && options.propagate_context && context != nullptr) {
    options = PropagateContext(*context, std::move(options));
  }
  return channel_->NewStream(service_, method, options);
}

void StubCore::ReactorCall(absl::string_view method, stream_internal::ClientReactorBase* reactor,
                           const google::protobuf::Message* request,
                           google::protobuf::Message* response, const CallOptions& options) const {
  NP_CHECK(reactor != nullptr) << "a streaming call of " << service_ << "." << method
                               << " needs a reactor";
  stream_internal::ClientReactorDriver::Start(NewStream(method, options), reactor, request,
                                              response);
}

}  // namespace codegen_internal
}  // namespace nprpc
