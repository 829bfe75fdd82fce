// GrpcClientTransport against a scripted HTTP/2 server (an nghttp2 server
// session on a blocking socket in a thread) that answers what real gRPC
// servers rarely do: HTTP errors without grpc-status, REFUSED_STREAM, a
// message prefix announcing 4 GiB, a missing grpc-status.
#include "rpc/internal/grpc_client_transport.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/empty.pb.h"
#include "gtest/gtest.h"
#include "netpoll/logging.h"
#include "netpoll/mutex.h"
#include "rpc/channel.h"
#include "rpc/errors.h"

namespace nprpc {
namespace {

// One connection at a time; each request is answered by its method name:
//   Http503 / Http404   :status 503 / 404, no grpc-status
//   RefuseOnce          RST_STREAM REFUSED_STREAM the first time, then Ok
//   HugePrefix          a message prefix announcing 0xFFFFFFFF bytes
//   NoStatus            a message and END_STREAM without trailers
//   ResetAfterMessage   grpc-status 0 in the response headers, a message,
//                       then RST_STREAM NO_ERROR instead of END_STREAM
//   Ok                  an empty message and grpc-status 0
class ScriptedH2Server {
 public:
  ScriptedH2Server() {
    listener_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    NP_CHECK(bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    NP_CHECK(listen(listener_, 8) == 0);
    socklen_t len = sizeof(addr);
    NP_CHECK(getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Run(); });
  }
  ~ScriptedH2Server() {
    stop_.store(true);
    shutdown(listener_, SHUT_RDWR);
    close(listener_);
    thread_.join();
  }

  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }
  int requests() const { return requests_.load(); }

 private:
  struct Conn {
    ScriptedH2Server* server = nullptr;
    int fd = -1;
    nghttp2_session* session = nullptr;
    std::map<int32_t, std::string> paths;
    std::map<int32_t, std::string> bodies;
    std::map<int32_t, bool> trailers;
    std::map<int32_t, bool> reset_after_data;
  };

  void Run() {
    while (!stop_.load()) {
      int fd = accept(listener_, nullptr, nullptr);
      if (fd < 0) return;
      Serve(fd);
      close(fd);
    }
  }

  void Serve(int fd) {
    Conn conn;
    conn.server = this;
    conn.fd = fd;
    nghttp2_session_callbacks* cb = nullptr;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_send_callback(
        cb, [](nghttp2_session*, const uint8_t* data, size_t length, int, void* user) -> ssize_t {
          auto* c = static_cast<Conn*>(user);
          ssize_t n = send(c->fd, data, length, MSG_NOSIGNAL);
          return n < 0 ? ssize_t{NGHTTP2_ERR_CALLBACK_FAILURE} : n;
        });
    nghttp2_session_callbacks_set_recv_callback(
        cb, [](nghttp2_session*, uint8_t* buf, size_t length, int, void* user) -> ssize_t {
          auto* c = static_cast<Conn*>(user);
          ssize_t n = recv(c->fd, buf, length, MSG_DONTWAIT);
          if (n == 0) return NGHTTP2_ERR_EOF;
          if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return NGHTTP2_ERR_WOULDBLOCK;
          return n < 0 ? ssize_t{NGHTTP2_ERR_CALLBACK_FAILURE} : n;
        });
    nghttp2_session_callbacks_set_on_header_callback(
        cb,
        [](nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name, size_t namelen,
           const uint8_t* value, size_t valuelen, uint8_t, void* user) -> int {
          auto* c = static_cast<Conn*>(user);
          if (std::string(reinterpret_cast<const char*>(name), namelen) == ":path") {
            c->paths[frame->hd.stream_id] =
                std::string(reinterpret_cast<const char*>(value), valuelen);
          }
          return 0;
        });
    nghttp2_session_callbacks_set_on_frame_recv_callback(
        cb, [](nghttp2_session* session, const nghttp2_frame* frame, void* user) -> int {
          auto* c = static_cast<Conn*>(user);
          if ((frame->hd.type == NGHTTP2_DATA || frame->hd.type == NGHTTP2_HEADERS) &&
              (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) {
            c->server->Answer(*c, session, frame->hd.stream_id);
          }
          return 0;
        });
    nghttp2_session_callbacks_set_on_frame_send_callback(
        cb, [](nghttp2_session* session, const nghttp2_frame* frame, void* user) -> int {
          auto* c = static_cast<Conn*>(user);
          if (frame->hd.type == NGHTTP2_DATA && c->reset_after_data[frame->hd.stream_id]) {
            nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                      NGHTTP2_NO_ERROR);
          }
          return 0;
        });
    nghttp2_session_server_new(&conn.session, cb, &conn);
    nghttp2_session_callbacks_del(cb);
    nghttp2_submit_settings(conn.session, NGHTTP2_FLAG_NONE, nullptr, 0);
    while (nghttp2_session_want_read(conn.session) || nghttp2_session_want_write(conn.session)) {
      if (nghttp2_session_send(conn.session) != 0) break;
      pollfd readable{.fd = fd, .events = POLLIN, .revents = 0};
      const int ready = poll(&readable, 1, 100);  // wakes to see stop_
      if (stop_.load()) break;
      if (ready <= 0) continue;
      if (nghttp2_session_recv(conn.session) != 0) break;
    }
    nghttp2_session_del(conn.session);
  }

  static ssize_t ReadBody(nghttp2_session* session, int32_t stream_id, uint8_t* buf, size_t length,
                          uint32_t* flags, nghttp2_data_source*, void* user) {
    auto* c = static_cast<Conn*>(user);
    std::string& body = c->bodies[stream_id];
    size_t n = std::min(length, body.size());
    std::copy_n(body.data(), n, buf);
    body.erase(0, n);
    if (body.empty()) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      if (c->trailers[stream_id]) {
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        const std::string name = "grpc-status", value = "0";
        nghttp2_nv nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                      reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
                      value.size(), NGHTTP2_NV_FLAG_NONE};
        nghttp2_submit_trailer(session, stream_id, &nv, 1);
      } else if (c->bodies.contains(-stream_id)) {
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;  // HugePrefix: the stream stays open
      }
    }
    return static_cast<ssize_t>(n);
  }

  void Answer(Conn& c, nghttp2_session* session, int32_t id) {
    requests_.fetch_add(1);
    const std::string path = c.paths[id];
    const std::string method = path.substr(path.rfind('/') + 1);
    auto respond = [&](const std::string& status, std::string body, bool trailers,
                       bool status_in_headers = false) {
      const std::string s = ":status", ct = "content-type", grpc = "application/grpc";
      const std::string gs = "grpc-status", zero = "0";
      std::vector<nghttp2_nv> nva = {{reinterpret_cast<uint8_t*>(const_cast<char*>(s.data())),
                                      reinterpret_cast<uint8_t*>(const_cast<char*>(status.data())),
                                      s.size(), status.size(), NGHTTP2_NV_FLAG_NONE},
                                     {reinterpret_cast<uint8_t*>(const_cast<char*>(ct.data())),
                                      reinterpret_cast<uint8_t*>(const_cast<char*>(grpc.data())),
                                      ct.size(), grpc.size(), NGHTTP2_NV_FLAG_NONE}};
      if (status_in_headers) {
        nva.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(gs.data())),
                       reinterpret_cast<uint8_t*>(const_cast<char*>(zero.data())), gs.size(),
                       zero.size(), NGHTTP2_NV_FLAG_NONE});
      }
      c.bodies[id] = std::move(body);
      c.trailers[id] = trailers;
      nghttp2_data_provider provider{};
      provider.read_callback = &ReadBody;
      nghttp2_submit_response(session, id, nva.data(), nva.size(), &provider);
    };
    const std::string empty_message("\0\0\0\0\0", 5);
    if (method == "Http503") {
      respond("503", "", false);
    } else if (method == "Http404") {
      respond("404", "", false);
    } else if (method == "RefuseOnce" && !refused_once_.exchange(true)) {
      nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, id, NGHTTP2_REFUSED_STREAM);
    } else if (method == "HugePrefix") {
      c.bodies[-id] = "";  // marks the stream to stay open
      respond("200",
              std::string("\0\xff\xff\xff\xff"
                          "abc",
                          8),
              false);
    } else if (method == "ResetAfterMessage") {
      c.bodies[-id] = "";  // the stream stays open: RST_STREAM follows the message
      c.reset_after_data[id] = true;
      respond("200", empty_message, false, /*status_in_headers=*/true);
    } else if (method == "NoStatus") {
      respond("200", empty_message, false);
    } else {
      respond("200", empty_message, true);
    }
  }

  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<bool> refused_once_{false};
  std::atomic<int> requests_{0};
  std::thread thread_;
};

class GrpcClientTransportTest : public ::testing::Test {
 protected:
  GrpcClientTransportTest() {
    ChannelOptions options;
    options.protocol = "grpc";
    options.timeout = absl::Seconds(10);
    auto channel = Channel::Create(server_.address(), options);
    NP_CHECK(channel.ok()) << channel.status();
    channel_ = *std::move(channel);
  }

  absl::Status Call(const std::string& method) {
    google::protobuf::Empty request, response;
    return channel_->CallMethod("x.S", method, request, &response);
  }

  ScriptedH2Server server_;
  std::unique_ptr<Channel> channel_;
};

TEST_F(GrpcClientTransportTest, HttpStatusWithoutGrpcStatusMapsAsGrpcSays) {
  EXPECT_EQ(Call("Http503").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(Call("Http404").code(), absl::StatusCode::kUnimplemented);
  EXPECT_TRUE(Call("Ok").ok());
}

TEST_F(GrpcClientTransportTest, RefusedStreamIsRetried) {
  absl::Status status = Call("RefuseOnce");
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(server_.requests(), 2);
}

TEST_F(GrpcClientTransportTest, PrefixAnnouncingFourGiBIsResourceExhausted) {
  absl::Status status = Call("HugePrefix");
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_NE(status.message().find("4294967295"), absl::string_view::npos) << status;
  // Only that stream was reset: the connection still serves.
  EXPECT_TRUE(Call("Ok").ok());
}

TEST_F(GrpcClientTransportTest, ResetWithNoErrorBeforeEndStreamIsInternalNotOk) {
  // grpc-status 0 in the first headers does not end the call: without the
  // server's END_STREAM the response was cut short.
  absl::Status status = Call("ResetAfterMessage");
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal) << status;
  EXPECT_NE(status.message().find("NO_ERROR"), absl::string_view::npos) << status;
  EXPECT_TRUE(Call("Ok").ok());
}

TEST_F(GrpcClientTransportTest, StreamEndingWithoutGrpcStatusIsUnknown) {
  EXPECT_EQ(Call("NoStatus").code(), absl::StatusCode::kUnknown);
}

}  // namespace
}  // namespace nprpc
