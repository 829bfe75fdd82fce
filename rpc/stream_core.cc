#include "rpc/stream_core.h"

#include <memory>
#include <utility>

#include "netpoll/mutex.h"

namespace nprpc {

const char* StreamKindName(StreamKind kind) {
  switch (kind) {
    case StreamKind::kUnary:
      return "unary";
    case StreamKind::kClientStreaming:
      return "client streaming";
    case StreamKind::kServerStreaming:
      return "server streaming";
    case StreamKind::kBidiStreaming:
      return "bidirectional streaming";
  }
  return "unknown";
}

namespace {

class FailedClientStream final : public ClientStreamCore {
 public:
  FailedClientStream(absl::Status status, absl::AnyInvocable<void(absl::AnyInvocable<void()>)> post)
      : status_(std::move(status)), post_(std::move(post)) {}

  void Read(google::protobuf::Message*, StreamCallback done) override { Fail(std::move(done)); }
  void Write(const google::protobuf::Message&, StreamCallback done) override {
    Fail(std::move(done));
  }
  void WritesDone(StreamCallback done) override { Fail(std::move(done)); }
  void Finish(absl::AnyInvocable<void(absl::Status)> done) override {
    netpoll::MutexLock lock(&mu_);
    post_([status = status_, done = std::move(done)]() mutable { done(status); });
  }
  void Cancel() override {}
  Metadata initial_metadata() const override { return {}; }
  Metadata trailing_metadata() const override { return {}; }

 private:
  void Fail(StreamCallback done) {
    netpoll::MutexLock lock(&mu_);
    post_([done = std::move(done)]() mutable { done(false); });
  }

  const absl::Status status_;
  netpoll::Mutex mu_;
  absl::AnyInvocable<void(absl::AnyInvocable<void()>)> post_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

std::shared_ptr<ClientStreamCore> MakeFailedClientStream(
    absl::Status status, absl::AnyInvocable<void(absl::AnyInvocable<void()>)> post) {
  return std::make_shared<FailedClientStream>(std::move(status), std::move(post));
}

}  // namespace nprpc
