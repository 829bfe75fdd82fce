// Fuzz target: meta parsing plus server dispatch, through a real
// nprpc::Server.
//
// Why a real server and not a seam: the dispatch code (Server::Core) reads
// frames from a netpoll::Connection, a concrete class with no fake, and
// splitting it into a socket-free function would change rpc/server.cc for the
// fuzzer's sake. A server listening on a Unix socket costs one connect and
// one accept per input (tens of microseconds) and fuzzes exactly the code
// that serves peers: decoding, the per-connection queue and read pause,
// lookup, checksum, limits, deadlines, decompression, request parsing,
// handlers on the worker pool and on the I/O loop, response encoding and
// compression. docs/reliability.md has the executions per second.
//
// One process-wide server (made on the first input, never destroyed) serves
// example.EchoService and fuzz.FuzzService, with small limits so that the
// queueing and ELIMIT paths run: 4 calls in flight per connection, Echo at
// most 2 at once, 1 MiB decompressed.
//
// Per input: connect, send the input (while reading answers), and decode the
// same bytes with a reference FrameDecoder: K request frames before the end,
// a decode error or a response frame. Invariants:
//   - the server answers with well-formed baidu_std response frames only;
//   - each answer's correlation_id belongs to a request not yet answered
//     (exactly once per call: never an answer to nothing, never two);
//   - a clean stream (no error; a trailing partial frame is fine) gets
//     exactly K answers; a stream with an error gets at most K, then the
//     server closes the connection;
//   - all within 10 seconds (no hang), and the server keeps serving: the
//     next input connects again.
//
// An input that starts like an HTTP request ("GET ", "POST ", ...) goes to
// the server's HTTP protocol instead, and is decoded for reference by an
// HttpRequestDecoder with the server's limits: K requests, then the end, an
// error or a request that closes the connection. Invariants: the answers are
// well-formed HTTP/1.1 responses (parsed by http_parser, a HEAD's without
// body) with a known status; a clean stream gets exactly K; a stream with an
// error gets K + 1 (the error's own answer) and a closing request K, then
// the server closes the connection.
#include <http_parser.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "netpoll/link_buffer.h"
#include "netpoll/logging.h"
#include "proto/echo.pb.h"
#include "rpc/baidu_std.h"
#include "rpc/errors.h"
#include "rpc/internal/frame_codec.h"
#include "rpc/internal/http_protocol.h"
#include "rpc/internal/http_request_decoder.h"
#include "rpc/server.h"
#include "rpc/service.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/harness/echo_service.h"

namespace nprpc::fuzz {
namespace {

using example::EchoRequest;
using example::EchoResponse;

constexpr absl::Duration kInputTimeout = absl::Seconds(10);

// fuzz.FuzzService, on EchoRequest/EchoResponse:
//   Inline  echoes on the I/O loop, with attachment and user fields, and
//           compresses the response with `code` % 4
//   Drop    drops its Responder (the server answers EINTERNAL)
//   Twice   completes twice (the second is ignored)
//   Status  fails with absl::StatusCode(code % 17) (OK: an empty message)
std::unique_ptr<Service> NewFuzzService() {
  auto service = std::make_unique<Service>("fuzz.FuzzService");
  const auto* req = &EchoRequest::default_instance();
  const auto* resp = &EchoResponse::default_instance();
  NP_CHECK(service
               ->AddMethod("Inline", MakeUnaryMethodHandler(
                                         req, resp,
                                         [](ServerContext& ctx, const google::protobuf::Message& m,
                                            google::protobuf::Message* r) {
                                           const auto& in = static_cast<const EchoRequest&>(m);
                                           static_cast<EchoResponse*>(r)->set_message(in.message());
                                           ctx.response_attachment() =
                                               std::move(ctx.request_attachment());
                                           ctx.response_user_fields() = ctx.request_user_fields();
                                           ctx.set_response_compress_type(
                                               static_cast<CompressType>(in.code() & 3));
                                           return absl::OkStatus();
                                         },
                                         MethodHandler::ExecutionMode::kIoLoop))
               .ok());
  NP_CHECK(service
               ->AddMethod("Drop",
                           MakeMethodHandler(req, resp,
                                             [](ServerContext&, const google::protobuf::Message&,
                                                google::protobuf::Message*, const Responder&) {}))
               .ok());
  NP_CHECK(service
               ->AddMethod("Twice", MakeMethodHandler(
                                        req, resp,
                                        [](ServerContext&, const google::protobuf::Message& m,
                                           google::protobuf::Message* r, const Responder& done) {
                                          static_cast<EchoResponse*>(r)->set_message("once");
                                          done.Finish(absl::OkStatus());
                                          done.Finish(absl::InternalError("twice"));
                                        }))
               .ok());
  NP_CHECK(service
               ->AddMethod("Status", MakeUnaryMethodHandler(
                                         req, resp,
                                         [](ServerContext&, const google::protobuf::Message& m,
                                            google::protobuf::Message* r) {
                                           const auto& in = static_cast<const EchoRequest&>(m);
                                           static_cast<EchoResponse*>(r)->set_message("");
                                           auto code = static_cast<absl::StatusCode>(
                                               static_cast<uint32_t>(in.code()) % 17);
                                           return absl::Status(code, in.message());
                                         }))
               .ok());
  return service;
}

// The process-wide server and the Unix socket path it listens on.
struct FuzzServer {
  std::unique_ptr<Server> server;
  std::string path;
};

FuzzServer& GetServer() {
  static FuzzServer* const fuzz_server = [] {
    netpoll::SetMinLogSeverity(netpoll::LogSeverity::kError);  // protocol errors are expected
    auto* fs = new FuzzServer;
    // Not under TEST_TMPDIR: a Unix socket path must fit in 108 bytes. Not
    // the pid alone either: sandboxed runs of this test (PID namespaces)
    // share /tmp and their pids, and one would unlink the other's socket.
    char dir[] = "/tmp/nprpc_dispatch_fuzz.XXXXXX";
    NP_CHECK(::mkdtemp(dir) != nullptr) << std::strerror(errno);
    fs->path = absl::StrCat(dir, "/s");
    static std::string* const path_to_remove = new std::string(fs->path);
    std::atexit([] {
      ::unlink(path_to_remove->c_str());
      ::rmdir(path_to_remove->substr(0, path_to_remove->size() - 2).c_str());
    });
    ServerOptions options;
    options.num_io_loops = 1;
    options.num_worker_threads = 2;
    options.max_in_flight_per_connection = 4;
    options.method_max_concurrency["example.EchoService/Echo"] = 2;
    options.max_decompressed_size = size_t{1} << 20;
    fs->server = std::make_unique<Server>(options);
    NP_CHECK(fs->server->AddService(testing::NewEchoService()).ok());
    NP_CHECK(fs->server->AddService(NewFuzzService()).ok());
    absl::Status s = fs->server->Start(absl::StrCat("unix:", fs->path));
    NP_CHECK(s.ok()) << s;
    return fs;
  }();
  return *fuzz_server;
}

int ConnectUnix(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  FUZZ_CHECK(fd >= 0) << std::strerror(errno);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), std::min(path.size(), sizeof(addr.sun_path) - 1));
  // A full accept backlog answers EAGAIN on a Unix socket: retry briefly.
  const absl::Time deadline = absl::Now() + kInputTimeout;
  while (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    FUZZ_CHECK(errno == EAGAIN && absl::Now() < deadline)
        << "cannot connect to the server: " << std::strerror(errno);
    absl::SleepFor(absl::Microseconds(100));
  }
  return fd;
}

// The request frames a server must answer: the request frames of `data`
// before the end, a decode error or a response frame (the server closes
// the connection on those).
struct Expected {
  std::multiset<int64_t> correlation_ids;
  size_t requests = 0;
  bool clean = true;  // no error: the server keeps the connection open
};

Expected ReferenceDecode(absl::string_view data) {
  Expected expected;
  netpoll::LinkBuffer in;
  in.WriteBinary(data);
  const FrameDecoder decoder;  // the server's limits (defaults)
  for (;;) {
    DecodeResult r = decoder.Decode(in);
    if (r.need_more()) break;
    if (r.is_error() || !r.frame().is_request()) {
      expected.clean = false;
      break;
    }
    expected.correlation_ids.insert(r.frame().meta.correlation_id());
    ++expected.requests;
  }
  return expected;
}

// Decodes the answers in `received`; returns how many.
size_t ConsumeAnswers(netpoll::LinkBuffer& received, std::multiset<int64_t>& unanswered) {
  const FrameDecoder decoder;
  size_t answers = 0;
  for (;;) {
    DecodeResult r = decoder.Decode(received);
    if (r.need_more()) return answers;
    FUZZ_CHECK(!r.is_error()) << "the server sent a malformed frame: " << r.status();
    const DecodedFrame& frame = r.frame();
    FUZZ_CHECK(frame.meta.has_response()) << "the server sent a request frame";
    auto it = unanswered.find(frame.meta.correlation_id());
    FUZZ_CHECK(it != unanswered.end())
        << "an answer to no outstanding call: correlation_id " << frame.meta.correlation_id();
    unanswered.erase(it);
    if (frame.meta.response().error_code() != 0) {
      FUZZ_CHECK(frame.payload.empty() && frame.attachment.empty())
          << "an error answer with a body";
    }
    ++answers;
  }
}

void Exchange(absl::string_view data) {
  FuzzServer& fs = GetServer();
  Expected expected = ReferenceDecode(data);
  std::multiset<int64_t> unanswered = expected.correlation_ids;
  const int fd = ConnectUnix(fs.path);
  const absl::Time deadline = absl::Now() + kInputTimeout;
  size_t sent = 0;
  size_t answers = 0;
  bool eof = false;
  netpoll::LinkBuffer received;
  while (!eof) {
    if (expected.clean && sent == data.size() && answers == expected.requests) break;
    // NOLINTNEXTLINE(google-runtime-int): pollfd::events is a short.
    pollfd p{fd, static_cast<short>(POLLIN | (sent < data.size() ? POLLOUT : 0)), 0};
    const int64_t left_ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    FUZZ_CHECK(left_ms > 0) << "no progress within " << kInputTimeout << ": sent " << sent << "/"
                            << data.size() << " bytes, " << answers << "/" << expected.requests
                            << " answers, clean " << expected.clean;
    int n = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left_ms, 1000)));
    FUZZ_CHECK(n >= 0 || errno == EINTR) << std::strerror(errno);
    if (n <= 0) continue;
    if ((p.revents & POLLOUT) && sent < data.size()) {
      ssize_t w = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (w > 0) {
        sent += static_cast<size_t>(w);
      } else if (w < 0 && errno != EAGAIN) {
        // The server closed on a protocol error before taking everything.
        FUZZ_CHECK(!expected.clean) << "send failed on a clean stream: " << std::strerror(errno);
        sent = data.size();
      }
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      absl::StatusOr<size_t> r = received.ReadFromFd(fd, 1 << 16);
      if (!r.ok()) {
        eof = true;  // EOF or reset
      } else {
        answers += ConsumeAnswers(received, unanswered);
      }
    }
  }
  ::close(fd);
  FUZZ_CHECK(received.empty()) << received.Len() << " bytes of a partial answer";
  if (expected.clean) {
    FUZZ_CHECK(answers == expected.requests)
        << answers << " answers to " << expected.requests << " requests on a clean stream";
  } else {
    FUZZ_CHECK(answers <= expected.requests);
  }
}

// ------------------------------------------------------------------ HTTP

// What the server must answer on an HTTP stream (see the header comment).
struct HttpExpected {
  std::vector<bool> head;  // per answer: the request was a HEAD (no body)
  bool closes = false;     // an error or a closing request: EOF after the answers
};

HttpExpected HttpReferenceDecode(absl::string_view data) {
  HttpExpected expected;
  netpoll::LinkBuffer in;
  in.WriteBinary(data);
  const ServerOptions defaults;
  HttpRequestDecoder decoder({.max_header_bytes = defaults.max_http_header_size,
                              .max_body_bytes = defaults.max_body_size});
  for (;;) {
    HttpDecodeResult r = decoder.Decode(in);
    if (r.need_more()) break;
    if (r.is_error()) {
      expected.head.push_back(false);  // the error's answer
      expected.closes = true;
      break;
    }
    HttpRequest request = r.TakeRequest();
    expected.head.push_back(request.method == "HEAD");
    if (!request.keep_alive) {
      expected.closes = true;
      break;
    }
  }
  return expected;
}

// Parses the server's answers with http_parser; counts whole responses.
class HttpAnswerParser {
 public:
  explicit HttpAnswerParser(const std::vector<bool>* head) : head_(head) {
    http_parser_settings_init(&settings_);
    settings_.on_headers_complete = [](http_parser* p) {
      auto* self = static_cast<HttpAnswerParser*>(p->data);
      FUZZ_CHECK(p->http_major == 1 && p->http_minor == 1) << "not an HTTP/1.1 answer";
      const int status = static_cast<int>(p->status_code);
      FUZZ_CHECK(status == 200 || (status >= 400 && status <= 505)) << "status " << status;
      FUZZ_CHECK((p->flags & F_CONTENTLENGTH) != 0) << "an answer without Content-Length";
      FUZZ_CHECK(self->answers_ < self->head_->size()) << "more answers than requests";
      return (*self->head_)[self->answers_] ? 1 : 0;  // 1: a HEAD's answer has no body
    };
    settings_.on_message_complete = [](http_parser* p) {
      ++static_cast<HttpAnswerParser*>(p->data)->answers_;
      return 0;
    };
    http_parser_init(&parser_, HTTP_RESPONSE);
    parser_.data = this;
  }

  void Feed(netpoll::LinkBuffer& received) {
    received.ForEachChunk([&](absl::string_view chunk) {
      const size_t n = http_parser_execute(&parser_, &settings_, chunk.data(), chunk.size());
      FUZZ_CHECK(HTTP_PARSER_ERRNO(&parser_) == HPE_OK && n == chunk.size())
          << "a malformed HTTP answer: "
          << http_errno_description(static_cast<http_errno>(HTTP_PARSER_ERRNO(&parser_)));
    });
    received.Clear();
  }
  size_t answers() const { return answers_; }
  // Between answers (no partial one).
  bool idle() const { return parser_.nread == 0; }

 private:
  const std::vector<bool>* head_;
  http_parser_settings settings_;
  http_parser parser_;
  size_t answers_ = 0;
};

void ExchangeHttp(absl::string_view data) {
  FuzzServer& fs = GetServer();
  const HttpExpected expected = HttpReferenceDecode(data);
  const size_t want = expected.head.size();
  HttpAnswerParser parser(&expected.head);
  const int fd = ConnectUnix(fs.path);
  const absl::Time deadline = absl::Now() + kInputTimeout;
  size_t sent = 0;
  bool eof = false;
  netpoll::LinkBuffer received;
  while (!eof) {
    if (!expected.closes && sent == data.size() && parser.answers() == want) break;
    // NOLINTNEXTLINE(google-runtime-int): pollfd::events is a short.
    pollfd p{fd, static_cast<short>(POLLIN | (sent < data.size() ? POLLOUT : 0)), 0};
    const int64_t left_ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    FUZZ_CHECK(left_ms > 0) << "no progress within " << kInputTimeout << ": sent " << sent << "/"
                            << data.size() << " bytes, " << parser.answers() << "/" << want
                            << " HTTP answers, closes " << expected.closes;
    int n = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left_ms, 1000)));
    FUZZ_CHECK(n >= 0 || errno == EINTR) << std::strerror(errno);
    if (n <= 0) continue;
    if ((p.revents & POLLOUT) && sent < data.size()) {
      ssize_t w = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (w > 0) {
        sent += static_cast<size_t>(w);
      } else if (w < 0 && errno != EAGAIN) {
        FUZZ_CHECK(expected.closes) << "send failed on a clean stream: " << std::strerror(errno);
        sent = data.size();
      }
      // Done sending: after an error answer the server closes at once
      // instead of lingering for the rest of the request (2 s).
      if (sent == data.size() && expected.closes) ::shutdown(fd, SHUT_WR);
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      absl::StatusOr<size_t> r = received.ReadFromFd(fd, 1 << 16);
      if (!r.ok()) {
        eof = true;
      } else {
        parser.Feed(received);
      }
    }
  }
  ::close(fd);
  FUZZ_CHECK(parser.idle()) << "a partial HTTP answer";
  FUZZ_CHECK(parser.answers() == want)
      << parser.answers() << " HTTP answers to " << want << " requests, closes " << expected.closes;
}

}  // namespace
}  // namespace nprpc::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  netpoll::LinkBuffer head;
  head.WriteBinary(
      absl::string_view(reinterpret_cast<const char*>(data), std::min<size_t>(size, 8)));
  // A prefix of a method ("GE") waits for more like a request does.
  if (nprpc::HttpProtocol::Get()->Sniff(head) != nprpc::SniffResult::kNotMine) {
    nprpc::fuzz::ExchangeHttp(absl::string_view(reinterpret_cast<const char*>(data), size));
    return 0;
  }
  nprpc::fuzz::Exchange(absl::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
