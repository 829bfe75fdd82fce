#include "netpoll/socket.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>

#include "absl/strings/str_cat.h"

namespace netpoll {
namespace {

absl::Status Errno(absl::string_view what) {
  return absl::UnavailableError(absl::StrCat(what, ": ", strerror(errno)));
}

absl::Status SetIntOption(int fd, int level, int name, int value, absl::string_view what) {
  if (setsockopt(fd, level, name, &value, sizeof(value)) != 0) return Errno(what);
  return absl::OkStatus();
}

}  // namespace

void UniqueFd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

absl::StatusOr<UniqueFd> CreateStreamSocket(int family) {
  int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("socket");
  return UniqueFd(fd);
}

absl::StatusOr<UniqueFd> Listen(const SocketAddress& address, const ListenOptions& options) {
  auto fd = CreateStreamSocket(address.family());
  if (!fd.ok()) return fd.status();
  if (address.is_unix()) {
    const auto* un = reinterpret_cast<const struct sockaddr_un*>(address.sockaddr());
    if (un->sun_path[0] != '\0') ::unlink(un->sun_path);
  } else {
    if (auto s = SetIntOption(fd->get(), SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR"); !s.ok()) {
      return s;
    }
    if (options.reuse_port) {
      if (auto s = SetIntOption(fd->get(), SOL_SOCKET, SO_REUSEPORT, 1, "SO_REUSEPORT"); !s.ok()) {
        return s;
      }
    }
  }
  if (::bind(fd->get(), address.sockaddr(), address.length()) != 0) {
    return Errno(absl::StrCat("bind ", address.ToString()));
  }
  if (::listen(fd->get(), options.backlog) != 0) {
    return Errno(absl::StrCat("listen ", address.ToString()));
  }
  return fd;
}

absl::Status SetNoDelay(int fd, bool on) {
  return SetIntOption(fd, IPPROTO_TCP, TCP_NODELAY, on ? 1 : 0, "TCP_NODELAY");
}

absl::Status SetKeepAlive(int fd, bool on) {
  return SetIntOption(fd, SOL_SOCKET, SO_KEEPALIVE, on ? 1 : 0, "SO_KEEPALIVE");
}

absl::Status SetTcpKeepAlive(int fd, const TcpKeepAliveOptions& options) {
  if (!options.enabled) return absl::OkStatus();
  auto seconds = [](absl::Duration d) {
    return static_cast<int>(std::max<int64_t>(1, absl::ToInt64Seconds(d)));
  };
  if (absl::Status s = SetKeepAlive(fd, true); !s.ok()) return s;
  if (absl::Status s =
          SetIntOption(fd, IPPROTO_TCP, TCP_KEEPIDLE, seconds(options.idle), "TCP_KEEPIDLE");
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          SetIntOption(fd, IPPROTO_TCP, TCP_KEEPINTVL, seconds(options.interval), "TCP_KEEPINTVL");
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          SetIntOption(fd, IPPROTO_TCP, TCP_KEEPCNT, std::max(1, options.count), "TCP_KEEPCNT");
      !s.ok()) {
    return s;
  }
  const absl::Duration user_timeout = options.idle + options.interval * std::max(1, options.count);
  return SetIntOption(fd, IPPROTO_TCP, TCP_USER_TIMEOUT,
                      static_cast<int>(absl::ToInt64Milliseconds(user_timeout)),
                      "TCP_USER_TIMEOUT");
}

absl::Status SocketError(int fd) {
  int error = 0;
  socklen_t len = sizeof(error);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0) return Errno("SO_ERROR");
  if (error != 0) return absl::UnavailableError(strerror(error));
  return absl::OkStatus();
}

bool IsSelfConnection(const SocketAddress& local, const SocketAddress& peer) {
  return !local.is_unix() && local.ToString() == peer.ToString();  // address and port
}

absl::StatusOr<int> RaiseFdLimit() {
  struct rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return Errno("getrlimit");
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) return Errno("setrlimit");
  }
  return static_cast<int>(limit.rlim_cur);
}

}  // namespace netpoll
