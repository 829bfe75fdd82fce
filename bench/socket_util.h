// Small socket helpers shared by the echo benchmark programs: loopback address
// parsing, the file-descriptor limit, and listening sockets.
//
//   absl::StatusOr<sockaddr_in> addr = bench::ParseLoopbackAddress("127.0.0.1:0");
//   absl::StatusOr<int> fd = bench::ListenTcp(*addr, {.reuse_port = true});
//   absl::StatusOr<int> port = bench::LocalPort(*fd);
//
// The benchmarks only ever talk to loopback, so address parsing rejects
// anything outside 127.0.0.0/8.
//
// Thread safety: every function is safe from any thread.
#ifndef BENCH_SOCKET_UTIL_H_
#define BENCH_SOCKET_UTIL_H_

#include <netinet/in.h>

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace bench {

// Parses "host:port" where host is "localhost" or an IPv4 literal in
// 127.0.0.0/8 and port is in [0, 65535]. Returns InvalidArgument otherwise.
absl::StatusOr<sockaddr_in> ParseLoopbackAddress(absl::string_view host_port);

// "a.b.c.d:port".
std::string FormatAddress(const sockaddr_in& addr);

// Raises the soft RLIMIT_NOFILE to the hard limit and returns the new soft
// limit. Needed to open more than ~1,000 sockets.
absl::StatusOr<uint64_t> RaiseFdLimitToHard();

struct ListenOptions {
  bool reuse_port = false;   // SO_REUSEPORT, for one listening socket per thread
  bool nonblocking = false;  // O_NONBLOCK on the listening socket
  int backlog = 4096;
};

// A bound, listening TCP socket (SO_REUSEADDR, close-on-exec). The caller owns
// the returned descriptor.
absl::StatusOr<int> ListenTcp(const sockaddr_in& addr, const ListenOptions& options);

// The local port a socket is bound to.
absl::StatusOr<int> LocalPort(int fd);

// Sets TCP_NODELAY; the echo benchmarks measure latency, not batching.
absl::Status SetNoDelay(int fd);

// An absl::Status for the current errno, prefixed with `what`.
absl::Status ErrnoStatus(absl::string_view what);

}  // namespace bench

#endif  // BENCH_SOCKET_UTIL_H_
