#include "bench/socket_util.h"

#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace bench {

absl::Status ErrnoStatus(absl::string_view what) {
  const int err = errno;
  return absl::Status(absl::ErrnoToStatusCode(err), absl::StrCat(what, ": ", std::strerror(err)));
}

absl::StatusOr<sockaddr_in> ParseLoopbackAddress(absl::string_view host_port) {
  const size_t colon = host_port.rfind(':');
  if (colon == absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat("want host:port, got \"", host_port, "\""));
  }
  std::string host(host_port.substr(0, colon));
  const absl::string_view port_text = host_port.substr(colon + 1);
  int port = 0;
  if (!absl::SimpleAtoi(port_text, &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("bad port in \"", host_port, "\""));
  }
  if (host == "localhost") host = "127.0.0.1";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("not an IPv4 address: \"", host, "\""));
  }
  if ((ntohl(addr.sin_addr.s_addr) >> 24) != 127) {
    return absl::InvalidArgumentError(
        absl::StrCat("benchmarks run on loopback only (127.0.0.0/8), got ", host));
  }
  return addr;
}

std::string FormatAddress(const sockaddr_in& addr) {
  char host[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &addr.sin_addr, host, sizeof(host));
  return absl::StrCat(host, ":", ntohs(addr.sin_port));
}

absl::StatusOr<uint64_t> RaiseFdLimitToHard() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return ErrnoStatus("getrlimit(RLIMIT_NOFILE)");
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) return ErrnoStatus("setrlimit(RLIMIT_NOFILE)");
  }
  return static_cast<uint64_t>(limit.rlim_cur);
}

absl::StatusOr<int> ListenTcp(const sockaddr_in& addr, const ListenOptions& options) {
  int type = SOCK_STREAM | SOCK_CLOEXEC;
  if (options.nonblocking) type |= SOCK_NONBLOCK;
  const int fd = socket(AF_INET, type, 0);
  if (fd < 0) return ErrnoStatus("socket");
  auto fail = [fd](absl::string_view what) {
    absl::Status status = ErrnoStatus(what);
    close(fd);
    return status;
  };
  const int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) {
    return fail("setsockopt(SO_REUSEADDR)");
  }
  if (options.reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
    return fail("setsockopt(SO_REUSEPORT)");
  }
  if (bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    return fail(absl::StrCat("bind ", FormatAddress(addr)));
  }
  if (listen(fd, options.backlog) != 0) return fail("listen");
  return fd;
}

absl::StatusOr<int> LocalPort(int fd) {
  sockaddr_in addr{};
  socklen_t len = sizeof(addr);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return ErrnoStatus("getsockname");
  }
  return static_cast<int>(ntohs(addr.sin_port));
}

absl::Status SetNoDelay(int fd) {
  const int one = 1;
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) {
    return ErrnoStatus("setsockopt(TCP_NODELAY)");
  }
  return absl::OkStatus();
}

}  // namespace bench
