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
#include "rpc/metrics.h"
#include "rpc/naming_services.h"
#include "rpc/trace_context.h"
#include "rpc/tracing.h"

namespace nprpc {
namespace {

// What a channel's call shows its interceptors, span (and metrics) when it
// completes. Made in CallMethod, used once by CallController::Finish.
class ChannelCallObserver final : public CallObserver {
 public:
  ChannelCallObserver(const ClientInterceptors* interceptors, size_t interceptors_ran,
                      std::string service, std::string method, absl::Time deadline,
                      std::vector<std::pair<std::string, std::string>> metadata,
                      const TraceContext& trace, std::shared_ptr<ActiveSpan> span,
                      size_t request_bytes)
      : interceptors_(interceptors),
        interceptors_ran_(interceptors_ran),
        service_(std::move(service)),
        method_(std::move(method)),
        deadline_(deadline),
        metadata_(std::move(metadata)),
        trace_(trace),
        span_(std::move(span)),
        request_bytes_(request_bytes) {}

  void OnCallDone(const absl::Status& status, const google::protobuf::Message& response,
                  absl::string_view remote) override {
    Report(status, status.ok() ? response.ByteSizeLong() : 0, remote);
  }
  // A streaming call's end (no response message to measure).
  void OnStreamDone(const absl::Status& status, absl::string_view remote) {
    Report(status, 0, remote);
  }

 private:
  void Report(const absl::Status& status, size_t response_bytes, absl::string_view remote) {
    const int32_t code = status.ok() ? 0 : ErrorCodeOf(status);
    if (span_ != nullptr) {
      span_->SetPeer(remote);
      span_->End(code, status.message(), request_bytes_, response_bytes);
    }
    if (interceptors_ran_ == 0) return;
    CallOutcome outcome{.status = status,
                        .latency = absl::Now() - start_,
                        .request_bytes = request_bytes_,
                        .response_bytes = response_bytes};
    ClientCallView view{.service = service_,
                        .method = method_,
                        .deadline = deadline_,
                        .metadata = &metadata_,
                        .trace = &trace_};
    for (size_t i = interceptors_ran_; i > 0; --i) {
      (*interceptors_)[i - 1]->AfterCall(view, outcome);
    }
  }

  const absl::Time start_ = absl::Now();
  const ClientInterceptors* const interceptors_;  // the channel's; outlives its calls
  const size_t interceptors_ran_;
  const std::string service_, method_;
  const absl::Time deadline_;
  std::vector<std::pair<std::string, std::string>> metadata_;
  const TraceContext trace_;
  const std::shared_ptr<ActiveSpan> span_;
  const size_t request_bytes_;
};

// The trace a client call is sent with: the caller's (merged from the call
// being handled by generated stubs), or a new one when this call is the
// edge; a new span id under the caller's span.
TraceContext ClientTrace(TraceContext trace) {
  if (!StartTraceIfAbsent(trace) && !trace.sampled.has_value()) trace.sampled = SampleNewTrace();
  if (!trace.span_id) trace.span_id = NewTraceId();
  return trace;
}

}  // namespace

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
  NamingOptions naming_options;
  naming_options.dns.refresh_interval = options.dns_refresh_interval;
  absl::StatusOr<std::shared_ptr<NamingService>> naming =
      CreateNamingService(target, naming_options);
  if (!naming.ok()) return naming.status();
  return Create(std::move(*naming), options);
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
  protocol_options.authenticator = options.authenticator;
  protocol_options.max_receive_message_size = options.max_receive_message_size;
  protocol_options.keepalive_time = options.keepalive_time;
  protocol_options.keepalive_timeout = options.keepalive_timeout;
  protocol_options.tcp_keepalive = options.tcp_keepalive;
  protocol_options.tls = options.tls;
  if (options.tls != nullptr && options.tls->server_name().empty()) {
    // dns://name:port: the endpoints are IP addresses of `name`, the name
    // their certificates carry. (Endpoints that are host names themselves
    // are named by the dial, netpoll/dialer.h.)
    if (const std::string name = naming->server_name(); !name.empty()) {
      absl::StatusOr<std::shared_ptr<const netpoll::TlsContext>> named =
          options.tls->ForServerName(name);
      if (!named.ok()) return named.status();
      protocol_options.tls = *std::move(named);
    }
  }
  auto protocol = CreateClientProtocol(options.protocol, protocol_options);
  if (!protocol.ok()) return protocol.status();

  ChannelCoreOptions core_options;
  core_options.retry = options.retry;
  core_options.backup_request_delay = options.backup_request_delay;
  core_options.health_check_interval = options.health_check_interval;
  core_options.max_health_check_interval = options.max_health_check_interval;
  core_options.naming_wait = options.naming_wait;
  core_options.outlier = options.outlier;
  // Deadlines, retries, backups and probes of the channel share one loop.
  auto core = ChannelCore::Create(core_options, std::move(*lb), std::move(*protocol),
                                  std::make_unique<LoopClock>(loops->Next()));
  core->Watch(std::move(naming));
  return std::unique_ptr<Channel>(new Channel(std::move(core), loops, options.timeout,
                                              options.interceptors, options.method_metrics));
}

Channel::Channel(std::shared_ptr<ChannelCore> core, netpoll::EventLoopGroup* loops,
                 absl::Duration default_timeout, ClientInterceptors interceptors,
                 bool method_metrics)
    : core_(std::move(core)),
      loops_(loops),
      default_timeout_(default_timeout),
      interceptors_(std::move(interceptors)),
      method_metrics_(method_metrics) {}

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

OutlierStats Channel::outlier_stats() const { return core_->outlier_stats(); }

std::shared_ptr<ClientStreamCore> Channel::NewStream(absl::string_view service,
                                                     absl::string_view method,
                                                     const CallOptions& options) {
  netpoll::EventLoop* loop = loops_->Next();
  auto post = [loop](absl::AnyInvocable<void()> task) { loop->QueueInLoop(std::move(task)); };
  ClientRequest request;
  request.service = std::string(service);
  request.method = std::string(method);
  const TraceContext trace = ClientTrace(options.trace);
  request.trace = trace;
  request.metadata = options.metadata;
  request.compress_type = options.compress_type;
  const absl::Time deadline = CallDeadline(options, default_timeout_, core_->clock().Now());
  std::shared_ptr<ActiveSpan> span =
      *trace.sampled ? StartSpan(Span::Kind::kClient, trace, absl::StrCat(service, "/", method),
                                 core_->protocol().name(), "", absl::Now())
                     : nullptr;
  size_t ran = 0;
  absl::Status verdict;
  if (!interceptors_.empty()) {
    ClientCallView view{.service = service,
                        .method = method,
                        .deadline = deadline,
                        .metadata = &request.metadata,
                        .trace = &request.trace};
    while (ran < interceptors_.size()) {
      verdict = interceptors_[ran++]->BeforeCall(view);
      if (!verdict.ok()) break;
    }
  }
  // Shows the outcome to the span and the interceptors that ran, once.
  auto observer = std::make_shared<ChannelCallObserver>(
      &interceptors_, ran, request.service, request.method, deadline,
      ran > 0 ? request.metadata : std::vector<std::pair<std::string, std::string>>{}, trace,
      std::move(span), 0);
  if (!*trace.sampled) {
    request.trace.span_id.reset();
    request.trace.parent_span_id.reset();
  }
  if (!verdict.ok()) {
    observer->OnStreamDone(verdict, "");
    return MakeFailedClientStream(std::move(verdict), std::move(post));
  }
  EndpointPtr endpoint = core_->Select(options.hash_key, {});
  if (!endpoint) {
    absl::Status none = MakeRpcError(EFAILEDSOCKET, "no server available (empty server list)");
    observer->OnStreamDone(none, "");
    return MakeFailedClientStream(std::move(none), std::move(post));
  }
  ClientStreamStart start;  // the endpoint is acquired; on_end releases it
  start.deadline = deadline;
  start.timeout = deadline == absl::InfiniteFuture() ? absl::InfiniteDuration()
                                                     : deadline - core_->clock().Now();
  start.cancel = options.cancel;
  start.loop = loop;
  std::weak_ptr<Endpoint> weak_endpoint = endpoint;
  start.on_end = [observer, weak_endpoint](const absl::Status& status) {
    auto endpoint = weak_endpoint.lock();
    if (endpoint) endpoint->Release();
    observer->OnStreamDone(status, endpoint ? absl::string_view(endpoint->node.address) : "");
  };
  return endpoint->transport->NewStream(request, std::move(start));
}

void Channel::CallMethod(absl::string_view service, absl::string_view method,
                         const google::protobuf::Message& request,
                         google::protobuf::Message* response, const CallOptions& options,
                         DoneCallback done) {
  ClientRequest client_request;
  client_request.service = std::string(service);
  client_request.method = std::string(method);
  const TraceContext trace = ClientTrace(options.trace);
  client_request.trace = trace;
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
  const absl::Time deadline = CallDeadline(options, default_timeout_, core_->clock().Now());
  const size_t request_bytes = client_request.payload.Len() + client_request.attachment.Len();
  std::shared_ptr<ActiveSpan> span =
      *trace.sampled ? StartSpan(Span::Kind::kClient, trace, absl::StrCat(service, "/", method),
                                 core_->protocol().name(), "", absl::Now())
                     : nullptr;
  size_t ran = 0;
  if (!interceptors_.empty()) {
    ClientCallView view{.service = service,
                        .method = method,
                        .deadline = deadline,
                        .metadata = &client_request.metadata,
                        .trace = &client_request.trace};
    absl::Status verdict;
    while (ran < interceptors_.size()) {
      verdict = interceptors_[ran++]->BeforeCall(view);
      if (!verdict.ok()) break;
    }
    if (!verdict.ok()) {
      ChannelCallObserver observer(&interceptors_, ran, client_request.service,
                                   client_request.method, deadline, client_request.metadata, trace,
                                   std::move(span), request_bytes);
      observer.OnCallDone(verdict, *response, "");
      done(std::move(verdict));
      return;
    }
  }
  // What AfterCall shows (the metadata as the interceptors left it).
  std::vector<std::pair<std::string, std::string>> metadata_seen;
  if (ran > 0) metadata_seen = client_request.metadata;
  // Unsampled calls carry the trace id only (for logs); brpc's convention
  // makes span ids the mark of a traced call (rpc/tracing.h).
  if (!*trace.sampled) {
    client_request.trace.span_id.reset();
    client_request.trace.parent_span_id.reset();
  }
  auto call = std::make_shared<CallController>(core_, std::move(client_request), response, options,
                                               deadline, std::move(done));
  if (method_metrics_) {
    call->set_metrics(MetricsRegistry::Default().Method(MetricsSide::kClient, service, method));
  }
  if (ran > 0 || span != nullptr) {
    call->set_observer(std::make_unique<ChannelCallObserver>(
        &interceptors_, ran, std::string(service), std::string(method), deadline,
        ran > 0 ? metadata_seen : std::vector<std::pair<std::string, std::string>>{}, trace,
        std::move(span), request_bytes));
  }
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
