#include "tests/harness/attacker.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <utility>
#include <vector>

#include "netpoll/link_buffer.h"
#include "netpoll/logging.h"
#include "proto/echo.pb.h"
#include "rpc/errors.h"
#include "rpc/internal/frame_codec.h"

namespace nprpc::testing {

int ConnectLoopback(int port, bool small_receive_buffer) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (small_receive_buffer) {
    int size = 4096;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 &&
      errno != EINPROGRESS) {
    ::close(fd);
    return -1;
  }
  return fd;
}

std::string EncodeRawCall(int64_t id, const std::string& message, absl::string_view service,
                          absl::string_view method, CompressType compress, int32_t code) {
  example::EchoRequest request;
  request.set_message(message);
  request.set_code(code);
  netpoll::LinkBuffer plain;
  NP_CHECK(SerializeToLinkBuffer(request, plain).ok());
  // EncodeRequest compresses the payload as compress_type says.
  netpoll::LinkBuffer payload = std::move(plain);
  RequestHeader header{.service_name = std::string(service),
                       .method_name = std::string(method),
                       .correlation_id = id,
                       .compress_type = compress};
  netpoll::LinkBuffer out;
  NP_CHECK(EncodeRequest(header, std::move(payload), {}, out).ok());
  return out.ToString();
}

AttackResult Attack(const AttackOptions& options) {
  const int port = options.port;
  const int connections = options.connections;
  const std::string& stream = options.stream;
  const bool repeat = options.repeat;
  const int64_t bytes_per_second = options.bytes_per_second;
  const bool read_answers = options.read_answers;
  const absl::Duration duration = options.duration;
  const std::function<bool()>& done = options.done;
  struct Conn {
    int fd = -1;
    size_t offset = 0;  // into stream
    int64_t budget = 0;
    bool done = false;
    bool closed = false;
    netpoll::LinkBuffer in;
  };
  std::vector<Conn> conns;
  for (int i = 0; i < connections; ++i)
    conns.emplace_back().fd = ConnectLoopback(port, /*small_receive_buffer=*/!read_answers);
  AttackResult result;
  const absl::Time start = absl::Now();
  const absl::Time end = start + duration;
  absl::Time last_tick = start;
  std::vector<pollfd> fds(conns.size());
  const FrameDecoder decoder;
  absl::Time last_done_check = start;
  while (absl::Now() < end) {
    const absl::Time now = absl::Now();
    if (done != nullptr && now - last_done_check >= absl::Milliseconds(100)) {
      last_done_check = now;
      if (done()) break;
    }
    if (bytes_per_second > 0) {
      const int64_t credit = static_cast<int64_t>(absl::ToDoubleSeconds(now - last_tick) *
                                                  static_cast<double>(bytes_per_second));
      if (credit > 0) {
        for (Conn& c : conns) c.budget += credit;
        last_tick = now;
      }
    }
    for (size_t i = 0; i < conns.size(); ++i) {
      Conn& c = conns[i];
      const bool want_write = !c.done && !c.closed && (bytes_per_second == 0 || c.budget > 0);
      // NOLINTNEXTLINE(google-runtime-int): pollfd::events is a short.
      auto events = static_cast<short>((want_write ? POLLOUT : 0) | (read_answers ? POLLIN : 0));
      fds[i] = {c.closed || c.fd < 0 ? -1 : c.fd, events, 0};
    }
    if (::poll(fds.data(), fds.size(), 10) <= 0) continue;
    for (size_t i = 0; i < conns.size(); ++i) {
      Conn& c = conns[i];
      if (fds[i].fd < 0) continue;
      if (fds[i].revents & (POLLERR | POLLHUP)) {
        c.closed = true;
        ++result.closed_by_server;
        continue;
      }
      if ((fds[i].revents & POLLOUT) && !c.done) {
        size_t n = std::min<size_t>(stream.size() - c.offset, 256 << 10);
        if (bytes_per_second > 0) n = std::min<size_t>(n, static_cast<size_t>(c.budget));
        const ssize_t w = ::send(c.fd, stream.data() + c.offset, n, MSG_NOSIGNAL);
        if (w > 0) {
          c.offset += static_cast<size_t>(w);
          c.budget -= w;
          result.bytes_sent += w;
          if (c.offset == stream.size()) {
            if (repeat) {
              c.offset = 0;
            } else {
              c.done = true;
            }
          }
        } else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
          c.closed = true;
          ++result.closed_by_server;
        }
      }
      if (fds[i].revents & POLLIN) {
        absl::StatusOr<size_t> r = c.in.ReadFromFd(c.fd, 1 << 16);
        if (!r.ok()) {
          c.closed = true;
          ++result.closed_by_server;
          continue;
        }
        for (;;) {
          DecodeResult d = decoder.Decode(c.in);
          if (!d.has_frame()) break;
          ++result.answers;
          const int32_t code = d.frame().meta.response().error_code();
          ++result.answers_by_code[code];
          if (code == ELIMIT) ++result.elimit_answers;
        }
      }
    }
  }
  for (Conn& c : conns) {
    if (c.fd >= 0) ::close(c.fd);
  }
  return result;
}

}  // namespace nprpc::testing
