#include "rpc/internal/testing/fake_transport.h"

#include "rpc/errors.h"

namespace nprpc::testing {

size_t FakeNetwork::attempts() const {
  netpoll::MutexLock lock(&mu_);
  return attempts_.size();
}

FakeAttempt FakeNetwork::attempt(size_t i) const {
  netpoll::MutexLock lock(&mu_);
  return *attempts_.at(i);
}

size_t FakeNetwork::held() const {
  netpoll::MutexLock lock(&mu_);
  size_t n = 0;
  for (const auto& attempt : attempts_) n += attempt->call->completed() ? 0 : 1;
  return n;
}

ClientCallPtr FakeNetwork::CallOf(size_t i) const {
  netpoll::MutexLock lock(&mu_);
  return attempts_.at(i)->call;
}

bool FakeNetwork::Answer(size_t i, const google::protobuf::Message& response) {
  std::string bytes = response.SerializeAsString();
  return AnswerWith(i, [&](google::protobuf::Message& out, CallInfo*) {
    return out.ParseFromString(bytes) ? absl::OkStatus()
                                      : MakeRpcError(ERESPONSE, "cannot parse response");
  });
}

bool FakeNetwork::AnswerError(size_t i, int32_t error_code, absl::string_view text) {
  return AnswerWith(
      i, [&](google::protobuf::Message&, CallInfo*) { return MakeRpcError(error_code, text); });
}

bool FakeNetwork::AnswerWith(size_t i, ClientCall::Decoder decode) {
  return CallOf(i)->CompleteWithAnswer(decode);
}

bool FakeNetwork::Fail(size_t i, absl::Status status) {
  return CallOf(i)->Complete(std::move(status));
}

void FakeNetwork::SetReachable(const std::string& address, bool reachable) {
  netpoll::MutexLock lock(&mu_);
  unreachable_[address] = !reachable;
}

int FakeNetwork::probes(const std::string& address) const {
  netpoll::MutexLock lock(&mu_);
  auto it = probes_.find(address);
  return it == probes_.end() ? 0 : it->second;
}

int FakeNetwork::shutdowns() const {
  netpoll::MutexLock lock(&mu_);
  return shutdowns_;
}

void FakeTransport::Send(ClientCallPtr call, const ClientRequest& request, absl::Time deadline,
                         absl::Duration timeout) {
  bool shut_down;
  {
    netpoll::MutexLock lock(&mu_);
    shut_down = shut_down_;
  }
  if (shut_down) {
    call->Complete(absl::CancelledError("transport shut down"));
    return;
  }
  call->set_remote_address(address_);
  auto attempt = std::make_shared<FakeAttempt>();
  attempt->address = address_;
  attempt->call = std::move(call);
  attempt->service = request.service;
  attempt->method = request.method;
  attempt->payload = request.payload.Clone().ToString();
  attempt->attachment = request.attachment.Clone().ToString();
  attempt->metadata = request.metadata;
  attempt->deadline = deadline;
  attempt->timeout = timeout;
  attempt->sent_at = network_->clock_->Now();
  netpoll::MutexLock lock(&network_->mu_);
  network_->attempts_.push_back(std::move(attempt));
}

void FakeTransport::Abandon(const ClientCallPtr& call, absl::Status status) {
  {
    netpoll::MutexLock lock(&network_->mu_);
    for (auto& attempt : network_->attempts_) {
      if (attempt->call == call && !call->completed()) {
        attempt->abandoned = true;
        attempt->abandon_status = status;
      }
    }
  }
  call->Complete(std::move(status));
}

void FakeTransport::Shutdown() {
  std::vector<ClientCallPtr> pending;
  {
    netpoll::MutexLock lock(&mu_);
    shut_down_ = true;
  }
  {
    netpoll::MutexLock lock(&network_->mu_);
    network_->shutdowns_++;
    for (auto& attempt : network_->attempts_) {
      if (attempt->address == address_) pending.push_back(attempt->call);
    }
  }
  for (auto& call : pending) call->Complete(absl::CancelledError("transport shut down"));
}

size_t FakeTransport::in_flight() const {
  netpoll::MutexLock lock(&network_->mu_);
  size_t n = 0;
  for (const auto& attempt : network_->attempts_) {
    if (attempt->address == address_ && !attempt->call->completed()) n++;
  }
  return n;
}

void FakeClientProtocol::Probe(const std::string& address,
                               absl::AnyInvocable<void(absl::Status)> done) {
  bool unreachable;
  {
    netpoll::MutexLock lock(&network_->mu_);
    network_->probes_[address]++;
    unreachable = network_->unreachable_[address];
  }
  network_->clock_->RunAfter(absl::ZeroDuration(), [unreachable, done = std::move(done)]() mutable {
    done(unreachable ? MakeRpcError(EFAILEDSOCKET, "probe refused") : absl::OkStatus());
  });
}

}  // namespace nprpc::testing
