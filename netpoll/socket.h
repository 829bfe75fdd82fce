// Socket helpers: an owning fd type and the socket calls the transport makes.
//
// Thread safety: UniqueFd is a value type (one owner); the free functions are
// safe from any thread.
#ifndef NETPOLL_SOCKET_H_
#define NETPOLL_SOCKET_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "netpoll/socket_address.h"

namespace netpoll {

// Owns one file descriptor and closes it on destruction.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// A non-blocking, close-on-exec stream socket for `family`.
absl::StatusOr<UniqueFd> CreateStreamSocket(int family);

struct ListenOptions {
  int backlog = 4096;
  bool reuse_port = false;  // SO_REUSEPORT: one listener per loop
};

// socket + SO_REUSEADDR (+ SO_REUSEPORT) + bind + listen, non-blocking.
// Removes a stale Unix-domain socket file first.
absl::StatusOr<UniqueFd> Listen(const SocketAddress& address, const ListenOptions& options);

absl::Status SetNoDelay(int fd, bool on);
absl::Status SetKeepAlive(int fd, bool on);

// TCP keepalive probes for a connection that may go silent (a peer behind a
// blackhole): after `idle` without traffic, a probe every `interval`; `count`
// unanswered probes close the connection. TCP_USER_TIMEOUT is set to
// idle + interval * count too, so data that stays unacknowledged that long
// (requests sent into the blackhole) also closes it.
struct TcpKeepAliveOptions {
  bool enabled = false;
  absl::Duration idle = absl::Seconds(10);
  absl::Duration interval = absl::Seconds(2);
  int count = 3;
};

// SO_KEEPALIVE, TCP_KEEPIDLE/KEEPINTVL/KEEPCNT (whole seconds, at least 1)
// and TCP_USER_TIMEOUT on a TCP socket; nothing when !options.enabled.
absl::Status SetTcpKeepAlive(int fd, const TcpKeepAliveOptions& options);
// The pending error of a socket (SO_ERROR), as a Status.
absl::Status SocketError(int fd);
// True when a TCP connection's two ends (LocalOf, and PeerOf or the dialed
// address) are the same: with nothing listening on a local port, connect()
// may pick that very port as its ephemeral source and complete a
// simultaneous open with itself (then holds the port a restarting server
// wants, and reads back what it writes).
bool IsSelfConnection(const SocketAddress& local, const SocketAddress& peer);

// Raises RLIMIT_NOFILE's soft limit to its hard limit; returns the new limit.
absl::StatusOr<int> RaiseFdLimit();

}  // namespace netpoll

#endif  // NETPOLL_SOCKET_H_
