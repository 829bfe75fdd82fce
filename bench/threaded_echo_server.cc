// threaded_echo_server: the "standard net" baseline for the echo benchmark.
// A blocking accept loop hands every connection to its own std::thread, which
// echoes with blocking read()/write() until the peer closes.
//
//   bazel-bin/bench/threaded_echo_server --listen=127.0.0.1:0
//   listening on 127.0.0.1:41234
//
// Runs until killed.
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "bench/socket_util.h"
#include "netpoll/logging.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:0", "loopback host:port to listen on; port 0 = any");

namespace {

constexpr size_t kBufferSize = 16 * 1024;

// Echoes until EOF or an error, then closes `fd`.
void ServeConnection(int fd) {
  char buffer[kBufferSize];
  while (true) {
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    ssize_t written = 0;
    while (written < n) {
      const ssize_t w = write(fd, buffer + written, static_cast<size_t>(n - written));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        close(fd);
        return;
      }
      written += w;
    }
  }
  close(fd);
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  // A peer that closes while we write must be an error return, not a kill.
  signal(SIGPIPE, SIG_IGN);
  absl::StatusOr<uint64_t> fd_limit = bench::RaiseFdLimitToHard();
  if (!fd_limit.ok()) NP_LOG(WARNING) << fd_limit.status();

  absl::StatusOr<sockaddr_in> addr = bench::ParseLoopbackAddress(absl::GetFlag(FLAGS_listen));
  NP_CHECK(addr.ok()) << addr.status();
  absl::StatusOr<int> listen_fd = bench::ListenTcp(*addr, {});
  NP_CHECK(listen_fd.ok()) << listen_fd.status();
  absl::StatusOr<int> port = bench::LocalPort(*listen_fd);
  NP_CHECK(port.ok()) << port.status();
  addr->sin_port = htons(static_cast<uint16_t>(*port));
  std::printf("listening on %s\n", bench::FormatAddress(*addr).c_str());
  std::fflush(stdout);

  while (true) {
    const int fd = accept4(*listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      const absl::Status status = bench::ErrnoStatus("accept4");
      NP_LOG(ERROR) << status;
      // EMFILE and friends: back off instead of spinning.
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    (void)bench::SetNoDelay(fd);
    std::thread(ServeConnection, fd).detach();
  }
}
