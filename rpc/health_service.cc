#include "rpc/health_service.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "netpoll/mutex.h"
#include "proto/grpc/health/v1/health.pb.h"
#include "rpc/server_context.h"

namespace nprpc {
namespace {

using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;
using ServingStatus = HealthCheckResponse::ServingStatus;

}  // namespace

// One Watch stream: the status it last sent, and at most one write in
// flight; a change while writing waits in `pending` (the latest wins).
struct HealthWatcher {
  std::shared_ptr<ServerStreamCore> stream;
  std::string service;
  bool writing = false;
  bool done = false;
  std::optional<ServingStatus> pending;
  std::optional<ServingStatus> last_sent;
};

struct HealthServiceState : std::enable_shared_from_this<HealthServiceState> {
  mutable netpoll::Mutex mu;
  absl::flat_hash_map<std::string, bool> serving ABSL_GUARDED_BY(mu);
  bool shut_down ABSL_GUARDED_BY(mu) = false;
  std::vector<std::shared_ptr<HealthWatcher>> watchers ABSL_GUARDED_BY(mu);

  ServingStatus StatusOfLocked(const std::string& service) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    auto it = serving.find(service);
    if (it == serving.end()) return HealthCheckResponse::SERVICE_UNKNOWN;
    return it->second && !shut_down ? HealthCheckResponse::SERVING
                                    : HealthCheckResponse::NOT_SERVING;
  }

  // Tells every watcher its service's status now (if it changed).
  void NotifyAllLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    for (const std::shared_ptr<HealthWatcher>& w : watchers) {
      SendLocked(w, StatusOfLocked(w->service));
    }
  }

  void SendLocked(const std::shared_ptr<HealthWatcher>& w, ServingStatus status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (w->done) return;
    if (w->writing) {
      w->pending = status;
      return;
    }
    if (w->last_sent == status) return;
    w->writing = true;
    w->last_sent = status;
    HealthCheckResponse response;
    response.set_status(status);
    w->stream->Write(response, [self = shared_from_this(), w](bool ok) { self->OnWritten(w, ok); });
  }

  void OnWritten(const std::shared_ptr<HealthWatcher>& w, bool ok) {
    std::shared_ptr<ServerStreamCore> finish;
    absl::Status status = absl::OkStatus();
    {
      netpoll::MutexLock lock(&mu);
      w->writing = false;
      if (!ok) {
        finish = EndLocked(w);
        status = absl::CancelledError("the watch ended");
      } else if (w->pending.has_value()) {
        const ServingStatus next = *w->pending;
        w->pending.reset();
        SendLocked(w, next);
      }
      if (finish == nullptr && !w->writing && shut_down) finish = EndLocked(w);
    }
    if (finish != nullptr) finish->Finish(status);
  }

  // Server shutdown: every watch was told NOT_SERVING (or is being told);
  // those told already end now, with OK, so open watches do not hold the
  // server's drain until its deadline. The others end after their write.
  std::vector<std::shared_ptr<ServerStreamCore>> EndIdleLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    std::vector<std::shared_ptr<ServerStreamCore>> finish;
    std::vector<std::shared_ptr<HealthWatcher>> idle;
    for (const std::shared_ptr<HealthWatcher>& w : watchers) {
      if (!w->writing) idle.push_back(w);
    }
    for (const std::shared_ptr<HealthWatcher>& w : idle) {
      if (std::shared_ptr<ServerStreamCore> s = EndLocked(w)) finish.push_back(std::move(s));
    }
    return finish;
  }

  // Forgets `w`; returns its stream to finish (outside the lock) unless it
  // was already ended.
  std::shared_ptr<ServerStreamCore> EndLocked(const std::shared_ptr<HealthWatcher>& w)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (w->done) return nullptr;
    w->done = true;
    watchers.erase(std::remove(watchers.begin(), watchers.end(), w), watchers.end());
    return std::move(w->stream);
  }

  void StartWatch(std::shared_ptr<ServerStreamCore> stream) {
    auto request = std::make_shared<HealthCheckRequest>();
    ServerStreamCore* raw = stream.get();
    raw->Read(request.get(),
              [self = shared_from_this(), stream = std::move(stream), request](bool ok) mutable {
                if (!ok) {
                  stream->Finish(absl::InvalidArgumentError("Watch needs a HealthCheckRequest"));
                  return;
                }
                auto w = std::make_shared<HealthWatcher>();
                w->service = request->service();
                w->stream = stream;
                // The client cancelling (or the deadline, or the connection closing)
                // ends the watch even while nothing is being written.
                stream->context().OnCancel([self, w] {
                  std::shared_ptr<ServerStreamCore> finish;
                  {
                    netpoll::MutexLock lock(&self->mu);
                    finish = self->EndLocked(w);
                  }
                  if (finish != nullptr)
                    finish->Finish(absl::CancelledError("the watch was cancelled"));
                });
                netpoll::MutexLock lock(&self->mu);
                if (w->done) return;  // cancelled already
                self->watchers.push_back(w);
                self->SendLocked(w, self->StatusOfLocked(w->service));
              });
  }
};

namespace {

class WatchHandler final : public MethodHandler {
 public:
  explicit WatchHandler(std::weak_ptr<HealthServiceState> state) : state_(std::move(state)) {}
  std::unique_ptr<google::protobuf::Message> NewRequest() const override {
    return std::make_unique<HealthCheckRequest>();
  }
  std::unique_ptr<google::protobuf::Message> NewResponse() const override {
    return std::make_unique<HealthCheckResponse>();
  }
  void Call(ServerContext&, const google::protobuf::Message&, google::protobuf::Message*,
            Responder done) override {
    done.Finish(absl::UnimplementedError("Watch is a server streaming method"));
  }
  ExecutionMode execution_mode() const override { return ExecutionMode::kIoLoop; }
  StreamKind stream_kind() const override { return StreamKind::kServerStreaming; }
  void CallStream(std::shared_ptr<ServerStreamCore> stream) override {
    std::shared_ptr<HealthServiceState> state = state_.lock();
    if (state == nullptr) {
      stream->Finish(absl::UnavailableError("the health service is gone"));
      return;
    }
    state->StartWatch(std::move(stream));
  }

 private:
  const std::weak_ptr<HealthServiceState> state_;
};

}  // namespace

HealthService::HealthService()
    : Service(HealthCheckRequest::descriptor()->file()->FindServiceByName("Health")),
      state_(std::make_shared<HealthServiceState>()) {
  std::weak_ptr<HealthServiceState> weak = state_;
  (void)AddMethod(
      "Check",
      MakeUnaryMethodHandler(
          &HealthCheckRequest::default_instance(), &HealthCheckResponse::default_instance(),
          [weak](ServerContext&, const google::protobuf::Message& req,
                 google::protobuf::Message* resp) -> absl::Status {
            std::shared_ptr<HealthServiceState> state = weak.lock();
            if (state == nullptr) return absl::UnavailableError("the health service is gone");
            const std::string& service = static_cast<const HealthCheckRequest&>(req).service();
            netpoll::MutexLock lock(&state->mu);
            const ServingStatus status = state->StatusOfLocked(service);
            if (status == HealthCheckResponse::SERVICE_UNKNOWN) {
              return absl::NotFoundError(absl::StrCat("unknown service \"", service, "\""));
            }
            static_cast<HealthCheckResponse*>(resp)->set_status(status);
            return absl::OkStatus();
          },
          MethodHandler::ExecutionMode::kIoLoop));
  (void)AddMethod("Watch", std::make_unique<WatchHandler>(state_));
}

HealthService::~HealthService() {
  std::vector<std::shared_ptr<ServerStreamCore>> finish;
  {
    netpoll::MutexLock lock(&state_->mu);
    std::vector<std::shared_ptr<HealthWatcher>> watchers = state_->watchers;
    for (const std::shared_ptr<HealthWatcher>& w : watchers) {
      if (std::shared_ptr<ServerStreamCore> s = state_->EndLocked(w))
        finish.push_back(std::move(s));
    }
  }
  for (const std::shared_ptr<ServerStreamCore>& s : finish) {
    s->Finish(absl::UnavailableError("the health service stopped"));
  }
}

void HealthService::SetServingStatus(absl::string_view service, bool serving) {
  netpoll::MutexLock lock(&state_->mu);
  state_->serving[std::string(service)] = serving;
  state_->NotifyAllLocked();
}

void HealthService::Shutdown() {
  std::vector<std::shared_ptr<ServerStreamCore>> finish;
  {
    netpoll::MutexLock lock(&state_->mu);
    state_->shut_down = true;
    state_->NotifyAllLocked();
    finish = state_->EndIdleLocked();
  }
  for (const std::shared_ptr<ServerStreamCore>& s : finish) s->Finish(absl::OkStatus());
}

void HealthService::Resume() {
  netpoll::MutexLock lock(&state_->mu);
  state_->shut_down = false;
  state_->NotifyAllLocked();
}

size_t HealthService::watchers() const {
  netpoll::MutexLock lock(&state_->mu);
  return state_->watchers.size();
}

}  // namespace nprpc
