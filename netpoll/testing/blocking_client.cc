#include "netpoll/testing/blocking_client.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace netpoll::testing {

absl::StatusOr<BlockingClient> BlockingClient::Connect(const SocketAddress& address,
                                                       absl::Duration timeout) {
  int fd = ::socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("socket: ", strerror(errno)));
  UniqueFd owned(fd);
  struct timeval tv;
  tv.tv_sec = absl::ToInt64Seconds(timeout);
  tv.tv_usec = absl::ToInt64Microseconds(timeout) % 1000000;
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  if (::connect(fd, address.sockaddr(), address.length()) != 0) {
    return absl::UnavailableError(absl::StrCat("connect: ", strerror(errno)));
  }
  return BlockingClient(std::move(owned), timeout);
}

absl::Status BlockingClient::SendAll(absl::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::UnavailableError(absl::StrCat("send: ", strerror(errno)));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> BlockingClient::ReadExactly(size_t n) {
  std::string out(n, '\0');
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::recv(fd_.get(), out.data() + got, n - got, 0);
    if (r == 0) return absl::UnavailableError(absl::StrCat("EOF after ", got, " of ", n, " bytes"));
    if (r < 0) {
      if (errno == EINTR) continue;
      return absl::UnavailableError(absl::StrCat("recv: ", strerror(errno)));
    }
    got += static_cast<size_t>(r);
  }
  return out;
}

absl::StatusOr<std::string> BlockingClient::ReadUntilEof() {
  std::string out;
  char buf[4096];
  while (true) {
    ssize_t r = ::recv(fd_.get(), buf, sizeof(buf), 0);
    if (r == 0) return out;
    if (r < 0) {
      if (errno == EINTR) continue;
      return absl::UnavailableError(absl::StrCat("recv: ", strerror(errno)));
    }
    out.append(buf, static_cast<size_t>(r));
  }
}

bool BlockingClient::WaitForClose(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  char buf[4096];
  while (absl::Now() < deadline) {
    struct pollfd pfd = {fd_.get(), POLLIN, 0};
    int ms = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now())) + 1;
    if (::poll(&pfd, 1, ms) <= 0) continue;
    ssize_t r = ::recv(fd_.get(), buf, sizeof(buf), MSG_DONTWAIT);
    if (r == 0) return true;
    if (r < 0 && errno != EAGAIN && errno != EINTR) return true;  // reset
  }
  return false;
}

void BlockingClient::ShutdownWrite() { ::shutdown(fd_.get(), SHUT_WR); }

void BlockingClient::Reset() {
  struct linger linger = {1, 0};
  setsockopt(fd_.get(), SOL_SOCKET, SO_LINGER, &linger, sizeof(linger));
  fd_.reset();
}

int CountOpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  int count = 0;
  while (struct dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  closedir(dir);
  return count - 1;  // the DIR's own fd
}

int64_t VmRssKiB() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      int64_t kib = -1;
      return absl::SimpleAtoi(absl::StripAsciiWhitespace(absl::StripSuffix(
                                  absl::StripAsciiWhitespace(line.substr(6)), "kB")),
                              &kib)
                 ? kib
                 : -1;
    }
  }
  return -1;
}

}  // namespace netpoll::testing
