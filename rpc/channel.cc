#include "rpc/channel.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "netpoll/logging.h"
#include "netpoll/mutex.h"
#include "rpc/errors.h"
#include "rpc/internal/call_controller.h"
#include "rpc/internal/channel_core.h"
#include "rpc/internal/client_protocols.h"
#include "rpc/internal/clock.h"
#include "rpc/internal/frame_codec.h"
#include "rpc/internal/load_balancer.h"

namespace nprpc {

absl::StatusOr<ConnectionType> ParseConnectionType(absl::string_view name) {
  if (name == "single") return ConnectionType::kSingle;
  if (name == "pooled") return ConnectionType::kPooled;
  if (name == "short") return ConnectionType::kShort;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown connection type '", name, "' (single, pooled, short)"));
}

netpoll::EventLoopGroup* DefaultClientLoops() {
  static netpoll::EventLoopGroup* loops = [] {
    netpoll::EventLoopGroupOptions options;
    options.name = "nprpc-client";
    options.busy_poll = netpoll::kRequestResponseBusyPoll;
    auto group = netpoll::EventLoopGroup::Create(options);
    NP_CHECK(group.ok()) << "cannot start the client loops: " << group.status();
    return group->release();  // never destroyed: usable during exit
  }();
  return loops;
}

absl::StatusOr<std::unique_ptr<Channel>> Channel::Create(absl::string_view target,
                                                         const ChannelOptions& options) {
  absl::StatusOr<std::vector<ServerNode>> nodes = ParseServerList(target);
  if (!nodes.ok()) return nodes.status();
  return Create(std::make_shared<StaticNamingService>(std::move(*nodes)), options);
}

absl::StatusOr<std::unique_ptr<Channel>> Channel::Create(std::shared_ptr<NamingService> naming,
                                                         const ChannelOptions& options) {
  if (!naming) return absl::InvalidArgumentError("null naming service");
  auto lb = LoadBalancer::Create(options.load_balancer);
  if (!lb.ok()) return lb.status();
  netpoll::EventLoopGroup* loops = options.loops ? options.loops : DefaultClientLoops();

  ClientProtocolOptions protocol_options;
  switch (options.connection_type) {
    case ConnectionType::kSingle:
      protocol_options.connections = ClientProtocolOptions::Connections::kSingle;
      break;
    case ConnectionType::kPooled:
      protocol_options.connections = ClientProtocolOptions::Connections::kPooled;
      break;
    case ConnectionType::kShort:
      protocol_options.connections = ClientProtocolOptions::Connections::kShort;
      break;
  }
  protocol_options.loops = loops;
  protocol_options.connect_timeout = options.connect_timeout;
  protocol_options.reconnect_backoff = options.reconnect_backoff;
  protocol_options.max_reconnect_backoff = options.max_reconnect_backoff;
  protocol_options.max_connections_per_endpoint = options.max_connections_per_endpoint;
  protocol_options.max_idle_per_endpoint = options.max_idle_per_endpoint;
  protocol_options.idle_timeout = options.idle_timeout;
  protocol_options.max_body_size = options.max_body_size;
  protocol_options.max_unwritten_bytes = options.max_unwritten_bytes;
  protocol_options.write_timeout = options.write_timeout;
  auto protocol = CreateClientProtocol(options.protocol, protocol_options);
  if (!protocol.ok()) return protocol.status();

  ChannelCoreOptions core_options;
  core_options.retry = options.retry;
  core_options.backup_request_delay = options.backup_request_delay;
  core_options.health_check_interval = options.health_check_interval;
  core_options.max_health_check_interval = options.max_health_check_interval;
  // Deadlines, retries, backups and probes of the channel share one loop.
  auto core = ChannelCore::Create(core_options, std::move(*lb), std::move(*protocol),
                                  std::make_unique<LoopClock>(loops->Next()));
  core->Watch(std::move(naming));
  return std::unique_ptr<Channel>(new Channel(std::move(core), loops, options.timeout));
}

Channel::Channel(std::shared_ptr<ChannelCore> core, netpoll::EventLoopGroup* loops,
                 absl::Duration default_timeout)
    : core_(std::move(core)), loops_(loops), default_timeout_(default_timeout) {}

Channel::~Channel() {
  NP_CHECK(!OnLoopThread())
      << "a Channel must not be destroyed on one of its loop threads (e.g. inside a `done` "
         "callback of its calls): the destructor waits for the calls and connections that "
         "those threads complete and could deadlock. Destroy it from another thread "
         "(see rpc/channel.h, Thread safety).";
  core_->Shutdown();
}

bool Channel::OnLoopThread() const {
  for (int i = 0; i < loops_->size(); ++i) {
    if (loops_->loop(i)->IsInLoopThread()) return true;
  }
  return false;
}

size_t Channel::in_flight() const { return core_->in_flight(); }

int64_t Channel::attempts() const { return core_->attempts(); }

void Channel::CallMethod(absl::string_view service, absl::string_view method,
                         const google::protobuf::Message& request,
                         google::protobuf::Message* response, const CallOptions& options,
                         DoneCallback done) {
  ClientRequest client_request;
  client_request.service = std::string(service);
  client_request.method = std::string(method);
  client_request.trace = options.trace;
  client_request.metadata = options.metadata;
  client_request.compress_type = options.compress_type;
  client_request.checksum = options.checksum;
  absl::Status serialized = SerializeToLinkBuffer(request, client_request.payload);
  if (!serialized.ok()) {
    done(MakeRpcError(EREQUEST, absl::StrCat("cannot send request: ", serialized.message())));
    return;
  }
  if (options.request_attachment != nullptr) {
    client_request.attachment = std::move(*options.request_attachment);
  }
  auto call = std::make_shared<CallController>(
      core_, std::move(client_request), response, options,
      CallDeadline(options, default_timeout_, core_->clock().Now()), std::move(done));
  call->Start();
}

absl::Status Channel::CallMethod(absl::string_view service, absl::string_view method,
                                 const google::protobuf::Message& request,
                                 google::protobuf::Message* response, const CallOptions& options) {
  if (OnLoopThread()) {
    return absl::FailedPreconditionError(
        absl::StrCat("blocking call to ", service, ".", method,
                     " on one of the channel's loop threads (e.g. inside a `done` callback or a "
                     "coroutine resumed by a call) would deadlock; use the callback or "
                     "awaitable form there"));
  }
  netpoll::Notification done;
  absl::Status result;
  CallMethod(service, method, request, response, options, [&](absl::Status status) {
    result = std::move(status);
    done.Notify();
  });
  done.WaitForNotification();
  return result;
}

}  // namespace nprpc
