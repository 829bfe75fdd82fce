#include "rpc/channel.h"

#include <atomic>
#include <utility>

#include "absl/strings/str_cat.h"
#include "netpoll/logging.h"
#include "netpoll/mutex.h"
#include "rpc/client_call.h"
#include "rpc/errors.h"
#include "rpc/frame_codec.h"
#include "rpc/single_connection_transport.h"

namespace nprpc {
namespace {

std::atomic<int64_t> g_next_correlation_id{1};

absl::Time CallDeadline(const CallOptions& options, absl::Duration default_timeout) {
  absl::Time now = absl::Now();
  absl::Time deadline = options.deadline;
  if (options.timeout != absl::InfiniteDuration()) {
    deadline = std::min(deadline, now + options.timeout);
  }
  if (deadline == absl::InfiniteFuture() && default_timeout != absl::InfiniteDuration()) {
    deadline = now + default_timeout;
  }
  return deadline;
}

}  // namespace

netpoll::EventLoopGroup* DefaultClientLoops() {
  static netpoll::EventLoopGroup* loops = [] {
    netpoll::EventLoopGroupOptions options;
    options.name = "nprpc-client";
    auto group = netpoll::EventLoopGroup::Create(options);
    NP_CHECK(group.ok()) << "cannot start the client loops: " << group.status();
    return group->release();  // never destroyed: usable during exit
  }();
  return loops;
}

absl::StatusOr<std::unique_ptr<Channel>> Channel::Create(absl::string_view address,
                                                         const ChannelOptions& options) {
  if (address.empty()) return absl::InvalidArgumentError("empty server address");
  if (address.find(':') == absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("server address '", address, "' has no port (host:port or unix:/path)"));
  }
  netpoll::EventLoopGroup* loops = options.loops ? options.loops : DefaultClientLoops();
  TransportOptions transport_options;
  transport_options.connect_timeout = options.connect_timeout;
  transport_options.reconnect_backoff = options.reconnect_backoff;
  transport_options.max_reconnect_backoff = options.max_reconnect_backoff;
  transport_options.max_body_size = options.max_body_size;
  auto transport =
      SingleConnectionTransport::Create(std::string(address), loops->Next(), transport_options);
  return std::unique_ptr<Channel>(new Channel(std::string(address), options, std::move(transport)));
}

Channel::Channel(std::string address, const ChannelOptions& options,
                 std::shared_ptr<SingleConnectionTransport> transport)
    : address_(std::move(address)), options_(options), transport_(std::move(transport)) {}

Channel::~Channel() { transport_->Shutdown(); }

size_t Channel::in_flight() const { return transport_->in_flight(); }

void Channel::CallMethod(absl::string_view service, absl::string_view method,
                         const google::protobuf::Message& request,
                         google::protobuf::Message* response, const CallOptions& options,
                         DoneCallback done) {
  absl::Time deadline = CallDeadline(options, options_.timeout);
  const int64_t id = g_next_correlation_id.fetch_add(1, std::memory_order_relaxed);
  auto call = std::make_shared<ClientCall>(id, deadline, response, options.info, std::move(done));
  call->cancel = options.cancel;

  RequestHeader header;
  header.service_name = std::string(service);
  header.method_name = std::string(method);
  header.correlation_id = id;
  header.log_id = options.log_id;
  header.trace_id = options.trace_id;
  header.span_id = options.span_id;
  header.parent_span_id = options.parent_span_id;
  header.request_id = options.request_id;
  if (deadline != absl::InfiniteFuture()) {
    int64_t ms =
        absl::ToInt64Milliseconds(absl::Ceil(deadline - absl::Now(), absl::Milliseconds(1)));
    header.timeout_ms = static_cast<int32_t>(std::clamp<int64_t>(ms, 1, INT32_MAX));
  }
  for (const auto& [key, value] : options.metadata) header.user_fields.push_back({key, value});
  header.compress_type = options.compress_type;
  header.checksum_type = options.checksum ? ChecksumType::kCrc32c : ChecksumType::kNone;

  netpoll::LinkBuffer payload;
  absl::Status status = SerializeToLinkBuffer(request, payload);
  netpoll::LinkBuffer attachment;
  if (options.request_attachment != nullptr) attachment = std::move(*options.request_attachment);
  netpoll::LinkBuffer frame;
  if (status.ok()) {
    status = EncodeRequest(header, std::move(payload), std::move(attachment), frame);
  }
  if (!status.ok()) {
    // Bad request (e.g. a required field unset): complete on the loop thread
    // like every other completion.
    transport_->loop()->RunInLoop([call, status] {
      call->Complete(
          MakeRpcError(EREQUEST, absl::StrCat("cannot send request: ", status.message())));
    });
    return;
  }
  transport_->Send(std::move(call), std::move(frame));
}

absl::Status Channel::CallMethod(absl::string_view service, absl::string_view method,
                                 const google::protobuf::Message& request,
                                 google::protobuf::Message* response, const CallOptions& options) {
  NP_CHECK(!transport_->loop()->IsInLoopThread())
      << "sync CallMethod on the channel's loop thread would deadlock";
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
