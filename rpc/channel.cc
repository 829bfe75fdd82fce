#include "rpc/channel.h"

#include <algorithm>
#include <atomic>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "netpoll/dialer.h"
#include "netpoll/logging.h"
#include "netpoll/mutex.h"
#include "rpc/errors.h"
#include "rpc/internal/client_call.h"
#include "rpc/internal/frame_codec.h"
#include "rpc/internal/load_balancer.h"
#include "rpc/internal/pooled_transport.h"
#include "rpc/internal/single_connection_transport.h"

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

class CallController;

// The shared state of a channel: endpoints, load balancer, retry budget and
// the calls in flight. Timers and naming watchers hold weak_ptrs to it.
class ChannelCore : public std::enable_shared_from_this<ChannelCore> {
 public:
  ChannelCore(const ChannelOptions& options, std::unique_ptr<LoadBalancer> lb,
              std::unique_ptr<netpoll::ConnectionPool> pool)
      : options_(options),
        loops_(options.loops ? options.loops : DefaultClientLoops()),
        timer_loop_(loops_->Next()),
        lb_(std::move(lb)),
        pool_(std::move(pool)),
        budget_(options.retry) {}

  void Watch(std::shared_ptr<NamingService> naming) {
    naming_ = std::move(naming);
    std::weak_ptr<ChannelCore> weak = weak_from_this();
    naming_->Watch([weak](const std::vector<ServerNode>& nodes) {
      if (auto self = weak.lock()) self->OnNodes(nodes);
    });
  }

  void OnNodes(const std::vector<ServerNode>& nodes) {
    std::vector<EndpointPtr> list;
    {
      netpoll::MutexLock lock(&mu_);
      if (shut_down_) return;
      absl::flat_hash_map<std::string, EndpointPtr> next;
      for (const ServerNode& node : nodes) {
        auto it = endpoints_.find(node.address);
        if (it != endpoints_.end() && it->second->node.weight == node.weight) {
          next[node.address] = it->second;
          endpoints_.erase(it);
        } else if (!next.contains(node.address)) {
          next[node.address] = std::make_shared<Endpoint>(node, MakeTransport(node.address));
        }
      }
      // What is left was removed: it drains (in-flight attempts finish) and
      // is shut down once idle.
      for (auto& [address, endpoint] : endpoints_) draining_.push_back(endpoint);
      endpoints_ = std::move(next);
      for (auto& [address, endpoint] : endpoints_) list.push_back(endpoint);
    }
    std::sort(list.begin(), list.end(), [](const EndpointPtr& a, const EndpointPtr& b) {
      return a->node.address < b->node.address;
    });
    lb_->Update(std::move(list));
    ReapDrained();
  }

  std::shared_ptr<Transport> MakeTransport(const std::string& address) {
    if (options_.connection_type == ConnectionType::kSingle) {
      TransportOptions transport_options;
      transport_options.connect_timeout = options_.connect_timeout;
      transport_options.reconnect_backoff = options_.reconnect_backoff;
      transport_options.max_reconnect_backoff = options_.max_reconnect_backoff;
      transport_options.max_body_size = options_.max_body_size;
      return SingleConnectionTransport::Create(address, loops_->Next(), transport_options);
    }
    return PooledTransport::Create(address, pool_.get());
  }

  // Shuts down removed endpoints whose attempts have all finished.
  void ReapDrained() {
    std::vector<EndpointPtr> idle;
    {
      netpoll::MutexLock lock(&mu_);
      auto keep = std::partition(draining_.begin(), draining_.end(),
                                 [](const EndpointPtr& e) { return e->outstanding.load() > 0; });
      idle.assign(keep, draining_.end());
      draining_.erase(keep, draining_.end());
      if (!draining_.empty() && !reap_scheduled_) {
        reap_scheduled_ = true;
        std::weak_ptr<ChannelCore> weak = weak_from_this();
        timer_loop_->RunAfter(absl::Milliseconds(50), [weak] {
          if (auto self = weak.lock()) {
            {
              netpoll::MutexLock lock(&self->mu_);
              self->reap_scheduled_ = false;
            }
            self->ReapDrained();
          }
        });
      }
    }
    for (auto& endpoint : idle) endpoint->transport->Shutdown();
  }

  // A connection-level failure takes the endpoint out until a probe connects.
  void ReportConnectionFailure(const EndpointPtr& endpoint) {
    if (!endpoint->healthy_flag.exchange(false)) return;  // a probe is already on
    NP_LOG(INFO) << "endpoint " << endpoint->node.address << " unhealthy; probing";
    ScheduleProbe(endpoint, options_.health_check_interval);
  }

  void ScheduleProbe(const EndpointPtr& endpoint, absl::Duration delay) {
    std::weak_ptr<ChannelCore> weak = weak_from_this();
    std::weak_ptr<Endpoint> weak_endpoint = endpoint;
    timer_loop_->RunAfter(delay, [weak, weak_endpoint, delay] {
      auto self = weak.lock();
      auto endpoint = weak_endpoint.lock();
      if (!self || !endpoint || !self->IsMember(endpoint)) return;
      netpoll::DialOptions dial;
      dial.timeout = self->options_.connect_timeout;
      netpoll::Dialer::Dial(
          self->loops_->Next(), endpoint->node.address, dial,
          [weak, weak_endpoint, delay](absl::StatusOr<netpoll::ConnectionPtr> conn) {
            auto self = weak.lock();
            auto endpoint = weak_endpoint.lock();
            if (conn.ok()) (*conn)->Close();
            if (!self || !endpoint) return;
            if (conn.ok()) {
              NP_LOG(INFO) << "endpoint " << endpoint->node.address << " is back";
              endpoint->healthy_flag.store(true);
            } else {
              self->ScheduleProbe(endpoint,
                                  std::min(delay * 2, self->options_.max_health_check_interval));
            }
          });
    });
  }

  bool IsMember(const EndpointPtr& endpoint) {
    netpoll::MutexLock lock(&mu_);
    auto it = endpoints_.find(endpoint->node.address);
    return it != endpoints_.end() && it->second == endpoint;
  }

  // Registers a call; false after shutdown.
  bool Register(const std::shared_ptr<CallController>& call) {
    netpoll::MutexLock lock(&mu_);
    if (shut_down_) return false;
    calls_.insert(call);
    return true;
  }
  void Unregister(const std::shared_ptr<CallController>& call) {
    netpoll::MutexLock lock(&mu_);
    calls_.erase(call);
    if (calls_.empty()) idle_.SignalAll();
  }

  void Shutdown();

  size_t in_flight() {
    netpoll::MutexLock lock(&mu_);
    return calls_.size();
  }

  const ChannelOptions options_;
  netpoll::EventLoopGroup* const loops_;  // not owned
  netpoll::EventLoop* const timer_loop_;  // deadlines, retries, probes
  const std::unique_ptr<LoadBalancer> lb_;
  // Pooled and short only. Destroyed by the Channel after Shutdown(), on the
  // user's thread (the core itself may die later, on a loop thread).
  std::unique_ptr<netpoll::ConnectionPool> pool_;
  RetryBudget budget_;
  std::atomic<int64_t> attempts_{0};

 private:
  std::shared_ptr<NamingService> naming_;
  netpoll::Mutex mu_;
  netpoll::CondVar idle_;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  bool reap_scheduled_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_map<std::string, EndpointPtr> endpoints_ ABSL_GUARDED_BY(mu_);
  std::vector<EndpointPtr> draining_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::shared_ptr<CallController>> calls_ ABSL_GUARDED_BY(mu_);
};

// One logical call: its deadline, cancellation, attempts, retries and backup
// request. Completes exactly once (Finish), whoever gets there first.
class CallController : public std::enable_shared_from_this<CallController> {
 public:
  CallController(std::shared_ptr<ChannelCore> core, RequestHeader header,
                 netpoll::LinkBuffer payload, netpoll::LinkBuffer attachment,
                 google::protobuf::Message* response, const CallOptions& options,
                 absl::Time deadline, Channel::DoneCallback done)
      : core_(std::move(core)),
        header_(std::move(header)),
        payload_(std::move(payload)),
        attachment_(std::move(attachment)),
        response_(response),
        info_(options.info),
        deadline_(deadline),
        hash_key_(options.hash_key),
        idempotent_(options.idempotent),
        max_retries_(options.max_retries.value_or(core_->options_.retry.max_retries)),
        backup_delay_(options.backup_request_delay.value_or(core_->options_.backup_request_delay)),
        cancel_(options.cancel),
        done_(std::move(done)) {}

  void Start() {
    auto self = shared_from_this();
    if (!core_->Register(self)) {
      Finish(absl::CancelledError("channel is shut down"), nullptr);
      return;
    }
    core_->budget_.OnCall();
    std::weak_ptr<CallController> weak = self;
    if (deadline_ != absl::InfiniteFuture()) {
      deadline_timer_ = core_->timer_loop_->RunAfter(deadline_ - absl::Now(), [weak] {
        if (auto call = weak.lock()) {
          call->Finish(MakeRpcError(ERPCTIMEDOUT, "deadline exceeded before the response"),
                       nullptr);
        }
      });
    }
    if (cancel_.has_value()) {
      cancel_registration_ = cancel_->Register([weak] {
        if (auto call = weak.lock()) call->Finish(absl::CancelledError("call cancelled"), nullptr);
      });
    }
    StartAttempt();
    if (backup_delay_ != absl::InfiniteDuration() && deadline_ - absl::Now() > backup_delay_) {
      backup_timer_ = core_->timer_loop_->RunAfter(backup_delay_, [weak] {
        if (auto call = weak.lock()) call->MaybeStartBackup();
      });
    }
  }

  // Cancels a call still running (channel shutdown).
  void Cancel(absl::Status status) { Finish(std::move(status), nullptr); }

 private:
  struct Attempt {
    ClientCallPtr call;
    EndpointPtr endpoint;
    // Used when attempts may overlap (backup requests): each parses into
    // its own message and the winner's is swapped into the caller's.
    std::unique_ptr<google::protobuf::Message> private_response;
    std::unique_ptr<CallInfo> private_info;
    absl::Time start;
    bool done = false;
  };

  bool hedging() const { return backup_delay_ != absl::InfiniteDuration(); }

  void StartAttempt() {
    absl::Time attempt_start = absl::Now();
    std::vector<const Endpoint*> tried;
    {
      netpoll::MutexLock lock(&mu_);
      if (finished_) return;
      for (const auto& attempt : attempts_) tried.push_back(attempt->endpoint.get());
    }
    EndpointPtr endpoint = core_->lb_->Select(hash_key_, tried);
    if (!endpoint) {
      Finish(MakeRpcError(EFAILEDSOCKET, "no server available (empty server list)"), nullptr);
      return;
    }
    auto attempt = std::make_shared<Attempt>();
    attempt->endpoint = endpoint;
    attempt->start = attempt_start;
    google::protobuf::Message* target = response_;
    CallInfo* info = info_;
    if (hedging()) {
      attempt->private_response.reset(response_->New());
      target = attempt->private_response.get();
      if (info_ != nullptr) {
        attempt->private_info = std::make_unique<CallInfo>();
        info = attempt->private_info.get();
      }
    } else {
      response_->Clear();  // a retry must not merge into a failed attempt's fields
    }
    RequestHeader header = header_;
    header.correlation_id = g_next_correlation_id.fetch_add(1, std::memory_order_relaxed);
    if (deadline_ != absl::InfiniteFuture()) {
      int64_t ms =
          absl::ToInt64Milliseconds(absl::Ceil(deadline_ - absl::Now(), absl::Milliseconds(1)));
      header.timeout_ms = static_cast<int32_t>(std::clamp<int64_t>(ms, 1, INT32_MAX));
    }
    netpoll::LinkBuffer frame;
    absl::Status encoded = EncodeRequest(header, payload_.Clone(), attachment_.Clone(), frame);
    if (!encoded.ok()) {
      Finish(MakeRpcError(EREQUEST, absl::StrCat("cannot send request: ", encoded.message())),
             nullptr);
      return;
    }
    std::weak_ptr<CallController> weak = shared_from_this();
    attempt->call = std::make_shared<ClientCall>(
        header.correlation_id, target, info, [weak, attempt](absl::Status status) {
          if (auto call = weak.lock()) call->OnAttemptDone(attempt, std::move(status));
        });
    {
      netpoll::MutexLock lock(&mu_);
      if (finished_) return;
      attempts_.push_back(attempt);
    }
    endpoint->outstanding.fetch_add(1, std::memory_order_relaxed);
    core_->attempts_.fetch_add(1, std::memory_order_relaxed);
    endpoint->transport->Send(attempt->call, std::move(frame), deadline_);
  }

  void MaybeStartBackup() {
    {
      netpoll::MutexLock lock(&mu_);
      if (finished_ || attempts_.size() != 1 || attempts_[0]->done) return;
    }
    if (!core_->budget_.TrySpend()) return;
    StartAttempt();
  }

  void OnAttemptDone(const std::shared_ptr<Attempt>& attempt, absl::Status status) {
    attempt->endpoint->outstanding.fetch_sub(1, std::memory_order_relaxed);
    if (status.ok()) attempt->endpoint->RecordLatency(absl::Now() - attempt->start);
    const bool answered = attempt->call->answered_by_server();
    // Only our own connection failures say the endpoint is unreachable; an
    // EFAILEDSOCKET the server answered with is about its downstream.
    if (!answered && ErrorCodeOf(status) == EFAILEDSOCKET) {
      core_->ReportConnectionFailure(attempt->endpoint);
    }
    bool others_running = false;
    int retries = 0;
    {
      netpoll::MutexLock lock(&mu_);
      attempt->done = true;
      if (finished_) return;
      for (const auto& other : attempts_) others_running |= !other->done;
      retries = static_cast<int>(attempts_.size()) - 1;
    }
    if (status.ok() || !IsRetryable(status, answered, idempotent_, core_->options_.retry)) {
      Finish(std::move(status), attempt);
      return;
    }
    if (others_running) return;  // the backup (or the original) may still answer
    absl::Duration backoff = RetryBackoff(retries + 1, core_->options_.retry);
    if (retries >= max_retries_ || absl::Now() + backoff >= deadline_ ||
        !core_->budget_.TrySpend()) {
      Finish(std::move(status), attempt);
      return;
    }
    std::weak_ptr<CallController> weak = shared_from_this();
    netpoll::TimerId timer = core_->timer_loop_->RunAfter(backoff, [weak] {
      if (auto call = weak.lock()) call->StartAttempt();
    });
    netpoll::MutexLock lock(&mu_);
    retry_timer_ = timer;  // a Finish() before this line leaves it to fire as a no-op
  }

  // Completes the call once: `winner` (may be null) supplies the response.
  void Finish(absl::Status status, const std::shared_ptr<Attempt>& winner) {
    std::vector<std::shared_ptr<Attempt>> losers;
    netpoll::TimerId retry_timer;
    {
      netpoll::MutexLock lock(&mu_);
      if (finished_) return;
      finished_ = true;
      for (const auto& attempt : attempts_) {
        if (attempt != winner && !attempt->done) losers.push_back(attempt);
      }
      retry_timer = retry_timer_;
    }
    core_->timer_loop_->Cancel(deadline_timer_.load());
    core_->timer_loop_->Cancel(backup_timer_.load());
    core_->timer_loop_->Cancel(retry_timer);
    if (cancel_.has_value()) cancel_->Unregister(cancel_registration_.load());
    // Losers are abandoned before the winner's response is moved over, so no
    // attempt still writes into memory the caller is about to see.
    for (auto& loser : losers) {
      // A fresh Status per loser: sharing one rep across threads would hide
      // its refcount from TSan (Debian's Abseil is not instrumented).
      absl::Status loser_status = status.ok()
                                      ? absl::CancelledError("another attempt answered first")
                                      : absl::Status(status.code(), status.message());
      loser->endpoint->transport->Abandon(loser->call, std::move(loser_status));
    }
    if (winner && winner->private_response)
      response_->GetReflection()->Swap(response_, winner->private_response.get());
    if (winner && winner->private_info && info_ != nullptr)
      *info_ = std::move(*winner->private_info);
    if (info_ != nullptr && !winner) {
      info_->error_code = status.ok() ? 0 : ErrorCodeOf(status);
      info_->latency = absl::Now() - start_;
    }
    Channel::DoneCallback done = std::move(done_);
    auto self = shared_from_this();
    core_->Unregister(self);
    done(std::move(status));
  }

  const std::shared_ptr<ChannelCore> core_;
  const RequestHeader header_;
  const netpoll::LinkBuffer payload_;     // cloned (no copy) into each attempt
  const netpoll::LinkBuffer attachment_;  // likewise
  google::protobuf::Message* const response_;
  CallInfo* const info_;
  const absl::Time deadline_;
  const absl::Time start_ = absl::Now();
  const std::string hash_key_;
  const bool idempotent_;
  const int max_retries_;
  const absl::Duration backup_delay_;
  const std::optional<CancellationToken> cancel_;
  Channel::DoneCallback done_;  // taken by the one Finish()
  // Set in Start(), read by Finish() on whichever thread completes.
  std::atomic<netpoll::TimerId> deadline_timer_{netpoll::kInvalidTimerId};
  std::atomic<netpoll::TimerId> backup_timer_{netpoll::kInvalidTimerId};
  std::atomic<uint64_t> cancel_registration_{0};

  netpoll::Mutex mu_;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::shared_ptr<Attempt>> attempts_ ABSL_GUARDED_BY(mu_);
  netpoll::TimerId retry_timer_ ABSL_GUARDED_BY(mu_) = netpoll::kInvalidTimerId;
};

void ChannelCore::Shutdown() {
  std::vector<std::shared_ptr<CallController>> calls;
  std::vector<EndpointPtr> endpoints;
  {
    netpoll::MutexLock lock(&mu_);
    shut_down_ = true;
    calls.assign(calls_.begin(), calls_.end());
    for (auto& [address, endpoint] : endpoints_) endpoints.push_back(endpoint);
    for (auto& endpoint : draining_) endpoints.push_back(endpoint);
    endpoints_.clear();
    draining_.clear();
  }
  for (auto& call : calls) call->Cancel(absl::CancelledError("channel destroyed"));
  for (auto& endpoint : endpoints) endpoint->transport->Shutdown();
  netpoll::MutexLock lock(&mu_);
  while (!calls_.empty()) idle_.Wait(&mu_);
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
  std::unique_ptr<netpoll::ConnectionPool> pool;
  if (options.connection_type != ConnectionType::kSingle) {
    PooledTransportOptions pool_options;
    pool_options.short_connections = options.connection_type == ConnectionType::kShort;
    pool_options.connect_timeout = options.connect_timeout;
    pool_options.max_connections_per_endpoint = options.max_connections_per_endpoint;
    pool_options.max_idle_per_endpoint = options.max_idle_per_endpoint;
    pool_options.idle_timeout = options.idle_timeout;
    pool_options.max_body_size = options.max_body_size;
    auto made = PooledTransport::MakePool(options.loops ? options.loops : DefaultClientLoops(),
                                          pool_options);
    if (!made.ok()) return made.status();
    pool = std::move(*made);
  }
  auto core = std::make_shared<ChannelCore>(options, std::move(*lb), std::move(pool));
  core->Watch(std::move(naming));
  return std::unique_ptr<Channel>(new Channel(std::move(core)));
}

Channel::Channel(std::shared_ptr<ChannelCore> core) : core_(std::move(core)) {}

Channel::~Channel() {
  core_->Shutdown();
  core_->pool_.reset();  // here, not on whichever thread drops the core last
}

size_t Channel::in_flight() const { return core_->in_flight(); }

int64_t Channel::attempts() const { return core_->attempts_.load(std::memory_order_relaxed); }

void Channel::CallMethod(absl::string_view service, absl::string_view method,
                         const google::protobuf::Message& request,
                         google::protobuf::Message* response, const CallOptions& options,
                         DoneCallback done) {
  RequestHeader header;
  header.service_name = std::string(service);
  header.method_name = std::string(method);
  header.trace = options.trace;
  for (const auto& [key, value] : options.metadata) header.user_fields.push_back({key, value});
  header.compress_type = options.compress_type;
  header.checksum_type = options.checksum ? ChecksumType::kCrc32c : ChecksumType::kNone;

  netpoll::LinkBuffer payload;
  absl::Status serialized = SerializeToLinkBuffer(request, payload);
  if (!serialized.ok()) {
    done(MakeRpcError(EREQUEST, absl::StrCat("cannot send request: ", serialized.message())));
    return;
  }
  netpoll::LinkBuffer attachment;
  if (options.request_attachment != nullptr) attachment = std::move(*options.request_attachment);
  auto call = std::make_shared<CallController>(
      core_, std::move(header), std::move(payload), std::move(attachment), response, options,
      CallDeadline(options, core_->options_.timeout), std::move(done));
  call->Start();
}

absl::Status Channel::CallMethod(absl::string_view service, absl::string_view method,
                                 const google::protobuf::Message& request,
                                 google::protobuf::Message* response, const CallOptions& options) {
  for (int i = 0; i < core_->loops_->size(); ++i) {
    NP_CHECK(!core_->loops_->loop(i)->IsInLoopThread())
        << "sync CallMethod on one of the channel's loop threads would deadlock";
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
