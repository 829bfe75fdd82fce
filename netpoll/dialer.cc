#include "netpoll/dialer.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include <deque>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "netpoll/logging.h"
#include "netpoll/mutex.h"
#include "netpoll/socket.h"
#include "netpoll/tls_context.h"

namespace netpoll {
namespace {

// Resolves names on one background thread, so that getaddrinfo never blocks a
// loop. Lives for the whole process (never destroyed: usable during exit).
class Resolver {
 public:
  using Callback = absl::AnyInvocable<void(absl::StatusOr<std::vector<SocketAddress>>)>;

  static Resolver& Get() {
    static Resolver* resolver = new Resolver();
    return *resolver;
  }

  void Resolve(std::string name, Callback callback) {
    MutexLock lock(&mu_);
    if (!started_) {
      started_ = true;
      std::thread([this] { Run(); }).detach();
    }
    queue_.push_back({std::move(name), std::move(callback)});
    cv_.Signal();
  }

 private:
  struct Job {
    std::string name;
    Callback callback;
  };
  void Run() {
    while (true) {
      Job job;
      {
        MutexLock lock(&mu_);
        while (queue_.empty()) cv_.Wait(&mu_);
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      job.callback(SocketAddress::Resolve(job.name));
    }
  }

  Mutex mu_;
  CondVar cv_;
  std::deque<Job> queue_ ABSL_GUARDED_BY(mu_);
  bool started_ ABSL_GUARDED_BY(mu_) = false;
};

// Owns the socket while connect() is in progress, on the loop thread.
class Connector : public IoHandler {
 public:
  Connector(EventLoop* loop, const SocketAddress& address, const DialOptions& options,
            Dialer::DoneCallback done)
      : loop_(loop), address_(address), options_(options), done_(std::move(done)) {}

  // Loop thread. Deletes itself when finished.
  void Start() {
    auto fd = CreateStreamSocket(address_.family());
    if (!fd.ok()) return Finish(fd.status());
    fd_ = std::move(*fd);
    if (!address_.is_unix()) {
      if (absl::Status s = SetTcpKeepAlive(fd_.get(), options_.keepalive); !s.ok()) {
        return Finish(s);
      }
    }
    int rc = ::connect(fd_.get(), address_.sockaddr(), address_.length());
    if (rc == 0) return Connected();
    if (errno != EINPROGRESS && errno != EAGAIN) {
      return Finish(absl::UnavailableError(
          absl::StrCat("connect ", address_.ToString(), ": ", strerror(errno))));
    }
    if (absl::Status s = loop_->AddFd(fd_.get(), kPollWritable, this); !s.ok()) return Finish(s);
    registered_ = true;
    timer_ = loop_->RunAfter(options_.timeout, [this] {
      timer_ = kInvalidTimerId;
      Finish(absl::DeadlineExceededError(absl::StrCat("connect ", address_.ToString(),
                                                      ": timed out after ",
                                                      absl::FormatDuration(options_.timeout))));
    });
  }

  void HandleEvents(uint32_t) override {
    absl::Status error = SocketError(fd_.get());
    if (!error.ok()) {
      return Finish(absl::UnavailableError(
          absl::StrCat("connect ", address_.ToString(), ": ", error.message())));
    }
    Connected();
  }

 private:
  void Connected() {
    if (registered_) {
      (void)loop_->RemoveFd(fd_.get());
      registered_ = false;
    }
    auto local = SocketAddress::LocalOf(fd_.get());
    if (local.ok() && IsSelfConnection(*local, address_)) {  // closing it frees the port again
      return Finish(absl::UnavailableError(absl::StrCat(
          "connect ", address_.ToString(), ": connected to itself (nothing listens there)")));
    }
    ConnectionPtr conn = Connection::Create(loop_, std::move(fd_), local.ok() ? *local : address_,
                                            address_, options_.connection, options_.callbacks);
    loop_->stats().Add(loop_->stats().connections_dialed, 1);
    if (options_.connection.tls == nullptr) {
      absl::Status started = conn->Start();
      if (!started.ok()) return Finish(started);
      return Finish(std::move(conn));
    }
    // TLS: done when the handshake is (the connect timer still runs).
    conn_ = conn;
    conn->SetTlsHandshakeCallback([this](const absl::Status& status) {
      if (!status.ok()) {
        conn_ = nullptr;  // it is closing
        return Finish(absl::Status(
            status.code() == absl::StatusCode::kDeadlineExceeded ? status.code()
                                                                 : absl::StatusCode::kUnavailable,
            absl::StrCat("connect ", address_.ToString(), ": ", status.message())));
      }
      Finish(ConnectionPtr(std::move(conn_)));
    });
    absl::Status started = conn->Start();
    if (!started.ok() && done_ != nullptr) {
      conn_ = nullptr;
      Finish(started);
    }
  }

  void Finish(absl::StatusOr<ConnectionPtr> result) {
    if (done_ == nullptr) return;  // finished already
    if (registered_) (void)loop_->RemoveFd(fd_.get());
    loop_->Cancel(timer_);
    if (conn_ != nullptr) {
      // A TLS handshake cut short (timeout): the connection goes too.
      ConnectionPtr conn = std::move(conn_);
      conn->SetTlsHandshakeCallback(nullptr);
      conn->Close(result.ok() ? absl::CancelledError("dial finished") : result.status());
    }
    Dialer::DoneCallback done = std::move(done_);
    // The epoll entry is gone; delete at the end of the turn in case this
    // turn still holds an event for us.
    loop_->QueueInLoop([this] { delete this; });
    done(std::move(result));
  }

  EventLoop* const loop_;
  const SocketAddress address_;
  const DialOptions options_;
  Dialer::DoneCallback done_;
  UniqueFd fd_;
  ConnectionPtr conn_;  // TLS: the connection while it handshakes
  bool registered_ = false;
  TimerId timer_ = kInvalidTimerId;
};

}  // namespace

void Dialer::Dial(EventLoop* loop, const SocketAddress& address, const DialOptions& options,
                  DoneCallback done) {
  auto* connector = new Connector(loop, address, options, std::move(done));  // deletes itself
  loop->RunInLoop([connector] { connector->Start(); });
}

void Dialer::Dial(EventLoop* loop, absl::string_view address, const DialOptions& options,
                  DoneCallback done) {
  absl::StatusOr<SocketAddress> parsed = SocketAddress::Parse(address);
  if (parsed.ok()) return Dial(loop, *parsed, options, std::move(done));
  // A host name: TLS without a server name of its own names this one.
  DialOptions named = options;
  const std::shared_ptr<const TlsContext>& tls = options.connection.tls;
  const size_t colon = address.rfind(':');
  if (tls != nullptr && !tls->is_server() && tls->server_name().empty() &&
      colon != absl::string_view::npos && colon > 0) {
    absl::StatusOr<std::shared_ptr<const TlsContext>> for_name =
        tls->ForServerName(std::string(address.substr(0, colon)));
    if (!for_name.ok()) {
      // A fresh Status (see below).
      absl::Status status(for_name.status().code(), for_name.status().message());
      loop->RunInLoop([done = std::move(done), status = std::move(status)]() mutable {
        done(std::move(status));
      });
      return;
    }
    named.connection.tls = *std::move(for_name);
  }
  Resolver::Get().Resolve(
      std::string(address), [loop, options = std::move(named), done = std::move(done)](
                                absl::StatusOr<std::vector<SocketAddress>> addresses) mutable {
        if (!addresses.ok()) {
          // A fresh Status, not a copy sharing the resolver's rep: the rep's
          // refcount lives in Debian's uninstrumented Abseil, so TSan would
          // not see the hand-over to the loop thread.
          absl::Status status(addresses.status().code(), addresses.status().message());
          loop->RunInLoop([done = std::move(done), status = std::move(status)]() mutable {
            done(std::move(status));
          });
          return;
        }
        Dial(loop, addresses->front(), options, std::move(done));
      });
}

absl::StatusOr<ConnectionPtr> Dialer::DialSync(EventLoop* loop, absl::string_view address,
                                               const DialOptions& options) {
  NP_CHECK(!loop->IsInLoopThread()) << "DialSync on a loop thread would deadlock";
  Notification done;
  absl::StatusOr<ConnectionPtr> result = absl::UnknownError("dial did not complete");
  Dial(loop, address, options, [&](absl::StatusOr<ConnectionPtr> conn) {
    result = std::move(conn);
    done.Notify();
  });
  done.WaitForNotification();
  return result;
}

}  // namespace netpoll
