// SocketAddress: an IPv4, IPv6 or Unix-domain socket address.
//
//   auto addr = SocketAddress::Parse("127.0.0.1:8000");   // or "[::1]:8000",
//                                                         // "unix:/tmp/x.sock"
//   if (!addr.ok()) return addr.status();
//
// Parse() takes numeric addresses only and never blocks. Names ("localhost:80")
// go through Resolve(), which blocks and so must never run on a loop thread
// (Dialer resolves on its own thread).
//
// Thread safety: a value type; const methods are safe from any thread.
#ifndef NETPOLL_SOCKET_ADDRESS_H_
#define NETPOLL_SOCKET_ADDRESS_H_

#include <sys/socket.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace netpoll {

class SocketAddress {
 public:
  SocketAddress() = default;

  // "a.b.c.d:port", "[v6]:port", "unix:/path" (or "unix:@abstract").
  static absl::StatusOr<SocketAddress> Parse(absl::string_view text);
  // Like Parse(), and also "host:port" resolved with getaddrinfo (blocking).
  static absl::StatusOr<std::vector<SocketAddress>> Resolve(absl::string_view text);
  // The local or peer address of a connected or bound socket.
  static absl::StatusOr<SocketAddress> LocalOf(int fd);
  static absl::StatusOr<SocketAddress> PeerOf(int fd);
  static SocketAddress FromSockaddr(const struct sockaddr* addr, socklen_t len);

  int family() const { return storage_.ss_family; }
  bool is_unix() const { return family() == AF_UNIX; }
  const struct sockaddr* sockaddr() const {
    return reinterpret_cast<const struct sockaddr*>(&storage_);
  }
  socklen_t length() const { return length_; }
  int port() const;  // 0 for Unix-domain addresses

  // The form Parse() accepts.
  std::string ToString() const;

 private:
  struct sockaddr_storage storage_ = {};
  socklen_t length_ = 0;
};

}  // namespace netpoll

#endif  // NETPOLL_SOCKET_ADDRESS_H_
