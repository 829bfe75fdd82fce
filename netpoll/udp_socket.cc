#include "netpoll/udp_socket.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "netpoll/logging.h"
#include "netpoll/mutex.h"
#include "netpoll/poller.h"
#include "netpoll/socket.h"

namespace netpoll {
namespace {

// recvmmsg() batches per readiness event before yielding to the rest of the
// loop (the remainder is read from a queued task).
constexpr int kMaxBatchesPerTurn = 8;

absl::Status Errno(absl::string_view what) {
  return absl::UnavailableError(absl::StrCat(what, ": ", strerror(errno)));
}

absl::Status SetIntOption(int fd, int level, int name, int value, absl::string_view what) {
  if (setsockopt(fd, level, name, &value, sizeof(value)) != 0) return Errno(what);
  return absl::OkStatus();
}

// Receive memory shared by every UdpSocket on one thread: datagrams are only
// looked at during on_datagram, on the loop thread. Allocated uninitialized,
// so pages the kernel never writes stay unbacked.
struct ReceiveArena {
  size_t slot_bytes = 0;
  size_t slots = 0;
  std::unique_ptr<char[]> data;
  std::vector<struct mmsghdr> messages;
  std::vector<struct iovec> iovecs;
  std::vector<struct sockaddr_storage> addresses;

  void Reserve(size_t want_slots, size_t want_bytes) {
    if (want_slots <= slots && want_bytes <= slot_bytes) return;
    slots = std::max(slots, want_slots);
    slot_bytes = std::max(slot_bytes, want_bytes);
    data.reset(new char[slots * slot_bytes]);
    messages.resize(slots);
    iovecs.resize(slots);
    addresses.resize(slots);
  }

  static ReceiveArena& ForThisThread() {
    thread_local ReceiveArena arena;
    return arena;
  }
};

}  // namespace

class UdpSocket::Impl : public IoHandler, public std::enable_shared_from_this<Impl> {
 public:
  Impl(EventLoop* loop, UniqueFd fd, const UdpSocketOptions& options, DatagramCallback callback)
      : loop_(loop),
        options_(options),
        on_datagram_(std::move(callback)),
        raw_fd_(fd.get()),
        fd_(std::move(fd)) {}

  absl::Status Register() {
    loop_->AssertInLoopThread();
    absl::Status s = loop_->AddFd(raw_fd_, kPollReadable, this);
    registered_ = s.ok();
    return s;
  }

  void HandleEvents(uint32_t) override { ReadBatches(); }

  absl::Status SendTo(const SocketAddress& to, absl::string_view data) {
    MutexLock lock(&mu_);
    if (!fd_.valid()) return absl::FailedPreconditionError("UDP socket is closed");
    while (true) {
      ssize_t n = ::sendto(fd_.get(), data.data(), data.size(), MSG_DONTWAIT | MSG_NOSIGNAL,
                           to.sockaddr(), to.length());
      if (n >= 0) {
        datagrams_out_.fetch_add(1, std::memory_order_relaxed);
        bytes_out_.fetch_add(n, std::memory_order_relaxed);
        return absl::OkStatus();
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
        send_full_.fetch_add(1, std::memory_order_relaxed);
        return absl::UnavailableError("UDP send buffer full");
      }
      if (errno == EMSGSIZE || errno == EAFNOSUPPORT || errno == EINVAL) {
        return absl::InvalidArgumentError(
            absl::StrCat("sendto ", to.ToString(), ": ", strerror(errno)));
      }
      return Errno(absl::StrCat("sendto ", to.ToString()));
    }
  }

  // Loop thread.
  void CloseInLoop() {
    loop_->AssertInLoopThread();
    if (closed_) return;
    closed_ = true;
    if (registered_) (void)loop_->RemoveFd(raw_fd_);
    registered_ = false;
    {
      MutexLock lock(&mu_);
      fd_.reset();
    }
    // This turn may still hold an event for us: stay alive until its end.
    loop_->QueueInLoop([self = shared_from_this()] {});
  }

  UdpSocketStats Stats() const {
    UdpSocketStats s;
    s.datagrams_in = datagrams_in_.load(std::memory_order_relaxed);
    s.bytes_in = bytes_in_.load(std::memory_order_relaxed);
    s.datagrams_out = datagrams_out_.load(std::memory_order_relaxed);
    s.bytes_out = bytes_out_.load(std::memory_order_relaxed);
    s.receive_calls = receive_calls_.load(std::memory_order_relaxed);
    s.truncated = truncated_.load(std::memory_order_relaxed);
    s.send_full = send_full_.load(std::memory_order_relaxed);
    return s;
  }

 private:
  // Loop thread: reads until the socket would block, at most
  // kMaxBatchesPerTurn batches before queueing the rest.
  void ReadBatches() {
    if (closed_) return;
    const size_t batch = static_cast<size_t>(std::max(options_.batch, 1));
    // One byte more than the limit, to see oversized datagrams as truncated.
    const size_t slot_bytes = options_.max_datagram_bytes + 1;
    ReceiveArena& arena = ReceiveArena::ForThisThread();
    arena.Reserve(batch, slot_bytes);
    for (int round = 0; round < kMaxBatchesPerTurn; ++round) {
      for (size_t i = 0; i < batch; ++i) {
        arena.iovecs[i].iov_base = arena.data.get() + i * arena.slot_bytes;
        arena.iovecs[i].iov_len = slot_bytes;
        struct msghdr& hdr = arena.messages[i].msg_hdr;
        hdr = {};
        hdr.msg_name = &arena.addresses[i];
        hdr.msg_namelen = sizeof(arena.addresses[i]);
        hdr.msg_iov = &arena.iovecs[i];
        hdr.msg_iovlen = 1;
        arena.messages[i].msg_len = 0;
      }
      int n = ::recvmmsg(raw_fd_, arena.messages.data(), static_cast<unsigned>(batch), MSG_DONTWAIT,
                         nullptr);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        // ICMP errors (ECONNREFUSED, ...) surface here on some kernels; they
        // concern an earlier send, not this socket's health.
        NP_LOG(DEBUG) << "recvmmsg: " << strerror(errno);
        continue;
      }
      receive_calls_.fetch_add(1, std::memory_order_relaxed);
      for (int i = 0; i < n; ++i) {
        const struct mmsghdr& message = arena.messages[i];
        if ((message.msg_hdr.msg_flags & MSG_TRUNC) ||
            message.msg_len > options_.max_datagram_bytes) {
          truncated_.fetch_add(1, std::memory_order_relaxed);
          continue;
        }
        datagrams_in_.fetch_add(1, std::memory_order_relaxed);
        bytes_in_.fetch_add(message.msg_len, std::memory_order_relaxed);
        if (on_datagram_) {
          SocketAddress from = SocketAddress::FromSockaddr(
              reinterpret_cast<const struct sockaddr*>(message.msg_hdr.msg_name),
              message.msg_hdr.msg_namelen);
          on_datagram_(
              from, absl::string_view(static_cast<const char*>(message.msg_hdr.msg_iov->iov_base),
                                      message.msg_len));
        }
        if (closed_) return;  // on_datagram closed the socket
      }
      if (static_cast<size_t>(n) < batch) {
        // Probably drained; one more call confirms EAGAIN (edge-triggered).
        continue;
      }
    }
    // Still readable after the budget: continue after the other handlers.
    loop_->QueueInLoop([self = shared_from_this()] { self->ReadBatches(); });
  }

  // Constant after construction.
  EventLoop* const loop_;  // not owned
  const UdpSocketOptions options_;
  const DatagramCallback on_datagram_;
  const int raw_fd_;  // fd_'s number, for the loop thread (valid until CloseInLoop)

  // Loop thread only.
  bool registered_ = false;
  bool closed_ = false;

  std::atomic<int64_t> datagrams_in_{0};
  std::atomic<int64_t> bytes_in_{0};
  std::atomic<int64_t> datagrams_out_{0};
  std::atomic<int64_t> bytes_out_{0};
  std::atomic<int64_t> receive_calls_{0};
  std::atomic<int64_t> truncated_{0};
  std::atomic<int64_t> send_full_{0};

  mutable Mutex mu_;
  UniqueFd fd_ ABSL_GUARDED_BY(mu_);  // SendTo() from any thread vs. close
};

absl::StatusOr<std::unique_ptr<UdpSocket>> UdpSocket::Bind(EventLoop* loop,
                                                           const SocketAddress& address,
                                                           const UdpSocketOptions& options,
                                                           DatagramCallback on_datagram) {
  if (address.family() != AF_INET && address.family() != AF_INET6) {
    return absl::InvalidArgumentError(
        absl::StrCat("UDP needs an IPv4 or IPv6 address, not ", address.ToString()));
  }
  int raw = ::socket(address.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (raw < 0) return Errno("socket");
  UniqueFd fd(raw);
  if (options.reuse_port) {
    if (auto s = SetIntOption(raw, SOL_SOCKET, SO_REUSEPORT, 1, "SO_REUSEPORT"); !s.ok()) return s;
  }
  if (options.receive_buffer_bytes > 0) {
    if (auto s =
            SetIntOption(raw, SOL_SOCKET, SO_RCVBUF, options.receive_buffer_bytes, "SO_RCVBUF");
        !s.ok()) {
      return s;
    }
  }
  if (options.send_buffer_bytes > 0) {
    if (auto s = SetIntOption(raw, SOL_SOCKET, SO_SNDBUF, options.send_buffer_bytes, "SO_SNDBUF");
        !s.ok()) {
      return s;
    }
  }
  if (::bind(raw, address.sockaddr(), address.length()) != 0) {
    return Errno(absl::StrCat("bind ", address.ToString()));
  }
  absl::StatusOr<SocketAddress> local = SocketAddress::LocalOf(raw);
  if (!local.ok()) return local.status();

  auto impl = std::make_shared<Impl>(loop, std::move(fd), options, std::move(on_datagram));
  absl::Status registered;
  if (loop->IsInLoopThread()) {
    registered = impl->Register();
  } else {
    Notification done;
    loop->RunInLoop([&] {
      registered = impl->Register();
      done.Notify();
    });
    done.WaitForNotification();
  }
  std::unique_ptr<UdpSocket> socket(new UdpSocket(loop, *local, impl));
  if (!registered.ok()) return registered;  // ~UdpSocket closes the fd
  return socket;
}

UdpSocket::UdpSocket(EventLoop* loop, const SocketAddress& local, std::shared_ptr<Impl> impl)
    : loop_(loop), local_(local), impl_(std::move(impl)) {}

UdpSocket::~UdpSocket() { Close(); }

absl::Status UdpSocket::SendTo(const SocketAddress& to, absl::string_view data) {
  return impl_->SendTo(to, data);
}

void UdpSocket::Close() {
  if (closed_.exchange(true)) return;
  if (loop_->IsInLoopThread()) {
    impl_->CloseInLoop();
    return;
  }
  Notification done;
  loop_->RunInLoop([&] {
    impl_->CloseInLoop();
    done.Notify();
  });
  done.WaitForNotification();
}

UdpSocketStats UdpSocket::Stats() const { return impl_->Stats(); }

}  // namespace netpoll
