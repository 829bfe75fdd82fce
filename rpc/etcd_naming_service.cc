#include "rpc/etcd_naming_service.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "netpoll/logging.h"
#include "proto/etcd/rpc.nprpc.h"
#include "rpc/channel.h"
#include "rpc/naming_services.h"

namespace nprpc {

absl::StatusOr<EtcdTarget> ParseEtcdTarget(absl::string_view target) {
  absl::ConsumePrefix(&target, "etcd://");
  const size_t slash = target.find('/');
  if (slash == absl::string_view::npos || slash == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("etcd target \"", target, "\" is not host:port[,host:port...]/prefix"));
  }
  EtcdTarget parsed;
  for (absl::string_view endpoint : absl::StrSplit(target.substr(0, slash), ',')) {
    if (endpoint.empty() || endpoint.find(':') == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("etcd endpoint \"", endpoint, "\" is not host:port"));
    }
    parsed.endpoints.emplace_back(endpoint);
  }
  parsed.prefix = std::string(target.substr(slash));
  if (parsed.prefix.size() < 2) {
    return absl::InvalidArgumentError("an etcd target needs a key prefix: etcd://host:port/prefix");
  }
  if (parsed.prefix.back() != '/') parsed.prefix.push_back('/');
  return parsed;
}

absl::StatusOr<std::unique_ptr<Channel>> NewEtcdChannel(const EtcdTarget& target,
                                                        const EtcdClientOptions& options) {
  ChannelOptions channel;
  channel.protocol = "grpc";
  channel.timeout = options.call_timeout;
  channel.connect_timeout = options.connect_timeout;
  // A member that vanishes without a word (a host cut off) is found by
  // its unanswered pings, also under a watch that has nothing to say.
  channel.keepalive_time = options.keepalive_time;
  channel.keepalive_timeout = options.keepalive_timeout;
  channel.tls = options.tls;
  std::string list = "list://";
  for (size_t i = 0; i < target.endpoints.size(); ++i) {
    absl::StrAppend(&list, i == 0 ? "" : ",", target.endpoints[i]);
  }
  return Channel::Create(list, channel);
}

std::string EtcdKeyOf(const EtcdTarget& target, absl::string_view address) {
  return absl::StrCat(target.prefix, address);
}

std::string EtcdRangeEnd(absl::string_view prefix) {
  std::string end(prefix);
  // The smallest key greater than every key with this prefix.
  while (!end.empty()) {
    auto last = static_cast<unsigned char>(end.back());
    if (last < 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key
}

absl::StatusOr<ServerNode> ParseEtcdValue(absl::string_view value) {
  absl::StatusOr<std::vector<ServerNode>> nodes =
      ParseServerList(absl::StrCat("list://", absl::StripAsciiWhitespace(value)));
  if (!nodes.ok()) return nodes.status();
  if (nodes->size() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("etcd value \"", value, "\" names ", nodes->size(), " endpoints, not one"));
  }
  return (*nodes)[0];
}

absl::StatusOr<std::shared_ptr<EtcdNamingService>> EtcdNamingService::Create(
    absl::string_view target, const EtcdClientOptions& options) {
  absl::StatusOr<EtcdTarget> parsed = ParseEtcdTarget(target);
  if (!parsed.ok()) return parsed.status();
  absl::StatusOr<std::unique_ptr<Channel>> channel = NewEtcdChannel(*parsed, options);
  if (!channel.ok()) return channel.status();
  std::shared_ptr<EtcdNamingService> service(
      new EtcdNamingService(*std::move(parsed), options, *std::move(channel)));
  service->thread_ = std::thread([raw = service.get()] { raw->Run(); });
  return service;
}

EtcdNamingService::EtcdNamingService(EtcdTarget target, const EtcdClientOptions& options,
                                     std::unique_ptr<Channel> channel)
    : target_(std::move(target)), options_(options), channel_(std::move(channel)) {}

EtcdNamingService::~EtcdNamingService() {
  {
    netpoll::MutexLock lock(&mu_);
    stopping_ = true;
    if (cancel_stream_) cancel_stream_();
    cv_.SignalAll();
  }
  if (thread_.joinable()) thread_.join();
}

std::vector<ServerNode> EtcdNamingService::Nodes() const {
  netpoll::MutexLock lock(&mu_);
  return nodes_;
}

void EtcdNamingService::Watch(Watcher watcher) {
  std::vector<ServerNode> now;
  bool have;
  {
    netpoll::MutexLock lock(&mu_);
    watchers_.push_back(watcher);
    now = nodes_;
    have = have_list_;
  }
  if (have) watcher(now);
}

EtcdNamingService::Stats EtcdNamingService::stats() const {
  netpoll::MutexLock lock(&mu_);
  return stats_;
}

bool EtcdNamingService::Backoff(absl::Duration& d) {
  netpoll::MutexLock lock(&mu_);
  ++stats_.failures;
  stats_.connected = false;
  if (!stopping_) cv_.WaitWithTimeout(&mu_, d);
  d = std::min(d * 2, options_.max_retry_backoff);
  return !stopping_;
}

void EtcdNamingService::Run() {
  absl::Duration backoff = options_.retry_backoff;
  int64_t revision = 0;
  bool need_full_read = true;
  while (true) {
    {
      netpoll::MutexLock lock(&mu_);
      if (stopping_) return;
    }
    if (need_full_read) {
      absl::StatusOr<int64_t> read = ReadAll();
      if (!read.ok()) {
        NP_LOG(WARNING) << "etcd " << target_.prefix
                        << ": read failed (keeping the last list): " << read.status();
        if (!Backoff(backoff)) return;
        continue;
      }
      revision = *read;
      need_full_read = false;
    }
    absl::Status followed = Follow(revision);
    if (followed.ok()) {
      need_full_read = true;  // compacted: the events in between are gone
      backoff = options_.retry_backoff;
      continue;
    }
    {
      netpoll::MutexLock lock(&mu_);
      if (stopping_) return;
    }
    NP_LOG(WARNING) << "etcd " << target_.prefix << ": watch broke at revision " << revision
                    << ", resuming after it: " << followed;
    if (!Backoff(backoff)) return;
  }
}

absl::StatusOr<int64_t> EtcdNamingService::ReadAll() {
  etcdserverpb::KV::Stub kv(channel_.get());
  etcdserverpb::RangeRequest request;
  request.set_key(target_.prefix);
  request.set_range_end(EtcdRangeEnd(target_.prefix));
  absl::StatusOr<etcdserverpb::RangeResponse> response = kv.Range(request);
  if (!response.ok()) return response.status();
  std::vector<ServerNode> nodes;
  for (const mvccpb::KeyValue& kv_pair : response->kvs()) {
    absl::StatusOr<ServerNode> node = ParseEtcdValue(kv_pair.value());
    if (!node.ok()) {
      NP_LOG(WARNING) << "etcd key " << kv_pair.key() << " skipped: " << node.status();
      continue;
    }
    nodes.push_back(*std::move(node));
  }
  bool changed;
  {
    netpoll::MutexLock lock(&mu_);
    changed = !have_list_ || nodes != nodes_;
    nodes_ = std::move(nodes);
    have_list_ = true;
    stats_.revision = response->header().revision();
    ++stats_.full_reads;
  }
  Publish(changed);
  return response->header().revision();
}

absl::Status EtcdNamingService::Follow(int64_t& revision) {
  etcdserverpb::Watch::Stub watch(channel_.get());
  CallOptions call;
  call.timeout = absl::InfiniteDuration();  // a watch lives until it breaks
  std::unique_ptr<ClientReaderWriter<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>>
      stream = watch.Watch(call);
  {
    netpoll::MutexLock lock(&mu_);
    if (stopping_) {
      stream->Cancel();
      return absl::CancelledError("stopping");
    }
    cancel_stream_ = [raw = stream.get()] { raw->Cancel(); };
    ++stats_.watch_starts;
  }
  auto forget_stream = [this] {
    netpoll::MutexLock lock(&mu_);
    cancel_stream_ = nullptr;
    stats_.connected = false;
  };
  etcdserverpb::WatchRequest create;
  create.mutable_create_request()->set_key(target_.prefix);
  create.mutable_create_request()->set_range_end(EtcdRangeEnd(target_.prefix));
  create.mutable_create_request()->set_start_revision(revision + 1);
  create.mutable_create_request()->set_progress_notify(true);
  if (!stream->Write(create)) {
    absl::Status status = stream->Finish();
    forget_stream();
    return status.ok() ? absl::UnavailableError("the watch stream closed") : status;
  }
  etcdserverpb::WatchResponse response;
  while (stream->Read(&response)) {
    if (response.compact_revision() > 0) {
      NP_LOG(WARNING) << "etcd " << target_.prefix << ": revision " << revision + 1
                      << " was compacted (now " << response.compact_revision()
                      << "); reading everything again";
      stream->Cancel();
      (void)stream->Finish();
      forget_stream();
      return absl::OkStatus();
    }
    if (response.created()) {
      netpoll::MutexLock lock(&mu_);
      stats_.connected = true;
    }
    if (response.canceled()) break;
    if (response.events_size() == 0) {
      // A progress notification: nothing changed up to its revision.
      revision = std::max(revision, response.header().revision());
      continue;
    }
    bool changed = false;
    {
      netpoll::MutexLock lock(&mu_);
      for (const mvccpb::Event& event : response.events()) {
        const std::string& key = event.kv().key();
        const absl::string_view address = absl::string_view(key).substr(target_.prefix.size());
        auto same = [&](const ServerNode& n) { return n.address == address; };
        auto it = std::find_if(nodes_.begin(), nodes_.end(), same);
        if (event.type() == mvccpb::Event::DELETE) {
          if (it != nodes_.end()) {
            nodes_.erase(it);
            changed = true;
          }
          continue;
        }
        absl::StatusOr<ServerNode> node = ParseEtcdValue(event.kv().value());
        if (!node.ok()) {
          NP_LOG(WARNING) << "etcd key " << key << " skipped: " << node.status();
          continue;
        }
        if (it == nodes_.end()) {
          nodes_.push_back(*std::move(node));
          changed = true;
        } else if (!(*it == *node)) {
          *it = *std::move(node);
          changed = true;
        }
        revision = std::max(revision, event.kv().mod_revision());
      }
      revision = std::max(revision, response.header().revision());
      stats_.revision = revision;
    }
    Publish(changed);
  }
  absl::Status status = stream->Finish();
  forget_stream();
  if (status.ok()) status = absl::UnavailableError("etcd ended the watch");
  return status;
}

void EtcdNamingService::Publish(bool changed) {
  if (!changed) return;
  std::vector<ServerNode> nodes;
  std::vector<Watcher> watchers;
  {
    netpoll::MutexLock lock(&mu_);
    nodes = nodes_;
    watchers = watchers_;
    ++stats_.updates;
  }
  for (const Watcher& watcher : watchers) watcher(nodes);
}

void RegisterEtcdNaming() {
  static const bool registered = [] {
    (void)RegisterNamingScheme(
        "etcd", [](absl::string_view rest) -> absl::StatusOr<std::shared_ptr<NamingService>> {
          absl::StatusOr<std::shared_ptr<EtcdNamingService>> service =
              EtcdNamingService::Create(rest);
          if (!service.ok()) return service.status();
          return std::shared_ptr<NamingService>(*std::move(service));
        });
    return true;
  }();
  (void)registered;
}

namespace {
// Linking this library (alwayslink) adds the scheme at start-up.
const bool kRegistered = (RegisterEtcdNaming(), true);
}  // namespace

}  // namespace nprpc
