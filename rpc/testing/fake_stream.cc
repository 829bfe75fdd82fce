#include "rpc/testing/fake_stream.h"

#include <deque>
#include <memory>
#include <string>
#include <utility>

#include "netpoll/mutex.h"

namespace nprpc {
namespace testing {

// One direction of the call: what its writer sent and its reader has not
// read yet, and the operations waiting on either end.
struct Direction {
  std::deque<std::string> queue;
  bool closed = false;  // the writer half-closed (client) or finished (server)
  google::protobuf::Message* read_message = nullptr;
  StreamCallback read_done;
  std::string write_bytes;
  StreamCallback write_done;
  int written = 0;
};

struct FakeStreamCall::State {
  State(netpoll::EventLoop* loop, size_t window) : loop(loop), window(window) {}

  void Post(StreamCallback done, bool ok) {
    if (done) loop->QueueInLoop([done = std::move(done), ok]() mutable { done(ok); });
  }

  // The direction `to_server` or the other one.
  Direction& Way(bool server_bound) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return server_bound ? to_server : to_client;
  }

  void Read(bool server_bound, google::protobuf::Message* message, StreamCallback done) {
    netpoll::MutexLock lock(&mu);
    Direction& d = Way(server_bound);
    if (!d.queue.empty()) {
      bool ok = message->ParseFromString(d.queue.front());
      d.queue.pop_front();
      Post(std::move(done), ok);
      if (d.write_done) {
        d.queue.push_back(std::move(d.write_bytes));
        ++d.written;
        Post(std::move(d.write_done), true);
        d.write_done = nullptr;
      }
      return;
    }
    if (d.closed || over) {
      Post(std::move(done), false);
      return;
    }
    d.read_message = message;
    d.read_done = std::move(done);
  }

  void Write(bool server_bound, const google::protobuf::Message& message, StreamCallback done) {
    std::string bytes = message.SerializeAsString();  // before returning
    netpoll::MutexLock lock(&mu);
    Direction& d = Way(server_bound);
    if (over || d.closed) {
      Post(std::move(done), false);
      return;
    }
    if (d.read_done) {
      bool ok = d.read_message->ParseFromString(bytes);
      ++d.written;
      Post(std::move(d.read_done), ok);
      d.read_done = nullptr;
      Post(std::move(done), true);
      return;
    }
    if (d.queue.size() < window) {
      d.queue.push_back(std::move(bytes));
      ++d.written;
      Post(std::move(done), true);
      return;
    }
    d.write_bytes = std::move(bytes);
    d.write_done = std::move(done);
  }

  // Closes `d` for its writer: a waiting reader with nothing queued ends.
  void Close(Direction& d) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    d.closed = true;
    if (d.read_done && d.queue.empty()) {
      Post(std::move(d.read_done), false);
      d.read_done = nullptr;
    }
  }

  // Ends the call with `end_status`. `drop`: messages in flight are lost
  // (cancel, abort); otherwise the client still reads what the server wrote.
  void End(absl::Status end_status, bool drop) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    over = true;
    status = std::move(end_status);
    if (drop) {
      context.Cancel();
      to_server.queue.clear();
      to_client.queue.clear();
    }
    for (Direction* d : {&to_server, &to_client}) {
      if (d->read_done && (drop || d == &to_server || d->queue.empty())) {
        Post(std::move(d->read_done), false);
        d->read_done = nullptr;
      }
      if (d->write_done) {
        Post(std::move(d->write_done), false);
        d->write_done = nullptr;
      }
    }
    to_client.closed = true;
    if (client_finish) {
      auto done = std::move(client_finish);
      client_finish = nullptr;
      loop->QueueInLoop([done = std::move(done), s = status]() mutable { done(s); });
    }
  }

  netpoll::EventLoop* const loop;
  const size_t window;
  ServerContext context;  // set before the call is shared

  mutable netpoll::Mutex mu;
  Direction to_server ABSL_GUARDED_BY(mu);
  Direction to_client ABSL_GUARDED_BY(mu);
  bool over ABSL_GUARDED_BY(mu) = false;
  absl::Status status ABSL_GUARDED_BY(mu);
  int finish_calls ABSL_GUARDED_BY(mu) = 0;
  std::optional<absl::Status> server_status ABSL_GUARDED_BY(mu);
  absl::AnyInvocable<void(absl::Status)> client_finish ABSL_GUARDED_BY(mu);
  std::weak_ptr<ClientStreamCore> client ABSL_GUARDED_BY(mu);
  bool client_made ABSL_GUARDED_BY(mu) = false;
};

namespace {

class FakeServerStream final : public ServerStreamCore {
 public:
  explicit FakeServerStream(std::shared_ptr<FakeStreamCall::State> state)
      : state_(std::move(state)) {}

  ServerContext& context() override { return state_->context; }
  void Read(google::protobuf::Message* message, StreamCallback done) override {
    state_->Read(/*server_bound=*/true, message, std::move(done));
  }
  void Write(const google::protobuf::Message& message, StreamCallback done) override {
    state_->Write(/*server_bound=*/false, message, std::move(done));
  }
  void Finish(absl::Status status) override {
    FakeStreamCall::State& s = *state_;
    netpoll::MutexLock lock(&s.mu);
    ++s.finish_calls;
    if (s.finish_calls > 1 || s.over) return;  // dropped
    s.server_status = status;
    s.End(std::move(status), /*drop=*/false);
  }

 private:
  const std::shared_ptr<FakeStreamCall::State> state_;
};

class FakeClientStream final : public ClientStreamCore {
 public:
  explicit FakeClientStream(std::shared_ptr<FakeStreamCall::State> state)
      : state_(std::move(state)) {}
  ~FakeClientStream() override { Cancel(); }

  void Read(google::protobuf::Message* message, StreamCallback done) override {
    state_->Read(/*server_bound=*/false, message, std::move(done));
  }
  void Write(const google::protobuf::Message& message, StreamCallback done) override {
    state_->Write(/*server_bound=*/true, message, std::move(done));
  }
  void WritesDone(StreamCallback done) override {
    FakeStreamCall::State& s = *state_;
    netpoll::MutexLock lock(&s.mu);
    if (s.over || s.to_server.closed) {
      s.Post(std::move(done), false);
      return;
    }
    s.Close(s.to_server);
    s.Post(std::move(done), true);
  }
  void Finish(absl::AnyInvocable<void(absl::Status)> done) override {
    FakeStreamCall::State& s = *state_;
    netpoll::MutexLock lock(&s.mu);
    if (s.over) {
      s.loop->QueueInLoop([done = std::move(done), status = s.status]() mutable { done(status); });
      return;
    }
    s.client_finish = std::move(done);
  }
  void Cancel() override {
    FakeStreamCall::State& s = *state_;
    netpoll::MutexLock lock(&s.mu);
    if (s.over) return;
    s.End(absl::CancelledError("cancelled by the client"), /*drop=*/true);
  }
  Metadata initial_metadata() const override { return {}; }
  Metadata trailing_metadata() const override { return {}; }
  bool OnLoopThread() const override { return state_->loop->IsInLoopThread(); }

 private:
  const std::shared_ptr<FakeStreamCall::State> state_;
};

}  // namespace

std::shared_ptr<FakeStreamCall> FakeStreamCall::Create(netpoll::EventLoop* loop,
                                                       const FakeStreamOptions& options) {
  std::shared_ptr<FakeStreamCall> call(new FakeStreamCall());
  call->state_ = std::make_shared<State>(loop, options.window);
  call->state_->context.set_service_name(options.service);
  call->state_->context.set_method_name(options.method);
  call->server_ = std::make_shared<FakeServerStream>(call->state_);
  return call;
}

FakeStreamCall::~FakeStreamCall() = default;

std::shared_ptr<ClientStreamCore> FakeStreamCall::client() {
  netpoll::MutexLock lock(&state_->mu);
  if (std::shared_ptr<ClientStreamCore> existing = state_->client.lock()) return existing;
  if (state_->client_made) return nullptr;
  state_->client_made = true;
  auto client = std::make_shared<FakeClientStream>(state_);
  state_->client = client;
  return client;
}

void FakeStreamCall::Abort(absl::Status status) {
  netpoll::MutexLock lock(&state_->mu);
  if (state_->over) return;
  state_->End(std::move(status), /*drop=*/true);
}

int FakeStreamCall::server_finish_calls() const {
  netpoll::MutexLock lock(&state_->mu);
  return state_->finish_calls;
}

std::optional<absl::Status> FakeStreamCall::server_status() const {
  netpoll::MutexLock lock(&state_->mu);
  return state_->server_status;
}

bool FakeStreamCall::ended() const {
  netpoll::MutexLock lock(&state_->mu);
  return state_->over;
}

int FakeStreamCall::server_messages_written() const {
  netpoll::MutexLock lock(&state_->mu);
  return state_->to_client.written;
}

int FakeStreamCall::client_messages_written() const {
  netpoll::MutexLock lock(&state_->mu);
  return state_->to_server.written;
}

}  // namespace testing
}  // namespace nprpc
