#include "netpoll/server.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "netpoll/logging.h"

namespace netpoll {

// Owns one listening socket on one loop and accepts until EAGAIN.
class Server::Acceptor : public IoHandler {
 public:
  Acceptor(Server* server, EventLoop* loop, UniqueFd fd)
      : server_(server), loop_(loop), fd_(std::move(fd)), reserve_(OpenReserve()) {}

  EventLoop* loop() const { return loop_; }

  absl::Status Register() {
    loop_->AssertInLoopThread();
    return loop_->AddFd(fd_.get(), kPollReadable, this);
  }

  // Loop thread.
  void Close() {
    loop_->AssertInLoopThread();
    closed_ = true;
    loop_->Cancel(retry_timer_);
    if (fd_.valid()) (void)loop_->RemoveFd(fd_.get());
    fd_.reset();
  }

  void HandleEvents(uint32_t) override { AcceptAll(); }

 private:
  static UniqueFd OpenReserve() { return UniqueFd(::open("/dev/null", O_RDONLY | O_CLOEXEC)); }

  void AcceptAll() {
    if (closed_ || retry_timer_ != kInvalidTimerId) return;
    while (true) {
      struct sockaddr_storage ss;
      socklen_t len = sizeof(ss);
      int fd = ::accept4(fd_.get(), reinterpret_cast<struct sockaddr*>(&ss), &len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd >= 0) {
        server_->OnAccepted(UniqueFd(fd),
                            SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&ss), len));
        continue;
      }
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      loop_->stats().Add(loop_->stats().accept_errors, 1);
      if (errno == EMFILE || errno == ENFILE) {
        // Shed the pending connection through the reserved fd so the peer
        // sees a close instead of hanging in the backlog.
        if (reserve_.valid()) {
          reserve_.reset();
          int shed = ::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC);
          if (shed >= 0) ::close(shed);
          reserve_ = OpenReserve();
          if (shed >= 0 && reserve_.valid()) continue;
        }
        NP_LOG(WARNING) << "accept: out of file descriptors; pausing accept for "
                        << server_->options_.accept_backoff;
      } else {
        NP_LOG(ERROR) << "accept: " << strerror(errno) << "; pausing accept";
      }
      // Back off without dropping the listener: edge-triggered epoll will not
      // report the backlog again, so a timer retries.
      retry_timer_ = loop_->RunAfter(server_->options_.accept_backoff, [this] {
        retry_timer_ = kInvalidTimerId;
        if (!reserve_.valid()) reserve_ = OpenReserve();
        AcceptAll();
      });
      return;
    }
  }

  Server* const server_;   // owns this acceptor
  EventLoop* const loop_;  // outlives this acceptor
  UniqueFd fd_;
  UniqueFd reserve_;  // an fd held back for shedding connections at EMFILE
  TimerId retry_timer_ = kInvalidTimerId;
  bool closed_ = false;
};

absl::StatusOr<std::unique_ptr<Server>> Server::Create(const ServerOptions& options) {
  std::unique_ptr<Server> server(new Server(options));
  if (options.group != nullptr) {
    server->group_ = options.group;
  } else {
    EventLoopGroupOptions group_options;
    group_options.num_loops = options.num_loops;
    group_options.busy_poll = options.busy_poll;
    group_options.name = "server";
    auto group = EventLoopGroup::Create(group_options);
    if (!group.ok()) return group.status();
    server->owned_group_ = std::move(*group);
    server->group_ = server->owned_group_.get();
  }
  return server;
}

Server::Server(const ServerOptions& options)
    : options_(options),
      callbacks_(options.callbacks ? options.callbacks : std::make_shared<ConnectionCallbacks>()) {}

Server::~Server() { Shutdown(absl::ZeroDuration()); }

absl::Status Server::Start(const SocketAddress& address,
                           absl::AnyInvocable<void(const SocketAddress& bound)> on_bound) {
  if (started_.exchange(true)) return absl::FailedPreconditionError("server already started");
  ListenOptions listen_options;
  listen_options.backlog = options_.backlog;
  listen_options.reuse_port = options_.reuse_port && !address.is_unix();
  int listeners = listen_options.reuse_port ? group_->size() : 1;
  SocketAddress bind_address = address;
  for (int i = 0; i < listeners; ++i) {
    auto fd = Listen(bind_address, listen_options);
    if (!fd.ok()) return fd.status();
    if (i == 0) {
      auto bound = address.is_unix() ? absl::StatusOr<SocketAddress>(address)
                                     : SocketAddress::LocalOf(fd->get());
      if (!bound.ok()) return bound.status();
      listen_address_ = *bound;
      bind_address = listen_address_;  // the other listeners share the real port
    }
    acceptors_.push_back(std::make_unique<Acceptor>(this, group_->loop(i), std::move(*fd)));
  }
  if (on_bound != nullptr) on_bound(listen_address_);
  for (auto& acceptor : acceptors_) {
    absl::Status status;
    Notification done;
    acceptor->loop()->RunInLoop([&] {
      status = acceptor->Register();
      done.Notify();
    });
    done.WaitForNotification();
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

void Server::OnAccepted(UniqueFd fd, const SocketAddress& peer) {
  EventLoop* loop = options_.policy == LoadBalancePolicy::kLeastConnections ? group_->LeastLoaded()
                                                                            : group_->Next();
  absl::StatusOr<SocketAddress> local = SocketAddress::LocalOf(fd.get());
  ConnectionPtr conn =
      Connection::Create(loop, std::move(fd), local.ok() ? *local : listen_address_, peer,
                         options_.connection, callbacks_);
  loop->stats().Add(loop->stats().connections_accepted, 1);
  {
    MutexLock lock(&mu_);
    connections_[conn->id()] = conn;
  }
  uint64_t id = conn->id();
  conn->AddCloseCallback([this, id] {
    MutexLock lock(&mu_);
    connections_.erase(id);
  });
  loop->RunInLoop([conn] { (void)conn->Start(); });
}

size_t Server::connection_count() {
  MutexLock lock(&mu_);
  return connections_.size();
}

std::vector<ConnectionPtr> Server::Connections() {
  MutexLock lock(&mu_);
  std::vector<ConnectionPtr> out;
  out.reserve(connections_.size());
  for (const auto& [id, conn] : connections_) out.push_back(conn);
  return out;
}

TransportStatsSnapshot Server::Stats() const { return group_->Stats(); }

void Server::Shutdown(absl::Duration grace) {
  if (shut_down_.exchange(true)) return;
  // 1. Stop accepting.
  for (auto& acceptor : acceptors_) {
    Notification done;
    acceptor->loop()->RunInLoop([&] {
      acceptor->Close();
      done.Notify();
    });
    done.WaitForNotification();
  }
  // 2. Close connections as they go idle, until the deadline.
  absl::Time deadline = absl::Now() + grace;
  while (true) {
    std::vector<ConnectionPtr> open;
    {
      MutexLock lock(&mu_);
      for (auto& [id, conn] : connections_) open.push_back(conn);
    }
    if (open.empty()) break;
    bool past_deadline = absl::Now() >= deadline;
    for (auto& conn : open) {
      conn->loop()->RunInLoop([conn, past_deadline] {
        if (past_deadline) {
          conn->Close(absl::CancelledError("server shut down"));
        } else if (conn->buffered_input_bytes() == 0 && conn->pending_output_bytes() == 0) {
          conn->CloseAfterFlush(absl::CancelledError("server shut down"));
        }
      });
    }
    open.clear();
    std::this_thread::sleep_for(std::chrono::milliseconds(past_deadline ? 1 : 5));
  }
  // 3. The acceptors die on their loops' terms: they were closed above.
  if (owned_group_) owned_group_->Stop();
}

}  // namespace netpoll
