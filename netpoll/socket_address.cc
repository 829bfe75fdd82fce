#include "netpoll/socket_address.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

#include <cstddef>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace netpoll {
namespace {

absl::Status SplitHostPort(absl::string_view text, std::string* host, int* port) {
  size_t colon = text.rfind(':');
  if (colon == absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat("address without port: '", text, "'"));
  }
  absl::string_view h = text.substr(0, colon);
  if (absl::ConsumePrefix(&h, "[")) {
    if (!absl::ConsumeSuffix(&h, "]")) {
      return absl::InvalidArgumentError(absl::StrCat("unbalanced '[' in '", text, "'"));
    }
  }
  int p;
  if (!absl::SimpleAtoi(text.substr(colon + 1), &p) || p < 0 || p > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("bad port in '", text, "'"));
  }
  *host = std::string(h);
  *port = p;
  return absl::OkStatus();
}

}  // namespace

SocketAddress SocketAddress::FromSockaddr(const struct sockaddr* addr, socklen_t len) {
  SocketAddress out;
  if (len > sizeof(out.storage_)) len = sizeof(out.storage_);
  memcpy(&out.storage_, addr, len);
  out.length_ = len;
  return out;
}

absl::StatusOr<SocketAddress> SocketAddress::Parse(absl::string_view text) {
  if (absl::ConsumePrefix(&text, "unix:")) {
    struct sockaddr_un un = {};
    un.sun_family = AF_UNIX;
    if (text.empty() || text.size() >= sizeof(un.sun_path)) {
      return absl::InvalidArgumentError(absl::StrCat("bad unix socket path '", text, "'"));
    }
    memcpy(un.sun_path, text.data(), text.size());
    socklen_t len = offsetof(struct sockaddr_un, sun_path) + text.size();
    if (text[0] == '@') {
      un.sun_path[0] = '\0';  // abstract namespace
    } else {
      len += 1;  // trailing NUL
    }
    return FromSockaddr(reinterpret_cast<struct sockaddr*>(&un), len);
  }
  std::string host;
  int port;
  if (absl::Status s = SplitHostPort(text, &host, &port); !s.ok()) return s;
  struct sockaddr_in v4 = {};
  if (inet_pton(AF_INET, host.c_str(), &v4.sin_addr) == 1) {
    v4.sin_family = AF_INET;
    v4.sin_port = htons(static_cast<uint16_t>(port));
    return FromSockaddr(reinterpret_cast<struct sockaddr*>(&v4), sizeof(v4));
  }
  struct sockaddr_in6 v6 = {};
  if (inet_pton(AF_INET6, host.c_str(), &v6.sin6_addr) == 1) {
    v6.sin6_family = AF_INET6;
    v6.sin6_port = htons(static_cast<uint16_t>(port));
    return FromSockaddr(reinterpret_cast<struct sockaddr*>(&v6), sizeof(v6));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("not a numeric address: '", text, "' (names need Resolve())"));
}

absl::StatusOr<std::vector<SocketAddress>> SocketAddress::Resolve(absl::string_view text) {
  if (auto parsed = Parse(text); parsed.ok()) return std::vector<SocketAddress>{*parsed};
  std::string host;
  int port;
  if (absl::Status s = SplitHostPort(text, &host, &port); !s.ok()) return s;
  struct addrinfo hints = {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  struct addrinfo* result = nullptr;
  std::string service = absl::StrCat(port);
  int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &result);
  if (rc != 0) {
    return absl::UnavailableError(absl::StrCat("resolve '", host, "': ", gai_strerror(rc)));
  }
  std::vector<SocketAddress> out;
  for (struct addrinfo* ai = result; ai != nullptr; ai = ai->ai_next) {
    out.push_back(FromSockaddr(ai->ai_addr, ai->ai_addrlen));
  }
  freeaddrinfo(result);
  if (out.empty()) return absl::UnavailableError(absl::StrCat("no address for '", host, "'"));
  return out;
}

absl::StatusOr<SocketAddress> SocketAddress::LocalOf(int fd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  if (getsockname(fd, reinterpret_cast<struct sockaddr*>(&ss), &len) != 0) {
    return absl::InternalError(absl::StrCat("getsockname: ", strerror(errno)));
  }
  return FromSockaddr(reinterpret_cast<struct sockaddr*>(&ss), len);
}

absl::StatusOr<SocketAddress> SocketAddress::PeerOf(int fd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  if (getpeername(fd, reinterpret_cast<struct sockaddr*>(&ss), &len) != 0) {
    return absl::UnavailableError(absl::StrCat("getpeername: ", strerror(errno)));
  }
  return FromSockaddr(reinterpret_cast<struct sockaddr*>(&ss), len);
}

int SocketAddress::port() const {
  if (family() == AF_INET) {
    return ntohs(reinterpret_cast<const struct sockaddr_in*>(&storage_)->sin_port);
  }
  if (family() == AF_INET6) {
    return ntohs(reinterpret_cast<const struct sockaddr_in6*>(&storage_)->sin6_port);
  }
  return 0;
}

std::string SocketAddress::ToString() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family() == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const struct sockaddr_in*>(&storage_)->sin_addr, buf,
              sizeof(buf));
    return absl::StrCat(buf, ":", port());
  }
  if (family() == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const struct sockaddr_in6*>(&storage_)->sin6_addr, buf,
              sizeof(buf));
    return absl::StrCat("[", buf, "]:", port());
  }
  if (family() == AF_UNIX) {
    const auto* un = reinterpret_cast<const struct sockaddr_un*>(&storage_);
    size_t path_len = length_ - offsetof(struct sockaddr_un, sun_path);
    if (path_len == 0) return "unix:";
    if (un->sun_path[0] == '\0') {
      return absl::StrCat("unix:@", absl::string_view(un->sun_path + 1, path_len - 1));
    }
    return absl::StrCat("unix:", absl::string_view(un->sun_path, strnlen(un->sun_path, path_len)));
  }
  return "<unknown address>";
}

}  // namespace netpoll
