// BlockingClient: a plain blocking socket for tests, to talk to a server the
// way an independent peer would (no netpoll code on the client side).
//
// Thread safety: one thread at a time.
#ifndef NETPOLL_TESTING_BLOCKING_CLIENT_H_
#define NETPOLL_TESTING_BLOCKING_CLIENT_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "netpoll/socket.h"
#include "netpoll/socket_address.h"

namespace netpoll::testing {

class BlockingClient {
 public:
  static absl::StatusOr<BlockingClient> Connect(const SocketAddress& address,
                                                absl::Duration timeout = absl::Seconds(5));
  absl::Status SendAll(absl::string_view data);
  // Reads exactly n bytes or fails (timeout, EOF, error).
  absl::StatusOr<std::string> ReadExactly(size_t n);
  // Reads whatever arrives until EOF; OK with the bytes, error on timeout.
  absl::StatusOr<std::string> ReadUntilEof();
  // True when the peer closed (read returns 0 or a reset) within the timeout.
  bool WaitForClose(absl::Duration timeout);
  void ShutdownWrite();
  // Close with SO_LINGER 0: the peer sees a reset.
  void Reset();
  int fd() const { return fd_.get(); }

 private:
  BlockingClient(UniqueFd fd, absl::Duration timeout) : fd_(std::move(fd)), timeout_(timeout) {}
  UniqueFd fd_;
  absl::Duration timeout_;
};

// Open fds of this process (entries of /proc/self/fd).
int CountOpenFds();

// Resident memory of this process (VmRSS of /proc/self/status), KiB; -1 when
// unreadable.
int64_t VmRssKiB();

}  // namespace netpoll::testing

#endif  // NETPOLL_TESTING_BLOCKING_CLIENT_H_
