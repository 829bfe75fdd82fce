// Fuzz target: the client's HTTP/2 + gRPC path (rpc/internal/
// grpc_client_transport), fed the input as what a hostile or broken gRPC
// server sends. nghttp2 itself is fuzzed upstream; what is fuzzed here is our
// glue: response headers and trailers to statuses, deframing, decompression,
// flow control, resets, GOAWAY, the completion of calls and streams.
//
// One process-wide event loop; per input a fresh GrpcClientTransport (the
// transport a "grpc" Channel uses for each endpoint) dials a listener made
// for that input, whose accepted socket plays the server. The listener is a
// Unix socket in a private directory, not 127.0.0.1: an ephemeral TCP port
// can take a connection from another process on the machine (the first
// runs saw one, whose bytes were not an HTTP/2 preface).
// Before any input byte is sent, the client opens (and the target sees the
// HEADERS of, in this order) three unary example.EchoService/Echo calls on
// streams 1, 3, 5 and one fuzz.Streams/Bidi stream on stream 7, which has
// written one message (and, when bit 7 of byte 0 is set, half-closed) and
// keeps reading; the 64 KiB receive message limit makes the limit paths
// run. Then the input (after byte 0, which also seeds how it is cut into
// writes) goes to the client while the target reads what the client sends;
// then the "server" half-closes. Invariants:
//   - the client's bytes are the HTTP/2 preface and well-formed frames, the
//     first one its SETTINGS, HEADERS/DATA only on odd streams;
//   - the client closes the connection within 20 s of the server's
//     half-close (no hang: streams left open fail);
//   - every call completes exactly once: each unary done callback and the
//     stream's on_end and Finish callbacks run once, the stream's reads end,
//     nothing is left in flight (in_flight() == 0);
//   - a call completes OK only if the server's bytes ended its stream (a
//     HEADERS or DATA frame with END_STREAM on that stream id), and then with
//     a response within the message limit (unary: answered by the server);
//     the stream reads at most one message per 5 input bytes, each within
//     the limit (what the client buffers is bounded by what it was sent);
//   - the stream's Finish status is its on_end status.
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "netpoll/event_loop_group.h"
#include "netpoll/logging.h"
#include "netpoll/mutex.h"
#include "netpoll/testing/wait.h"
#include "proto/echo.pb.h"
#include "rpc/internal/client_call.h"
#include "rpc/internal/grpc_client_transport.h"
#include "rpc/internal/transport.h"
#include "rpc/stream_core.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/split_by_seed.h"

namespace nprpc::fuzz {
namespace {

using example::EchoRequest;
using example::EchoResponse;

constexpr absl::Duration kTimeout = absl::Seconds(20);
constexpr size_t kMaxMessage = 64 << 10;
constexpr int kUnaryCalls = 3;
constexpr absl::string_view kClientPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

netpoll::EventLoop* GetLoop() {
  static netpoll::EventLoopGroup* const group = [] {
    netpoll::SetMinLogSeverity(netpoll::LogSeverity::kError);  // protocol errors are expected
    netpoll::EventLoopGroupOptions options;
    options.num_loops = 1;
    options.name = "grpc-client-fuzz";
    auto made = netpoll::EventLoopGroup::Create(options);
    NP_CHECK(made.ok()) << made.status();
    return made->release();
  }();
  return group->loop(0);
}

// The Unix socket path the listeners use, in a directory made once (and
// removed at exit). Not under TEST_TMPDIR: the path must fit in 108 bytes.
const std::string& SocketPath() {
  static const std::string* const path = [] {
    char dir[] = "/tmp/grpc_client_fuzz.XXXXXX";
    NP_CHECK(::mkdtemp(dir) != nullptr) << std::strerror(errno);
    auto* p = new std::string(absl::StrCat(dir, "/s"));
    std::atexit([] {
      ::unlink(SocketPath().c_str());
      ::rmdir(SocketPath().substr(0, SocketPath().size() - 2).c_str());
    });
    return p;
  }();
  return *path;
}

// A listener on SocketPath() (made afresh for each input); returns its fd.
int Listen() {
  const std::string& path = SocketPath();
  ::unlink(path.c_str());
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  FUZZ_CHECK(fd >= 0) << std::strerror(errno);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), std::min(path.size(), sizeof(addr.sun_path) - 1));
  FUZZ_CHECK(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0)
      << std::strerror(errno);
  FUZZ_CHECK(::listen(fd, 4) == 0) << std::strerror(errno);
  return fd;
}

// Checks the client's bytes: the preface, then frames (a trailing partial
// frame is fine); records the stream id of each HEADERS frame in order.
struct ClientChecker {
  std::string buffer;
  bool preface_seen = false;
  size_t frames = 0;
  std::vector<uint32_t> opened;

  void Add(absl::string_view bytes) {
    buffer.append(bytes.data(), bytes.size());
    if (!preface_seen) {
      if (buffer.size() < kClientPreface.size()) return;
      FUZZ_CHECK(absl::string_view(buffer).substr(0, kClientPreface.size()) == kClientPreface)
          << "the client did not start with the HTTP/2 preface";
      buffer.erase(0, kClientPreface.size());
      preface_seen = true;
    }
    while (buffer.size() >= 9) {
      const auto* h = reinterpret_cast<const uint8_t*>(buffer.data());
      const size_t length = (size_t{h[0]} << 16) | (size_t{h[1]} << 8) | h[2];
      const uint8_t type = h[3];
      const uint32_t stream_id =
          ((uint32_t{h[5]} << 24) | (uint32_t{h[6]} << 16) | (uint32_t{h[7]} << 8) | h[8]) &
          0x7fffffffu;
      FUZZ_CHECK(length <= 16384) << "a frame of " << length << " bytes over the default limit";
      if (buffer.size() < 9 + length) return;
      FUZZ_CHECK(frames > 0 || type == 0x4) << "the first frame is not SETTINGS: type " << +type;
      FUZZ_CHECK(type <= 0x9) << "unknown frame type " << +type;
      if (type == 0x0 || type == 0x1) {  // DATA, HEADERS
        FUZZ_CHECK(stream_id % 2 == 1) << "type " << +type << " on stream " << stream_id;
      }
      if (type == 0x1) opened.push_back(stream_id);
      ++frames;
      buffer.erase(0, 9 + length);
    }
  }
};

// The stream ids on which the input (the server's frames) sets END_STREAM on
// HEADERS or DATA. A superset of what nghttp2 accepts: it walks every
// length-prefixed frame, where nghttp2 stops at the first connection error.
std::set<uint32_t> EndedStreams(absl::string_view input) {
  std::set<uint32_t> ended;
  while (input.size() >= 9) {
    const auto* h = reinterpret_cast<const uint8_t*>(input.data());
    const size_t length = (size_t{h[0]} << 16) | (size_t{h[1]} << 8) | h[2];
    const uint8_t type = h[3], flags = h[4];
    const uint32_t stream_id =
        ((uint32_t{h[5]} << 24) | (uint32_t{h[6]} << 16) | (uint32_t{h[7]} << 8) | h[8]) &
        0x7fffffffu;
    if ((type == 0x0 || type == 0x1) && (flags & 0x1) != 0) ended.insert(stream_id);
    if (input.size() < 9 + length) break;
    input.remove_prefix(9 + length);
  }
  return ended;
}

// One unary call: its response and how it completed (done runs on the loop).
struct Unary {
  EchoResponse response;
  std::atomic<int> completions{0};
  netpoll::Mutex mu;
  absl::Status status ABSL_GUARDED_BY(mu);
  ClientCallPtr call;
};

// The streaming call's reader: reads until a read fails, then Finish()es.
struct StreamState {
  std::shared_ptr<ClientStreamCore> stream;
  EchoResponse message;
  std::atomic<int> reads_ok{0};
  std::atomic<bool> message_too_big{false};
  std::atomic<bool> reads_ended{false};
  std::atomic<int> on_end_calls{0};
  std::atomic<int> finish_calls{0};
  netpoll::Mutex mu;
  absl::Status on_end_status ABSL_GUARDED_BY(mu);
  absl::Status finish_status ABSL_GUARDED_BY(mu);

  void ReadNext() {
    stream->Read(&message, [this](bool ok) {
      if (ok) {
        reads_ok.fetch_add(1);
        if (message.ByteSizeLong() > kMaxMessage) message_too_big.store(true);
        ReadNext();
        return;
      }
      reads_ended.store(true);
      stream->Finish([this](absl::Status status) {
        {
          netpoll::MutexLock lock(&mu);
          finish_status = std::move(status);
        }
        finish_calls.fetch_add(1);
      });
    });
  }
};

ClientRequest MakeRequest(const std::string& service, const std::string& method,
                          const EchoRequest& body) {
  ClientRequest request;
  request.service = service;
  request.method = method;
  request.payload.WriteString(body.SerializePartialAsString());
  return request;
}

// The "server" end of the connection: reads what the client sends into the
// checker, writes what it is given.
class ServerEnd {
 public:
  explicit ServerEnd(int fd) : fd_(fd) {}
  ~ServerEnd() { ::close(fd_); }
  ServerEnd(const ServerEnd&) = delete;
  ServerEnd& operator=(const ServerEnd&) = delete;

  ClientChecker& checker() { return checker_; }
  bool eof() const { return eof_; }

  // Reads until the client has opened `streams` streams.
  void AwaitOpened(size_t streams) {
    const absl::Time deadline = absl::Now() + kTimeout;
    while (checker_.opened.size() < streams) {
      FUZZ_CHECK(!eof_) << "the client closed before opening stream " << streams;
      FUZZ_CHECK(absl::Now() < deadline) << "the client did not open stream " << streams;
      Pump(nullptr);
    }
  }

  // Writes `chunks` while reading, then half-closes and reads until the
  // client closes.
  void Serve(const std::vector<std::string>& chunks) {
    for (const std::string& chunk : chunks) {
      absl::string_view rest = chunk;
      while (!rest.empty() && !write_failed_) {
        FUZZ_CHECK(absl::Now() - start_ < absl::Seconds(60)) << "the client did not read the input";
        Pump(&rest);
      }
    }
    ::shutdown(fd_, SHUT_WR);
    const absl::Time deadline = absl::Now() + kTimeout;
    while (!eof_) {
      FUZZ_CHECK(absl::Now() < deadline) << "the client did not close the connection";
      Pump(nullptr);
    }
  }

 private:
  // One poll: reads what is there, writes some of `out` (when not null).
  void Pump(absl::string_view* out) {
    const bool writing = out != nullptr && !out->empty();
    pollfd p = {fd_, static_cast<int16_t>((eof_ ? 0 : POLLIN) | (writing ? POLLOUT : 0)), 0};
    if (::poll(&p, 1, 100) <= 0) return;
    if (writing && (p.revents & POLLOUT) != 0) {
      const ssize_t n = ::send(fd_, out->data(), out->size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        out->remove_prefix(static_cast<size_t>(n));
      } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        write_failed_ = true;  // the client closed: stop writing
      }
    }
    if (!eof_ && (p.revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      char buf[16384];
      const ssize_t n = ::recv(fd_, buf, sizeof(buf), MSG_DONTWAIT);
      if (n > 0) {
        checker_.Add(absl::string_view(buf, static_cast<size_t>(n)));
      } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        eof_ = true;
        write_failed_ = true;
      }
    }
  }

  const int fd_;
  const absl::Time start_ = absl::Now();
  ClientChecker checker_;
  bool eof_ = false;
  bool write_failed_ = false;
};

// GRPC_CLIENT_FUZZ_VERBOSE=1: prints how each call ended (to check seeds).
bool Verbose() {
  static const bool verbose = std::getenv("GRPC_CLIENT_FUZZ_VERBOSE") != nullptr;
  return verbose;
}

int Accept(int listener) {
  pollfd p = {listener, POLLIN, 0};
  FUZZ_CHECK(::poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(kTimeout))) == 1)
      << "the client did not connect";
  const int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  FUZZ_CHECK(fd >= 0) << std::strerror(errno);
  return fd;
}

void RunInput(uint8_t seed, absl::string_view input) {
  netpoll::EventLoop* loop = GetLoop();
  const int listener = Listen();
  GrpcTransportOptions options;
  options.connect_timeout = kTimeout;
  options.max_receive_message_size = kMaxMessage;
  auto transport = GrpcClientTransport::Create(absl::StrCat("unix:", SocketPath()), loop, options);

  static std::atomic<int64_t> next_call_id{1};
  Unary unary[kUnaryCalls];
  std::unique_ptr<ServerEnd> server;
  for (int i = 0; i < kUnaryCalls; ++i) {
    Unary& u = unary[i];
    u.call = std::make_shared<ClientCall>(next_call_id.fetch_add(1), &u.response, nullptr,
                                          [&u](absl::Status status) {
                                            {
                                              netpoll::MutexLock lock(&u.mu);
                                              u.status = std::move(status);
                                            }
                                            u.completions.fetch_add(1);
                                          });
    EchoRequest body;
    body.set_message(absl::StrCat("unary ", i));
    transport->Send(u.call, MakeRequest("example.EchoService", "Echo", body),
                    absl::InfiniteFuture(), absl::InfiniteDuration());
    if (server == nullptr) server = std::make_unique<ServerEnd>(Accept(listener));
    server->AwaitOpened(static_cast<size_t>(i) + 1);
  }
  StreamState stream;
  {
    ClientStreamStart start;
    start.on_end = [&stream](const absl::Status& status) {
      {
        netpoll::MutexLock lock(&stream.mu);
        stream.on_end_status = status;
      }
      stream.on_end_calls.fetch_add(1);
    };
    start.loop = loop;
    stream.stream =
        transport->NewStream(MakeRequest("fuzz.Streams", "Bidi", EchoRequest()), std::move(start));
    EchoRequest first;
    first.set_message("stream");
    netpoll::Notification written;
    stream.stream->Write(first, [&written](bool) { written.Notify(); });
    written.WaitForNotification();
    if ((seed & 0x80) != 0) {
      netpoll::Notification closed;
      stream.stream->WritesDone([&closed](bool) { closed.Notify(); });
      closed.WaitForNotification();
    }
    stream.ReadNext();
  }
  server->AwaitOpened(kUnaryCalls + 1);
  const std::vector<uint32_t> ids = server->checker().opened;

  server->Serve(SplitBySeed(seed, input));

  // Every call completes, exactly once.
  netpoll::testing::WaitFor([&] {
    bool done = stream.finish_calls.load() > 0 && stream.on_end_calls.load() > 0;
    for (const Unary& u : unary) done = done && u.completions.load() > 0;
    return done && transport->in_flight() == 0;
  });
  const std::set<uint32_t> ended = EndedStreams(input);
  for (int i = 0; i < kUnaryCalls; ++i) {
    Unary& u = unary[i];
    FUZZ_CHECK(u.completions.load() == 1) << "unary " << i << " completed " << u.completions.load();
    netpoll::MutexLock lock(&u.mu);
    if (u.status.ok()) {
      FUZZ_CHECK(ended.contains(ids[i]))
          << "unary " << i << " on stream " << ids[i] << " is OK but the server never ended it";
      FUZZ_CHECK(u.call->answered_by_server()) << "unary " << i << " is OK, not by the server";
      FUZZ_CHECK(u.response.ByteSizeLong() <= kMaxMessage) << "unary " << i << " response size";
    }
  }
  FUZZ_CHECK(stream.reads_ended.load()) << "the stream's reads did not end";
  FUZZ_CHECK(stream.on_end_calls.load() == 1) << "on_end ran " << stream.on_end_calls.load();
  FUZZ_CHECK(stream.finish_calls.load() == 1) << "Finish ran " << stream.finish_calls.load();
  FUZZ_CHECK(!stream.message_too_big.load()) << "a stream message over the limit";
  FUZZ_CHECK(static_cast<size_t>(stream.reads_ok.load()) <= input.size() / 5)
      << stream.reads_ok.load() << " messages from " << input.size() << " bytes";
  {
    netpoll::MutexLock lock(&stream.mu);
    FUZZ_CHECK(stream.finish_status.code() == stream.on_end_status.code())
        << "Finish " << stream.finish_status << " vs on_end " << stream.on_end_status;
    if (stream.on_end_status.ok()) {
      FUZZ_CHECK(ended.contains(ids[kUnaryCalls]))
          << "the stream " << ids[kUnaryCalls] << " is OK but the server never ended it";
    }
  }
  FUZZ_CHECK(transport->in_flight() == 0) << transport->in_flight() << " calls in flight";
  if (Verbose()) {
    for (Unary& u : unary) {
      netpoll::MutexLock lock(&u.mu);
      std::cerr << "unary: " << u.status << " '" << u.response.message() << "'\n";
    }
    netpoll::MutexLock lock(&stream.mu);
    std::cerr << "stream: " << stream.on_end_status << " after " << stream.reads_ok.load()
              << " messages\n";
  }
  transport->Shutdown();
  stream.stream.reset();
  transport.reset();
  server.reset();
  ::close(listener);
  // No call completed twice, not even at shutdown.
  for (const Unary& u : unary) FUZZ_CHECK(u.completions.load() == 1);
  FUZZ_CHECK(stream.on_end_calls.load() == 1 && stream.finish_calls.load() == 1);
}

}  // namespace
}  // namespace nprpc::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0 || size > (64 << 10)) return 0;
  nprpc::fuzz::RunInput(data[0],
                        absl::string_view(reinterpret_cast<const char*>(data + 1), size - 1));
  return 0;
}
