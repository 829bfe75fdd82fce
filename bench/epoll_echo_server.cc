// epoll_echo_server: the "minimal epoll loop" baseline for the echo benchmark.
// No framework: each thread owns a listening socket (SO_REUSEPORT when
// --threads > 1) and a level-triggered epoll loop over non-blocking sockets,
// and writes back whatever it reads. When the peer does not take the whole
// echo, the rest is kept per connection and reading stops until it is flushed,
// so a slow reader cannot make the server buffer without bound.
//
//   bazel-bin/bench/epoll_echo_server --listen=127.0.0.1:0 --threads=1
//   listening on 127.0.0.1:41234
//
// Runs until killed.
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "bench/socket_util.h"
#include "netpoll/logging.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:0", "loopback host:port to listen on; port 0 = any");
ABSL_FLAG(int, threads, 1, "event-loop threads, each with its own SO_REUSEPORT listener");

namespace {

constexpr size_t kReadBufferSize = 64 * 1024;
constexpr int kMaxEvents = 256;
constexpr int kMaxAcceptsPerWakeup = 256;

// One epoll loop on one thread; owns its listening socket and its connections.
class EchoLoop {
 public:
  explicit EchoLoop(int listen_fd)
      : listen_fd_(listen_fd),
        epoll_fd_(epoll_create1(EPOLL_CLOEXEC)),
        spare_fd_(open("/dev/null", O_RDONLY | O_CLOEXEC)),
        buffer_(new char[kReadBufferSize]) {
    NP_CHECK(epoll_fd_ >= 0) << bench::ErrnoStatus("epoll_create1");
    Watch(EPOLL_CTL_ADD, listen_fd_, EPOLLIN);
  }
  EchoLoop(const EchoLoop&) = delete;
  EchoLoop& operator=(const EchoLoop&) = delete;

  // Never returns.
  void Run() {
    epoll_event events[kMaxEvents];
    while (true) {
      const int n = epoll_wait(epoll_fd_, events, kMaxEvents, -1);
      if (n < 0) {
        NP_CHECK(errno == EINTR) << bench::ErrnoStatus("epoll_wait");
        continue;
      }
      for (int i = 0; i < n; ++i) {
        const int fd = events[i].data.fd;
        if (fd == listen_fd_) {
          Accept();
        } else if (events[i].events & EPOLLOUT) {
          Flush(fd);
        } else {
          Echo(fd);  // EPOLLIN, EPOLLHUP or EPOLLERR: read() tells which
        }
      }
    }
  }

 private:
  void Watch(int op, int fd, uint32_t events) {
    epoll_event event{};
    event.events = events;
    event.data.fd = fd;
    NP_CHECK(epoll_ctl(epoll_fd_, op, fd, &event) == 0) << bench::ErrnoStatus("epoll_ctl");
  }

  void Accept() {
    for (int i = 0; i < kMaxAcceptsPerWakeup; ++i) {
      const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd >= 0) {
        (void)bench::SetNoDelay(fd);
        if (static_cast<size_t>(fd) >= unsent_.size()) unsent_.resize(fd + 1);
        Watch(EPOLL_CTL_ADD, fd, EPOLLIN);
        continue;
      }
      if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED) return;
      if ((errno == EMFILE || errno == ENFILE) && spare_fd_ >= 0) {
        // Out of descriptors: accept and drop the connection with the spare
        // one, so the level-triggered listener does not spin.
        close(spare_fd_);
        const int dropped = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (dropped >= 0) close(dropped);
        spare_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
        NP_LOG(WARNING) << "out of file descriptors: dropped a connection";
        return;
      }
      const absl::Status status = bench::ErrnoStatus("accept4");
      NP_LOG(ERROR) << status;
      return;
    }
  }

  void Echo(int fd) {
    const ssize_t n = read(fd, buffer_.get(), kReadBufferSize);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
      Close(fd);
      return;
    }
    if (n < 0) return;
    const ssize_t w = write(fd, buffer_.get(), static_cast<size_t>(n));
    if (w == n) return;
    if (w < 0 && errno != EAGAIN && errno != EINTR) {
      Close(fd);
      return;
    }
    const size_t done = w < 0 ? 0 : static_cast<size_t>(w);
    unsent_[fd].assign(buffer_.get() + done, static_cast<size_t>(n) - done);
    Watch(EPOLL_CTL_MOD, fd, EPOLLOUT);
  }

  void Flush(int fd) {
    std::string& unsent = unsent_[fd];
    const ssize_t w = write(fd, unsent.data(), unsent.size());
    if (w < 0) {
      if (errno != EAGAIN && errno != EINTR) Close(fd);
      return;
    }
    unsent.erase(0, static_cast<size_t>(w));
    if (!unsent.empty()) return;
    std::string().swap(unsent);  // give the memory back: idle connections cost nothing here
    Watch(EPOLL_CTL_MOD, fd, EPOLLIN);
  }

  void Close(int fd) {
    std::string().swap(unsent_[fd]);
    close(fd);  // also removes it from the epoll set
  }

  const int listen_fd_;
  const int epoll_fd_;
  int spare_fd_;                     // reserved descriptor for the EMFILE case
  std::unique_ptr<char[]> buffer_;   // shared read buffer of this loop
  std::vector<std::string> unsent_;  // by fd: echo bytes the peer has not taken yet
};

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  // A peer that closes while we write must be an error return, not a kill.
  signal(SIGPIPE, SIG_IGN);
  const int threads = absl::GetFlag(FLAGS_threads);
  NP_CHECK(threads >= 1 && threads <= 64) << "--threads must be in [1, 64]";
  absl::StatusOr<uint64_t> fd_limit = bench::RaiseFdLimitToHard();
  if (!fd_limit.ok()) NP_LOG(WARNING) << fd_limit.status();

  absl::StatusOr<sockaddr_in> addr = bench::ParseLoopbackAddress(absl::GetFlag(FLAGS_listen));
  NP_CHECK(addr.ok()) << addr.status();
  const bench::ListenOptions options{.reuse_port = threads > 1, .nonblocking = true};
  std::vector<int> listen_fds;
  for (int i = 0; i < threads; ++i) {
    absl::StatusOr<int> fd = bench::ListenTcp(*addr, options);
    NP_CHECK(fd.ok()) << fd.status();
    listen_fds.push_back(*fd);
    if (i == 0) {  // the others bind the port the first one got
      absl::StatusOr<int> port = bench::LocalPort(*fd);
      NP_CHECK(port.ok()) << port.status();
      addr->sin_port = htons(static_cast<uint16_t>(*port));
    }
  }
  std::printf("listening on %s\n", bench::FormatAddress(*addr).c_str());
  std::fflush(stdout);

  std::vector<std::thread> workers;
  for (int i = 1; i < threads; ++i) {
    workers.emplace_back([fd = listen_fds[i]] { EchoLoop(fd).Run(); });
  }
  EchoLoop(listen_fds[0]).Run();
}
