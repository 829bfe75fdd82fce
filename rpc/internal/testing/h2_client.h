// H2Client: a raw HTTP/2 client for tests of the gRPC server, on nghttp2's
// client API over a blocking TCP socket, driven by the test's thread (no
// loop, no threads). It speaks just enough gRPC to exercise the server frame
// by frame: open a call with any headers, send messages, half-close, reset,
// read the answer's headers, messages and trailers, see GOAWAY.
//
//   auto client = H2Client::Connect(server.listen_address()).value();
//   int32_t id = client->StartCall("/example.EchoService/Echo");
//   client->SendMessage(id, request.SerializeAsString(), /*end_stream=*/true);
//   ASSERT_TRUE(client->WaitClosed(id));
//   EXPECT_EQ(client->stream(id).Status(), "0");
//
// Pump() and Wait*() block on the socket (poll) up to a timeout; they never
// sleep.
//
// Thread safety: one thread.
#ifndef RPC_INTERNAL_TESTING_H2_CLIENT_H_
#define RPC_INTERNAL_TESTING_H2_CLIENT_H_

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "netpoll/socket_address.h"

namespace nprpc::testing {

class H2Client {
 public:
  using Metadata = std::vector<std::pair<std::string, std::string>>;

  struct Options {
    // SETTINGS_INITIAL_WINDOW_SIZE of this client's streams.
    uint32_t initial_window = 1 << 20;
    // false: DATA is never acknowledged (a client that does not read).
    bool acknowledge_data = true;
  };

  // One call's response as received so far.
  struct Stream {
    Metadata headers;   // the first HEADERS (all of a trailers-only answer)
    Metadata trailers;  // the last HEADERS of a normal answer
    std::string data;   // DATA bytes, gRPC-framed
    bool closed = false;
    uint32_t close_error = 0;  // the stream's RST_STREAM error, 0 for NO_ERROR
    bool reset_by_server = false;

    // A header or trailer (trailers first), nullopt when absent.
    std::optional<std::string> Find(absl::string_view name) const;
    // grpc-status ("" when absent).
    std::string Status() const;
    // The messages in `data` (uncompressed payloads as they are on the wire).
    std::vector<std::string> Messages() const;
  };

  static absl::StatusOr<std::unique_ptr<H2Client>> Connect(const netpoll::SocketAddress& address,
                                                           Options options);
  static absl::StatusOr<std::unique_ptr<H2Client>> Connect(const netpoll::SocketAddress& address) {
    return Connect(address, Options());
  }
  ~H2Client();
  H2Client(const H2Client&) = delete;
  H2Client& operator=(const H2Client&) = delete;

  // Opens a stream with POST `path`, content-type application/grpc, te,
  // and `metadata` (added after them). Returns its id.
  int32_t StartCall(absl::string_view path, const Metadata& metadata = {},
                    absl::string_view content_type = "application/grpc");
  // Opens a stream with exactly these headers (pseudo-headers included).
  int32_t StartRaw(const Metadata& headers, bool end_stream = false);
  // Queues raw DATA bytes on the stream; `end_stream` half-closes after them.
  void SendData(int32_t id, absl::string_view bytes, bool end_stream);
  // One gRPC message (prefix + bytes); `compressed` sets the flag only.
  void SendMessage(int32_t id, absl::string_view message, bool end_stream, bool compressed = false);
  void Reset(int32_t id, uint32_t error_code = NGHTTP2_CANCEL);
  void Ping();
  // Bytes written as they are, after what nghttp2 has queued.
  void SendRaw(absl::string_view bytes);

  // Sends what is queued, reads what arrives, until `done()` or the
  // timeout or the connection's end; returns done().
  bool Pump(const std::function<bool()>& done, absl::Duration timeout = absl::Seconds(10));
  bool WaitClosed(int32_t id, absl::Duration timeout = absl::Seconds(10)) {
    return Pump([this, id] { return stream(id).closed; }, timeout);
  }
  // Until the server closed the connection.
  bool WaitDisconnected(absl::Duration timeout = absl::Seconds(10)) {
    return Pump([this] { return disconnected_; }, timeout);
  }

  Stream& stream(int32_t id) { return streams_[id]; }
  bool disconnected() const { return disconnected_; }
  bool goaway_received() const { return goaway_count_ > 0; }
  int goaway_count() const { return goaway_count_; }
  uint32_t goaway_error() const { return goaway_error_; }
  int32_t goaway_last_stream() const { return goaway_last_stream_; }
  // The server's SETTINGS, by id.
  const std::map<int32_t, uint32_t>& server_settings() const { return server_settings_; }
  // Data the client acknowledged later by hand (acknowledge_data false).
  void Acknowledge(int32_t id, size_t bytes);
  size_t unacknowledged(int32_t id) { return unacked_[id]; }
  // Bytes queued by SendData() on `id` that flow control has not let out.
  size_t unsent(int32_t id) const {
    auto it = outgoing_.find(id);
    return it == outgoing_.end() ? 0 : it->second->bytes.size();
  }

 private:
  struct Outgoing {
    std::string bytes;
    bool end = false;
    bool deferred = false;
  };

  H2Client(int fd, Options options);
  bool Init();
  void FlushOut();
  int32_t Submit(std::vector<nghttp2_nv> nva, bool end_stream);

  static int OnHeader(nghttp2_session* h2, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t flags,
                      void* user);
  static int OnFrameRecv(nghttp2_session* h2, const nghttp2_frame* frame, void* user);
  static int OnDataChunk(nghttp2_session* h2, uint8_t flags, int32_t stream_id, const uint8_t* data,
                         size_t len, void* user);
  static int OnStreamClose(nghttp2_session* h2, int32_t stream_id, uint32_t error_code, void* user);
  static ssize_t ReadData(nghttp2_session* h2, int32_t stream_id, uint8_t* buf, size_t length,
                          uint32_t* data_flags, nghttp2_data_source* source, void* user);

  const int fd_;
  const Options options_;
  nghttp2_session* h2_ = nullptr;
  std::map<int32_t, Stream> streams_;
  std::map<int32_t, std::unique_ptr<Outgoing>> outgoing_;
  std::map<int32_t, size_t> unacked_;
  std::map<int32_t, uint32_t> server_settings_;
  std::string raw_;  // SendRaw() bytes waiting
  bool disconnected_ = false;
  int goaway_count_ = 0;
  uint32_t goaway_error_ = 0;
  int32_t goaway_last_stream_ = -1;
};

}  // namespace nprpc::testing

#endif  // RPC_INTERNAL_TESTING_H2_CLIENT_H_
