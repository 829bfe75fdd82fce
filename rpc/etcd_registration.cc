#include "rpc/etcd_registration.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "netpoll/logging.h"
#include "proto/etcd/rpc.nprpc.h"
#include "rpc/channel.h"

namespace nprpc {

absl::StatusOr<std::unique_ptr<EtcdRegistration>> EtcdRegistration::Start(
    absl::string_view target, absl::string_view address, const EtcdRegistrationOptions& options) {
  absl::StatusOr<EtcdTarget> parsed = ParseEtcdTarget(target);
  if (!parsed.ok()) return parsed.status();
  if (options.ttl < absl::Seconds(1)) {
    return absl::InvalidArgumentError("an etcd lease lives at least 1 s");
  }
  if (absl::StatusOr<ServerNode> node = ParseEtcdValue(address); !node.ok()) {
    return node.status();
  }
  absl::StatusOr<std::unique_ptr<Channel>> channel = NewEtcdChannel(*parsed, options.etcd);
  if (!channel.ok()) return channel.status();
  std::unique_ptr<EtcdRegistration> registration(
      new EtcdRegistration(*std::move(parsed), std::string(address), options, *std::move(channel)));
  if (absl::Status s = registration->Put(); !s.ok()) return s;
  registration->thread_ = std::thread([raw = registration.get()] { raw->KeepAlive(); });
  return registration;
}

EtcdRegistration::EtcdRegistration(EtcdTarget target, std::string address,
                                   const EtcdRegistrationOptions& options,
                                   std::unique_ptr<Channel> channel)
    : target_(std::move(target)),
      address_(std::move(address)),
      key_(EtcdKeyOf(target_, address_)),
      options_(options),
      channel_(std::move(channel)) {}

EtcdRegistration::~EtcdRegistration() { (void)Deregister(); }

int64_t EtcdRegistration::lease_id() const {
  netpoll::MutexLock lock(&mu_);
  return lease_;
}

int64_t EtcdRegistration::keepalives() const {
  netpoll::MutexLock lock(&mu_);
  return keepalives_;
}

int64_t EtcdRegistration::leases_granted() const {
  netpoll::MutexLock lock(&mu_);
  return leases_granted_;
}

absl::Status EtcdRegistration::Put() {
  etcdserverpb::Lease::Stub lease(channel_.get());
  etcdserverpb::LeaseGrantRequest grant;
  grant.set_ttl(absl::ToInt64Seconds(options_.ttl));
  absl::StatusOr<etcdserverpb::LeaseGrantResponse> granted = lease.LeaseGrant(grant);
  if (!granted.ok()) return granted.status();
  if (!granted->error().empty()) {
    return absl::UnavailableError(absl::StrCat("etcd refused a lease: ", granted->error()));
  }
  etcdserverpb::KV::Stub kv(channel_.get());
  etcdserverpb::PutRequest put;
  put.set_key(key_);
  put.set_value(options_.weight == 1 ? address_ : absl::StrCat(address_, " w=", options_.weight));
  put.set_lease(granted->id());
  absl::StatusOr<etcdserverpb::PutResponse> stored = kv.Put(put);
  if (!stored.ok()) return stored.status();
  netpoll::MutexLock lock(&mu_);
  lease_ = granted->id();
  ++leases_granted_;
  return absl::OkStatus();
}

void EtcdRegistration::KeepAlive() {
  absl::Duration backoff = options_.etcd.retry_backoff;
  while (true) {
    int64_t lease;
    {
      netpoll::MutexLock lock(&mu_);
      if (stopping_) return;
      lease = lease_;
    }
    absl::Status status = lease == 0 ? Put() : KeepAliveStream(lease);
    if (status.ok()) {
      backoff = options_.etcd.retry_backoff;
      continue;
    }
    netpoll::MutexLock lock(&mu_);
    if (stopping_) return;
    NP_LOG(WARNING) << "etcd registration " << key_ << ": " << status << "; retrying";
    cv_.WaitWithTimeout(&mu_, backoff);
    backoff = std::min(backoff * 2, options_.etcd.max_retry_backoff);
  }
}

absl::Status EtcdRegistration::KeepAliveStream(int64_t lease) {
  etcdserverpb::Lease::Stub stub(channel_.get());
  CallOptions call;
  call.timeout = absl::InfiniteDuration();
  std::unique_ptr<
      ClientReaderWriter<etcdserverpb::LeaseKeepAliveRequest, etcdserverpb::LeaseKeepAliveResponse>>
      stream = stub.LeaseKeepAlive(call);
  {
    netpoll::MutexLock lock(&mu_);
    if (stopping_) {
      stream->Cancel();
      return absl::CancelledError("stopping");
    }
    cancel_stream_ = [raw = stream.get()] { raw->Cancel(); };
  }
  // Renew three times per TTL, so one lost round trip never lets it lapse.
  const absl::Duration every = std::max(options_.ttl / 3, absl::Milliseconds(100));
  etcdserverpb::LeaseKeepAliveRequest request;
  request.set_id(lease);
  etcdserverpb::LeaseKeepAliveResponse response;
  absl::Status result;
  while (true) {
    if (!stream->Write(request) || !stream->Read(&response)) {
      result = stream->Finish();
      if (result.ok()) result = absl::UnavailableError("etcd ended the keep-alive stream");
      break;
    }
    if (response.ttl() <= 0) {
      // The lease expired (etcd was out of reach longer than the TTL): put
      // the key again under a new one.
      NP_LOG(WARNING) << "etcd registration " << key_ << ": lease " << lease
                      << " expired; registering again";
      stream->Cancel();
      (void)stream->Finish();
      netpoll::MutexLock lock(&mu_);
      lease_ = 0;
      result = absl::OkStatus();
      break;
    }
    netpoll::MutexLock lock(&mu_);
    ++keepalives_;
    if (!stopping_) cv_.WaitWithTimeout(&mu_, every);
    if (stopping_) break;
  }
  netpoll::MutexLock lock(&mu_);
  cancel_stream_ = nullptr;
  if (stopping_) return absl::CancelledError("stopping");
  return result;
}

absl::Status EtcdRegistration::Deregister() {
  int64_t lease;
  {
    netpoll::MutexLock lock(&mu_);
    if (deregistered_) return absl::OkStatus();
    deregistered_ = true;
    stopping_ = true;
    if (cancel_stream_) cancel_stream_();
    cv_.SignalAll();
    lease = lease_;
  }
  if (thread_.joinable()) thread_.join();
  // The key first: watchers drop this server at once. Then the lease (its
  // keep-alive has stopped; revoking saves etcd the wait).
  etcdserverpb::KV::Stub kv(channel_.get());
  etcdserverpb::DeleteRangeRequest del;
  del.set_key(key_);
  absl::Status status = kv.DeleteRange(del).status();
  if (lease != 0) {
    etcdserverpb::Lease::Stub leases(channel_.get());
    etcdserverpb::LeaseRevokeRequest revoke;
    revoke.set_id(lease);
    absl::Status revoked = leases.LeaseRevoke(revoke).status();
    if (status.ok()) status = revoked;
  }
  return status;
}

}  // namespace nprpc
