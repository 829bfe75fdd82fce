// Fuzz target: the server's HTTP/2 + gRPC path (rpc/internal/grpc_protocol),
// through a real nprpc::Server. nghttp2 itself is fuzzed upstream; what is
// fuzzed here is our glue: sessions, streams, headers to calls, deframing,
// decompression, flow control, cancellation, the accounting of calls.
//
// One process-wide server (made on the first input, never destroyed) serves
// example.EchoService (unary) and fuzz.Streams (Bidi: echoes each message on
// the loop; Server: answers min(code, 16) messages from the worker pool),
// with small limits so that the refusal paths run: 8 streams per connection,
// 64 KiB messages, 4 KiB headers, 20 resets a second.
//
// Input: byte 0 seeds how the rest is cut into writes (arbitrary chunkings);
// the rest follows the HTTP/2 client preface, which the target sends first.
// Per input: connect, send the chunks (while reading what the server
// sends), half-close, read until the server closes. Invariants:
//   - the server's bytes are well-formed HTTP/2 frames, the first one its
//     SETTINGS, HEADERS/DATA only on client (odd) streams;
//   - the server closes the connection within 20 seconds of the half-close
//     (no hang: streams left waiting are cancelled);
//   - every call completes exactly once: once the connection is gone, no
//     call is in flight and the server's received = succeeded + failed
//     (each request looked up is answered or refused once);
//   - the server keeps serving: the next input connects again.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "netpoll/logging.h"
#include "netpoll/testing/wait.h"
#include "proto/echo.pb.h"
#include "rpc/internal/grpc_protocol.h"
#include "rpc/internal/testing/function_stream_handler.h"
#include "rpc/server.h"
#include "rpc/service.h"
#include "rpc/stream_core.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/split_by_seed.h"
#include "tests/harness/echo_service.h"

namespace nprpc::fuzz {
namespace {

using example::EchoRequest;
using example::EchoResponse;

constexpr absl::Duration kCloseTimeout = absl::Seconds(20);

using StreamHandler = nprpc::testing::FunctionStreamHandler;

// Echoes each request until the client half-closes, on the loop.
struct BidiEcho : std::enable_shared_from_this<BidiEcho> {
  explicit BidiEcho(std::shared_ptr<ServerStreamCore> s) : stream(std::move(s)) {}
  void Next() {
    stream->Read(&request, [self = shared_from_this()](bool ok) {
      if (!ok) {
        self->stream->Finish(absl::OkStatus());
        return;
      }
      self->response.set_message(self->request.message());
      self->stream->Write(self->response, [self](bool written) {
        if (written) {
          self->Next();
        } else {
          self->stream->Finish(absl::CancelledError("write failed"));
        }
      });
    });
  }
  std::shared_ptr<ServerStreamCore> stream;
  EchoRequest request;
  EchoResponse response;
};

// Reads one request, writes min(code, 16) answers one after the other.
struct ServerStreamer : std::enable_shared_from_this<ServerStreamer> {
  explicit ServerStreamer(std::shared_ptr<ServerStreamCore> s) : stream(std::move(s)) {}
  void Start() {
    stream->Read(&request, [self = shared_from_this()](bool ok) {
      if (!ok) {
        self->stream->Finish(absl::InvalidArgumentError("no request"));
        return;
      }
      self->left = std::clamp(self->request.code(), 0, 16);
      self->response.set_message(self->request.message());
      self->WriteNext();
    });
  }
  void WriteNext() {
    if (left-- <= 0) {
      stream->Finish(absl::OkStatus());
      return;
    }
    stream->Write(response, [self = shared_from_this()](bool ok) {
      if (ok) {
        self->WriteNext();
      } else {
        self->stream->Finish(absl::CancelledError("write failed"));
      }
    });
  }
  std::shared_ptr<ServerStreamCore> stream;
  EchoRequest request;
  EchoResponse response;
  int left = 0;
};

Server& GetServer() {
  static Server* const server = [] {
    netpoll::SetMinLogSeverity(netpoll::LogSeverity::kError);  // protocol errors are expected
    ServerOptions options;
    options.num_io_loops = 1;
    options.num_worker_threads = 2;
    options.grpc_max_concurrent_streams = 8;
    options.grpc_max_receive_message_size = 64 << 10;
    options.max_http_header_size = 4096;
    options.grpc_max_resets_per_second = 20;
    options.brpc_error_prefix = false;
    auto* s = new Server(options);
    NP_CHECK(s->AddService(testing::NewEchoService()).ok());
    auto streams = std::make_unique<Service>("fuzz.Streams");
    using Mode = MethodHandler::ExecutionMode;
    NP_CHECK(streams
                 ->AddMethod("Bidi", std::make_unique<StreamHandler>(
                                         StreamKind::kBidiStreaming, Mode::kIoLoop,
                                         [](std::shared_ptr<ServerStreamCore> stream) {
                                           std::make_shared<BidiEcho>(std::move(stream))->Next();
                                         }))
                 .ok());
    NP_CHECK(streams
                 ->AddMethod("Server",
                             std::make_unique<StreamHandler>(
                                 StreamKind::kServerStreaming, Mode::kWorkerPool,
                                 [](std::shared_ptr<ServerStreamCore> stream) {
                                   std::make_shared<ServerStreamer>(std::move(stream))->Start();
                                 }))
                 .ok());
    NP_CHECK(s->AddService(std::move(streams)).ok());
    absl::Status started = s->Start("127.0.0.1:0");
    NP_CHECK(started.ok()) << started;
    return s;
  }();
  return *server;
}

int Connect(const netpoll::SocketAddress& address) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  FUZZ_CHECK(fd >= 0) << std::strerror(errno);
  FUZZ_CHECK(::connect(fd, address.sockaddr(), address.length()) == 0) << std::strerror(errno);
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

// Checks the server's bytes frame by frame (a trailing partial frame is
// fine while the connection is open; checked at the end by the caller).
struct FrameChecker {
  std::string buffer;
  size_t frames = 0;

  void Add(absl::string_view bytes) {
    buffer.append(bytes.data(), bytes.size());
    while (buffer.size() >= 9) {
      const auto* h = reinterpret_cast<const uint8_t*>(buffer.data());
      const size_t length = (size_t{h[0]} << 16) | (size_t{h[1]} << 8) | h[2];
      const uint8_t type = h[3];
      const uint32_t stream_id =
          ((uint32_t{h[5]} << 24) | (uint32_t{h[6]} << 16) | (uint32_t{h[7]} << 8) | h[8]) &
          0x7fffffffu;
      FUZZ_CHECK(length <= (1u << 24) - 1);
      if (buffer.size() < 9 + length) return;
      FUZZ_CHECK(frames > 0 || type == 0x4) << "the first frame is not SETTINGS: type " << +type;
      FUZZ_CHECK(type <= 0x9) << "unknown frame type " << +type;
      if (type == 0x0 || type == 0x1) {  // DATA, HEADERS
        FUZZ_CHECK(stream_id % 2 == 1) << "type " << +type << " on stream " << stream_id;
      }
      ++frames;
      buffer.erase(0, 9 + length);
    }
  }
};

std::vector<std::string> Chunks(uint8_t seed, absl::string_view rest) {
  std::string all(kHttp2ClientPreface);
  all.append(rest.data(), rest.size());
  return SplitBySeed(seed, all);
}

}  // namespace
}  // namespace nprpc::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace nprpc::fuzz;  // NOLINT(google-build-using-namespace)
  if (size == 0 || size > (64 << 10)) return 0;
  nprpc::Server& server = GetServer();
  const int fd = Connect(server.listen_address());
  const std::vector<std::string> chunks =
      Chunks(data[0], absl::string_view(reinterpret_cast<const char*>(data + 1), size - 1));
  FrameChecker checker;
  size_t chunk = 0, offset = 0;
  bool write_closed = false, eof = false;
  const absl::Time start = absl::Now();
  absl::Time deadline = absl::InfiniteFuture();
  char buf[16384];
  while (!eof) {
    if (chunk == chunks.size() && !write_closed) {
      ::shutdown(fd, SHUT_WR);
      write_closed = true;
      deadline = absl::Now() + kCloseTimeout;
    }
    FUZZ_CHECK(absl::Now() < deadline) << "the server did not close the connection";
    FUZZ_CHECK(absl::Now() - start < absl::Seconds(60)) << "the server did not read the input";
    pollfd p = {fd, static_cast<int16_t>(POLLIN | (write_closed ? 0 : POLLOUT)), 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    if ((p.revents & POLLOUT) != 0 && !write_closed) {
      const std::string& c = chunks[chunk];
      const ssize_t n =
          ::send(fd, c.data() + offset, c.size() - offset, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        offset += static_cast<size_t>(n);
        if (offset == c.size()) {
          ++chunk;
          offset = 0;
        }
      } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        chunk = chunks.size();  // the server closed: stop writing
      }
    }
    if ((p.revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      const ssize_t n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
      if (n > 0) {
        checker.Add(absl::string_view(buf, static_cast<size_t>(n)));
      } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        eof = true;
      }
    }
  }
  ::close(fd);
  // Every call completed exactly once.
  nprpc::ServerStats stats;
  netpoll::testing::WaitFor([&] {
    stats = server.Stats();
    return stats.total.in_flight == 0 &&
           stats.total.received == stats.total.succeeded + stats.total.failed;
  });
  FUZZ_CHECK(stats.total.in_flight == 0) << stats.total.in_flight << " calls still in flight";
  FUZZ_CHECK(stats.total.received == stats.total.succeeded + stats.total.failed)
      << "received " << stats.total.received << " answered " << stats.total.succeeded << " + "
      << stats.total.failed;
  return 0;
}
