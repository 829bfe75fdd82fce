#include "rpc/internal/grpc_client_transport.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <deque>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "netpoll/dialer.h"
#include "netpoll/logging.h"
#include "netpoll/mutex.h"
#include "rpc/errors.h"
#include "rpc/internal/compression.h"
#include "rpc/internal/frame_codec.h"
#include "rpc/version.h"

namespace nprpc {
namespace grpc_client_internal {
namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;

// Request and response header blocks are bounded (names and values summed).
constexpr size_t kMaxHeaderBytes = 64 * 1024;

// gRPC's mapping of an HTTP status without grpc-status
// (doc/http-grpc-status-mapping.md).
absl::StatusCode CodeForHttpStatus(int http_status) {
  switch (http_status) {
    case 400:
      return absl::StatusCode::kInternal;
    case 401:
      return absl::StatusCode::kUnauthenticated;
    case 403:
      return absl::StatusCode::kPermissionDenied;
    case 404:
      return absl::StatusCode::kUnimplemented;
    case 429:
    case 502:
    case 503:
    case 504:
      return absl::StatusCode::kUnavailable;
    default:
      return absl::StatusCode::kUnknown;
  }
}

// The status of a stream the server reset (gRPC's PROTOCOL-HTTP2 mapping).
absl::Status StatusForReset(uint32_t error_code, const std::string& address) {
  const std::string what =
      absl::StrCat("stream reset by ", address, " (", nghttp2_http2_strerror(error_code), ")");
  switch (error_code) {
    case NGHTTP2_REFUSED_STREAM:
      // Not processed by the server: retried like a refusal by a stopping server.
      return MakeRpcError(ELOGOFF, what);
    case NGHTTP2_CANCEL:
      return absl::CancelledError(what);
    case NGHTTP2_ENHANCE_YOUR_CALM:
      return absl::ResourceExhaustedError(what);
    case NGHTTP2_INADEQUATE_SECURITY:
      return absl::PermissionDeniedError(what);
    default:
      return absl::InternalError(what);
  }
}

// The headers of a call's HEADERS frame. INVALID_ARGUMENT (EREQUEST) for
// metadata gRPC cannot carry.
absl::StatusOr<Headers> RequestHeaders(const ClientRequest& request, absl::Duration timeout,
                                       const std::string& authority) {
  Headers headers = {
      {":method", "POST"},
      {":scheme", "http"},
      {":path", absl::StrCat("/", request.service, "/", request.method)},
      {":authority", authority},
      {"te", "trailers"},
      {"content-type", std::string(grpc_wire::kContentType)},
      {"user-agent", "nprpc/" NPRPC_VERSION_STRING},
      {"grpc-accept-encoding", std::string(grpc_wire::kAcceptEncoding)},
  };
  if (timeout != absl::InfiniteDuration()) {
    headers.emplace_back("grpc-timeout", grpc_wire::FormatTimeout(timeout));
  }
  if (request.compress_type == CompressType::kGzip ||
      request.compress_type == CompressType::kZlib) {
    headers.emplace_back("grpc-encoding",
                         std::string(grpc_wire::EncodingName(request.compress_type)));
  }
  bool has_traceparent = false;
  size_t bytes = 0;
  for (const auto& [raw_key, value] : request.metadata) {
    std::string key = absl::AsciiStrToLower(raw_key);
    if (!grpc_wire::IsValidMetadataKey(key) || grpc_wire::IsReservedHeader(key)) {
      return MakeRpcError(EREQUEST,
                          absl::StrCat("metadata key '", BoundedQuote(raw_key, kMaxQuotedName),
                                       "' cannot be sent over gRPC"));
    }
    std::string sent;
    if (grpc_wire::IsBinaryKey(key)) {
      sent = grpc_wire::EncodeBinaryValue(value);
    } else {
      for (char c : value) {
        if (c < 0x20 || c > 0x7e) {
          return MakeRpcError(EREQUEST, absl::StrCat("metadata '", key,
                                                     "' has a value that is not printable "
                                                     "ASCII (name binary metadata '*-bin')"));
        }
      }
      sent = value;
    }
    has_traceparent |= key == "traceparent";
    bytes += key.size() + sent.size();
    headers.emplace_back(std::move(key), std::move(sent));
  }
  if (bytes > kMaxHeaderBytes) {
    return MakeRpcError(EREQUEST, absl::StrCat("request metadata of ", bytes,
                                               " bytes exceeds the limit of ", kMaxHeaderBytes));
  }
  if (!has_traceparent) {
    if (std::string traceparent = FormatTraceparent(request.trace); !traceparent.empty()) {
      headers.emplace_back("traceparent", std::move(traceparent));
    }
  }
  return headers;
}

// Frames one request message (compressed with `encoding` when gzip/zlib).
absl::Status FrameMessage(netpoll::LinkBuffer payload, CompressType encoding,
                          netpoll::LinkBuffer& out) {
  if (encoding == CompressType::kGzip || encoding == CompressType::kZlib) {
    netpoll::LinkBuffer compressed;
    if (absl::Status s = Compress(encoding, payload, compressed); !s.ok()) {
      return MakeRpcError(EREQUEST, absl::StrCat("cannot compress the request: ", s.message()));
    }
    grpc_wire::AppendMessage(std::move(compressed), /*compressed=*/true, out);
    return absl::OkStatus();
  }
  grpc_wire::AppendMessage(std::move(payload), /*compressed=*/false, out);
  return absl::OkStatus();
}

}  // namespace

class GrpcConnection;

// One call's stream: its request bytes, the response as it arrives, and the
// call it completes (a unary ClientCall, or the callbacks of a
// ClientStreamCore). Loop thread only, except the published metadata (mu_).
class GrpcStream : public std::enable_shared_from_this<GrpcStream> {
 public:
  GrpcStream(std::weak_ptr<GrpcClientTransport> owner, netpoll::EventLoop* loop,
             std::string address, CompressType request_encoding, size_t max_message_size)
      : owner_(std::move(owner)),
        loop_(loop),
        address_(std::move(address)),
        request_encoding_(request_encoding),
        max_message_size_(max_message_size),
        deframer_(max_message_size) {}

  // Set up before the stream starts.
  Headers headers;
  netpoll::LinkBuffer send_buf;  // framed messages not yet handed to nghttp2
  bool half_close = false;       // END_STREAM once send_buf is out
  ClientCallPtr call;            // unary
  absl::AnyInvocable<void(const absl::Status&)> on_end;
  netpoll::TimerId deadline_timer = netpoll::kInvalidTimerId;
  std::optional<CancellationToken> cancel;
  uint64_t cancel_id = 0;

  // The connection the stream is on (set by it, cleared when it lets go).
  GrpcConnection* conn = nullptr;
  int32_t id = 0;

  bool ended() const { return ended_; }
  netpoll::EventLoop* loop() const { return loop_; }
  CompressType request_encoding() const { return request_encoding_; }

  // nghttp2's data source: copies request bytes into `buf`.
  ssize_t ReadRequestData(uint8_t* buf, size_t length, uint32_t* data_flags);
  // The response, from the connection's nghttp2 callbacks.
  int OnHeader(const nghttp2_frame& frame, absl::string_view name, absl::string_view value);
  void OnHeadersDone(const nghttp2_frame& frame);
  void OnData(const uint8_t* data, size_t len);
  void OnRemoteEnd();
  void OnClosed(uint32_t error_code);

  // Ends the call once: completes it with `status` (`answered`: the server's
  // verdict), fails outstanding stream operations, runs on_end. `reset`:
  // tells the server with RST_STREAM of that code.
  void End(absl::Status status, bool answered, std::optional<uint32_t> reset);

  // ClientStreamCore's operations, on the loop.
  void Read(google::protobuf::Message* msg, StreamCallback done);
  void Write(netpoll::LinkBuffer framed, StreamCallback done);
  void WritesDone(StreamCallback done);
  void Finish(absl::AnyInvocable<void(absl::Status)> done);

  ClientStreamCore::Metadata initial_metadata() const {
    netpoll::MutexLock lock(&mu_);
    return published_initial_;
  }
  ClientStreamCore::Metadata trailing_metadata() const {
    netpoll::MutexLock lock(&mu_);
    return published_trailing_;
  }

 private:
  absl::Status RemoteStatus() const;
  absl::Status DecodeMessage(grpc_wire::MessageDeframer::Message& message,
                             google::protobuf::Message& out) const;
  void DeliverRead();
  // Gives back the stream window of bytes held while messages wait unread.
  void ReleaseWithheld();
  void Publish(bool trailers);
  // The app may write more: runs the pending Write callback.
  void MaybeWriteDone();

  const std::weak_ptr<GrpcClientTransport> owner_;
  netpoll::EventLoop* const loop_;
  const std::string address_;
  const CompressType request_encoding_;
  const size_t max_message_size_;

  bool deferred_ = false;  // nghttp2 waits for nghttp2_session_resume_data
  bool end_sent_ = false;  // END_STREAM handed to nghttp2
  StreamCallback write_done_;

  int http_status_ = 0;
  bool bad_content_type_ = false;
  std::optional<std::string> grpc_status_, grpc_message_;
  std::optional<CompressType> response_encoding_;
  bool unknown_encoding_ = false;
  size_t header_bytes_ = 0;
  Headers initial_, trailing_;
  grpc_wire::MessageDeframer deframer_;
  std::deque<grpc_wire::MessageDeframer::Message> ready_;
  size_t withheld_ = 0;

  bool ended_ = false;
  absl::Status final_status_;
  google::protobuf::Message* read_msg_ = nullptr;
  StreamCallback read_done_;
  bool finish_requested_ = false;
  absl::AnyInvocable<void(absl::Status)> finish_done_;

  mutable netpoll::Mutex mu_;
  ClientStreamCore::Metadata published_initial_ ABSL_GUARDED_BY(mu_);
  ClientStreamCore::Metadata published_trailing_ ABSL_GUARDED_BY(mu_);
};

// One HTTP/2 connection and its nghttp2 client session. Loop thread only.
class GrpcConnection : public std::enable_shared_from_this<GrpcConnection> {
 public:
  GrpcConnection(std::weak_ptr<GrpcClientTransport> owner, netpoll::EventLoop* loop,
                 std::string address, const GrpcTransportOptions& options)
      : owner_(std::move(owner)), loop_(loop), address_(std::move(address)), options_(options) {}
  ~GrpcConnection() {
    if (session_ != nullptr) nghttp2_session_del(session_);
  }
  GrpcConnection(const GrpcConnection&) = delete;
  GrpcConnection& operator=(const GrpcConnection&) = delete;

  void Dial();
  // Opens `stream` here (or queues it while dialing).
  void Add(const std::shared_ptr<GrpcStream>& stream);
  // RST_STREAM.
  void Reset(int32_t id, uint32_t error_code);
  // More request bytes (or END_STREAM) for a stream nghttp2 deferred.
  void ResumeData(int32_t id);
  // Stream window given back for `bytes` the app read.
  void ConsumeStream(int32_t id, size_t bytes);
  // Sends what nghttp2 has to send (not from inside nghttp2's callbacks:
  // then it runs when mem_recv/mem_send return).
  void Flush();
  // Closes the connection and ends its streams with `status` (a fresh copy
  // each). Idempotent.
  void Terminate(const absl::Status& status);

  bool closed() const { return state_ == State::kClosed; }
  bool draining() const { return draining_; }

 private:
  enum class State { kConnecting, kConnected, kClosed };

  void OnDialed(absl::StatusOr<netpoll::ConnectionPtr> conn);
  void OnInput(netpoll::LinkBuffer& input);
  void Submit(const std::shared_ptr<GrpcStream>& stream);
  void StartDraining();
  void ScheduleKeepalive();
  void SendPing();
  std::shared_ptr<GrpcStream> Find(int32_t id) const {
    auto it = streams_.find(id);
    return it == streams_.end() ? nullptr : it->second;
  }

  static int OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t flags,
                      void* user_data);
  static int OnFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* user_data);
  static int OnDataChunk(nghttp2_session*, uint8_t flags, int32_t stream_id, const uint8_t* data,
                         size_t len, void* user_data);
  static int OnStreamClose(nghttp2_session*, int32_t stream_id, uint32_t error_code,
                           void* user_data);
  static int OnFrameNotSend(nghttp2_session*, const nghttp2_frame* frame, int lib_error_code,
                            void* user_data);
  static ssize_t ReadData(nghttp2_session*, int32_t stream_id, uint8_t* buf, size_t length,
                          uint32_t* data_flags, nghttp2_data_source* source, void* user_data);

  const std::weak_ptr<GrpcClientTransport> owner_;
  netpoll::EventLoop* const loop_;
  const std::string address_;
  const GrpcTransportOptions options_;

  State state_ = State::kConnecting;
  bool draining_ = false;   // GOAWAY received, or stream ids spent
  bool proven_ = false;     // the server's SETTINGS arrived
  int callback_depth_ = 0;  // inside nghttp2_session_mem_recv / mem_send
  netpoll::ConnectionPtr conn_;
  nghttp2_session* session_ = nullptr;
  absl::flat_hash_map<int32_t, std::shared_ptr<GrpcStream>> streams_;
  std::vector<std::shared_ptr<GrpcStream>> waiting_;  // while dialing
  netpoll::TimerId keepalive_timer_ = netpoll::kInvalidTimerId;
  netpoll::TimerId ping_timer_ = netpoll::kInvalidTimerId;
  bool ping_outstanding_ = false;
};

// ------------------------------------------------------------- GrpcStream

ssize_t GrpcStream::ReadRequestData(uint8_t* buf, size_t length, uint32_t* data_flags) {
  const size_t n = std::min(length, send_buf.Len());
  if (n > 0) {
    (void)send_buf.ReadBinary(absl::Span<char>(reinterpret_cast<char*>(buf), n));
  }
  if (send_buf.empty()) {
    if (half_close && !ended_) {
      *data_flags |= NGHTTP2_DATA_FLAG_EOF;
      end_sent_ = true;
    } else if (n == 0) {
      deferred_ = true;
      return NGHTTP2_ERR_DEFERRED;
    }
  }
  if (write_done_ && send_buf.Len() <= GrpcClientTransport::kStreamSendBound) {
    // Not from inside nghttp2: the callback may write again.
    loop_->QueueInLoop([self = shared_from_this()] { self->MaybeWriteDone(); });
  }
  return static_cast<ssize_t>(n);
}

void GrpcStream::MaybeWriteDone() {
  if (write_done_ && send_buf.Len() <= GrpcClientTransport::kStreamSendBound) {
    std::exchange(write_done_, nullptr)(!ended_);
  }
}

int GrpcStream::OnHeader(const nghttp2_frame& frame, absl::string_view name,
                         absl::string_view value) {
  if (ended_) return 0;
  header_bytes_ += name.size() + value.size();
  if (header_bytes_ > kMaxHeaderBytes) {
    End(absl::ResourceExhaustedError(absl::StrCat("response metadata from ", address_, " exceeds ",
                                                  kMaxHeaderBytes, " bytes")),
        false, NGHTTP2_CANCEL);
    return 0;
  }
  // Trailers: the second header block, or a trailers-only response.
  const bool trailers =
      frame.headers.cat == NGHTTP2_HCAT_HEADERS || (frame.hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
  if (name == ":status") {
    int status = 0;
    if (absl::SimpleAtoi(value, &status)) http_status_ = status;
    return 0;
  }
  if (name == "grpc-status") {
    grpc_status_ = std::string(value);
    return 0;
  }
  if (name == "grpc-message") {
    grpc_message_ = grpc_wire::PercentDecode(value);
    return 0;
  }
  if (name == "content-type") {
    bad_content_type_ = !grpc_wire::IsGrpcContentType(value);
    return 0;
  }
  if (name == "grpc-encoding") {
    response_encoding_ = grpc_wire::EncodingFromName(value);
    unknown_encoding_ = !response_encoding_.has_value();
    return 0;
  }
  if (grpc_wire::IsReservedHeader(name) || name.empty() || name[0] == ':') return 0;
  std::string decoded;
  if (grpc_wire::IsBinaryKey(name)) {
    absl::StatusOr<std::string> bytes = grpc_wire::DecodeBinaryValue(value);
    if (!bytes.ok()) return 0;  // a bad value is dropped, not fatal
    decoded = *std::move(bytes);
  } else {
    decoded = std::string(value);
  }
  (trailers ? trailing_ : initial_).emplace_back(std::string(name), std::move(decoded));
  return 0;
}

void GrpcStream::Publish(bool trailers) {
  netpoll::MutexLock lock(&mu_);
  if (trailers) {
    published_trailing_ = trailing_;
  } else {
    published_initial_ = initial_;
  }
}

void GrpcStream::OnHeadersDone(const nghttp2_frame& frame) {
  if (ended_) return;
  if (frame.headers.cat == NGHTTP2_HCAT_RESPONSE && http_status_ >= 100 && http_status_ < 200) {
    http_status_ = 0;  // informational; the real response follows
    return;
  }
  if (frame.headers.cat == NGHTTP2_HCAT_RESPONSE) Publish(false);
  if ((frame.hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) OnRemoteEnd();
}

absl::Status GrpcStream::RemoteStatus() const {
  if (grpc_status_.has_value()) {
    absl::StatusCode code = grpc_wire::StatusCodeFromGrpc(*grpc_status_);
    if (code == absl::StatusCode::kOk) {
      if (bad_content_type_) {
        return absl::UnknownError(
            absl::StrCat("response from ", address_, " is not gRPC (content-type)"));
      }
      if (deframer_.buffered() > 0) {
        return absl::InternalError(
            absl::StrCat("response from ", address_, " ended inside a message"));
      }
      return absl::OkStatus();
    }
    return absl::Status(code, grpc_message_.value_or(""));
  }
  if (http_status_ != 0 && http_status_ != 200) {
    return absl::Status(
        CodeForHttpStatus(http_status_),
        absl::StrCat("HTTP status ", http_status_, " from ", address_, " without grpc-status"));
  }
  return absl::UnknownError(absl::StrCat("stream from ", address_, " ended without grpc-status"));
}

void GrpcStream::OnRemoteEnd() {
  if (ended_) return;
  Publish(true);
  // Our side still open (the server answered before the whole request was
  // sent, or a stream not half-closed): close it with RST_STREAM NO_ERROR.
  std::optional<uint32_t> reset;
  if (!end_sent_) reset = NGHTTP2_NO_ERROR;
  End(RemoteStatus(), /*answered=*/true, reset);
}

void GrpcStream::OnClosed(uint32_t error_code) {
  conn = nullptr;
  if (ended_) return;
  // The server's END_STREAM ended the call already (OnRemoteEnd). A stream
  // closed before it was reset, even with NO_ERROR: its response is cut
  // short, whatever grpc-status its first headers claimed (INTERNAL, as in
  // gRPC core; found by tests/fuzz/grpc_client_fuzz).
  End(StatusForReset(error_code, address_), /*answered=*/false, std::nullopt);
}

void GrpcStream::OnData(const uint8_t* data, size_t len) {
  if (ended_) {
    if (conn != nullptr) conn->ConsumeStream(id, len);
    return;
  }
  deframer_.Append(absl::string_view(reinterpret_cast<const char*>(data), len));
  while (true) {
    std::optional<grpc_wire::MessageDeframer::Message> message;
    if (absl::Status s = deframer_.Next(message); !s.ok()) {
      End(absl::Status(s.code(), absl::StrCat("response from ", address_, ": ", s.message())),
          false, NGHTTP2_CANCEL);
      return;
    }
    if (!message.has_value()) break;
    if (call != nullptr && !ready_.empty()) {
      End(absl::InternalError(
              absl::StrCat("unary response from ", address_, " has more than one message")),
          false, NGHTTP2_CANCEL);
      return;
    }
    ready_.push_back(*std::move(message));
  }
  // Bytes of a message still arriving are given back at once (a message may
  // exceed the window); once a whole message waits unread, no more until it
  // is read.
  if (call != nullptr || ready_.empty() || (finish_requested_ && !read_done_)) {
    if (conn != nullptr) conn->ConsumeStream(id, len);
  } else {
    withheld_ += len;
  }
  DeliverRead();
}

void GrpcStream::ReleaseWithheld() {
  if (withheld_ > 0 && conn != nullptr) conn->ConsumeStream(id, withheld_);
  withheld_ = 0;
}

absl::Status GrpcStream::DecodeMessage(grpc_wire::MessageDeframer::Message& message,
                                       google::protobuf::Message& out) const {
  netpoll::LinkBuffer plain;
  const netpoll::LinkBuffer* bytes = &message.payload;
  if (message.compressed) {
    if (!response_encoding_.has_value() || *response_encoding_ == CompressType::kNone) {
      return absl::InternalError(absl::StrCat(
          "compressed message from ", address_,
          unknown_encoding_ ? " in an unknown grpc-encoding" : " without grpc-encoding"));
    }
    if (absl::Status s = Decompress(*response_encoding_, message.payload, max_message_size_, plain);
        !s.ok()) {
      if (absl::IsResourceExhausted(s)) {
        return absl::ResourceExhaustedError(absl::StrCat("decompressed response message from ",
                                                         address_, " exceeds the limit of ",
                                                         max_message_size_, " bytes"));
      }
      return absl::InternalError(
          absl::StrCat("cannot decompress a message from ", address_, ": ", s.message()));
    }
    bytes = &plain;
  }
  if (absl::Status s = ParseFromLinkBuffer(*bytes, out); !s.ok()) {
    return absl::InternalError(
        absl::StrCat("cannot parse a response message from ", address_, ": ", s.message()));
  }
  return absl::OkStatus();
}

void GrpcStream::DeliverRead() {
  if (call != nullptr) return;
  if (finish_requested_ && !read_done_) {
    ready_.clear();
    ReleaseWithheld();
  }
  if (!read_done_) return;
  if (ready_.empty()) {
    if (ended_) std::exchange(read_done_, nullptr)(false);
    return;
  }
  grpc_wire::MessageDeframer::Message message = std::move(ready_.front());
  ready_.pop_front();
  if (ready_.empty()) ReleaseWithheld();
  StreamCallback done = std::exchange(read_done_, nullptr);
  if (absl::Status s = DecodeMessage(message, *read_msg_); !s.ok()) {
    End(std::move(s), false, NGHTTP2_CANCEL);
    done(false);
    return;
  }
  done(true);
}

void GrpcStream::End(absl::Status status, bool answered, std::optional<uint32_t> reset) {
  if (ended_) return;
  ended_ = true;
  if (reset.has_value() && conn != nullptr && id > 0) conn->Reset(id, *reset);
  if (deadline_timer != netpoll::kInvalidTimerId) loop_->Cancel(deadline_timer);
  if (cancel.has_value()) cancel->Unregister(cancel_id);
  {
    netpoll::MutexLock lock(&mu_);
    if (published_initial_.empty()) published_initial_ = initial_;
    if (published_trailing_.empty()) published_trailing_ = trailing_;
  }
  send_buf.Clear();
  if (call != nullptr) {
    if (answered) {
      call->CompleteWithAnswer(
          [&](google::protobuf::Message& response, CallInfo* info) -> absl::Status {
            if (info != nullptr) {
              info->response_metadata = initial_;
              info->response_metadata.insert(info->response_metadata.end(), trailing_.begin(),
                                             trailing_.end());
            }
            // Moved: the caller, woken by this completion, holds the
            // status's last reference, not this loop thread.
            if (!status.ok()) return std::move(status);
            if (ready_.size() != 1) {
              return absl::InternalError(absl::StrCat("unary response from ", address_, " has ",
                                                      ready_.size(), " messages"));
            }
            return DecodeMessage(ready_.front(), response);
          });
    } else {
      call->Complete(std::move(status));
    }
    ready_.clear();
    if (auto owner = owner_.lock()) owner->ForgetUnary(call->id());
    return;  // a unary call has no on_end
  }
  final_status_ = status;
  if (write_done_) std::exchange(write_done_, nullptr)(false);
  DeliverRead();
  if (finish_done_) {
    ready_.clear();
    std::exchange(finish_done_, nullptr)(final_status_);
  }
  if (on_end) std::exchange(on_end, nullptr)(status);
}

void GrpcStream::Read(google::protobuf::Message* msg, StreamCallback done) {
  NP_CHECK(!read_done_) << "one Read at a time (rpc/stream_core.h)";
  read_msg_ = msg;
  read_done_ = std::move(done);
  DeliverRead();
}

void GrpcStream::Write(netpoll::LinkBuffer framed, StreamCallback done) {
  NP_CHECK(!write_done_) << "one Write at a time (rpc/stream_core.h)";
  if (ended_ || half_close) {
    done(false);
    return;
  }
  send_buf.Append(std::move(framed));
  if (deferred_ && conn != nullptr) {
    deferred_ = false;
    conn->ResumeData(id);
  }
  write_done_ = std::move(done);
  MaybeWriteDone();
}

void GrpcStream::WritesDone(StreamCallback done) {
  if (ended_ || half_close) {
    done(!ended_);
    return;
  }
  half_close = true;
  if (deferred_ && conn != nullptr) {
    deferred_ = false;
    conn->ResumeData(id);
  }
  done(true);
}

void GrpcStream::Finish(absl::AnyInvocable<void(absl::Status)> done) {
  finish_requested_ = true;
  if (ended_) {
    ready_.clear();
    done(final_status_);
    return;
  }
  finish_done_ = std::move(done);
  DeliverRead();  // drops what waits unread, gives the window back
}

// --------------------------------------------------------- GrpcConnection

void GrpcConnection::Dial() {
  netpoll::DialOptions dial;
  dial.timeout = options_.connect_timeout;
  dial.connection.max_output_bytes = options_.max_unwritten_bytes;
  dial.connection.write_timeout = options_.write_timeout;
  dial.keepalive = options_.tcp_keepalive;
  dial.connection.tls = options_.tls;
  auto callbacks = std::make_shared<netpoll::ConnectionCallbacks>();
  std::weak_ptr<GrpcConnection> weak = weak_from_this();
  callbacks->on_request = [weak](const netpoll::ConnectionPtr& conn, netpoll::LinkBuffer& in) {
    if (auto self = weak.lock()) {
      self->OnInput(in);
    } else {
      conn->Close(absl::CancelledError("channel destroyed"));
    }
  };
  callbacks->on_disconnect = [weak](const netpoll::ConnectionPtr&, const absl::Status& why) {
    if (auto self = weak.lock()) {
      self->Terminate(MakeRpcError(
          EFAILEDSOCKET, absl::StrCat("connection to ", self->address_, " broke during the call: ",
                                      why.ok() ? "closed by the server" : why.message())));
    }
  };
  dial.callbacks = std::move(callbacks);
  netpoll::Dialer::Dial(loop_, address_, dial, [weak](absl::StatusOr<netpoll::ConnectionPtr> conn) {
    if (auto self = weak.lock()) {
      self->OnDialed(std::move(conn));
    } else if (conn.ok()) {
      (*conn)->Close(absl::CancelledError("channel destroyed"));
    }
  });
}

void GrpcConnection::OnDialed(absl::StatusOr<netpoll::ConnectionPtr> conn) {
  loop_->AssertInLoopThread();
  if (state_ == State::kClosed) {
    if (conn.ok()) (*conn)->Close(absl::CancelledError("channel shut down"));
    return;
  }
  if (!conn.ok()) {
    if (auto owner = owner_.lock()) owner->OnConnectionDialFailed(this, conn.status());
    Terminate(MakeRpcError(EFAILEDSOCKET, absl::StrCat("cannot connect to ", address_, ": ",
                                                       conn.status().message())));
    return;
  }
  if (options_.tls != nullptr) {
    std::shared_ptr<const netpoll::TlsInfo> tls = (*conn)->tls_info();
    if (tls != nullptr && !tls->alpn.empty() && tls->alpn != "h2") {
      const std::string why = absl::StrCat(address_, " chose ALPN \"", tls->alpn,
                                           "\" instead of h2: it does not serve gRPC over TLS");
      if (auto owner = owner_.lock()) {
        owner->OnConnectionDialFailed(this, absl::UnavailableError(why));
      }
      Terminate(MakeRpcError(EFAILEDSOCKET, why));
      (*conn)->Close(absl::UnavailableError(why));
      return;
    }
  }
  conn_ = *std::move(conn);
  nghttp2_session_callbacks* callbacks = nullptr;
  nghttp2_option* option = nullptr;
  NP_CHECK(nghttp2_session_callbacks_new(&callbacks) == 0);
  NP_CHECK(nghttp2_option_new(&option) == 0);
  nghttp2_session_callbacks_set_on_header_callback(callbacks, &OnHeader);
  nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, &OnFrameRecv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, &OnDataChunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, &OnStreamClose);
  nghttp2_session_callbacks_set_on_frame_not_send_callback(callbacks, &OnFrameNotSend);
  nghttp2_option_set_no_auto_window_update(option, 1);
  nghttp2_option_set_max_send_header_block_length(option, 2 * kMaxHeaderBytes);
  const int made = nghttp2_session_client_new2(&session_, callbacks, this, option);
  nghttp2_session_callbacks_del(callbacks);
  nghttp2_option_del(option);
  NP_CHECK(made == 0) << "nghttp2_session_client_new2: " << nghttp2_strerror(made);
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE,
       static_cast<uint32_t>(GrpcClientTransport::kStreamWindow)},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, static_cast<uint32_t>(kMaxHeaderBytes)},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                        GrpcClientTransport::kConnectionWindow);
  state_ = State::kConnected;
  std::vector<std::shared_ptr<GrpcStream>> waiting = std::move(waiting_);
  waiting_.clear();
  for (auto& stream : waiting) {
    if (!stream->ended()) Submit(stream);
  }
  ScheduleKeepalive();
  Flush();
}

void GrpcConnection::Add(const std::shared_ptr<GrpcStream>& stream) {
  switch (state_) {
    case State::kConnecting:
      waiting_.push_back(stream);
      return;
    case State::kConnected:
      Submit(stream);
      Flush();
      return;
    case State::kClosed:
      stream->End(MakeRpcError(EFAILEDSOCKET, absl::StrCat("connection to ", address_, " closed")),
                  false, std::nullopt);
      return;
  }
}

void GrpcConnection::Submit(const std::shared_ptr<GrpcStream>& stream) {
  const uint64_t max_open = uint64_t{nghttp2_session_get_remote_settings(
                                session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS)} +
                            options_.max_queued_streams;
  if (streams_.size() >= max_open) {
    stream->End(
        MakeRpcError(EOVERCROWDED, absl::StrCat("too many calls waiting for a stream to ", address_,
                                                " (server's MAX_CONCURRENT_STREAMS reached)")),
        false, std::nullopt);
    return;
  }
  std::vector<nghttp2_nv> nva;
  nva.reserve(stream->headers.size());
  for (auto& [name, value] : stream->headers) {
    nva.push_back(nghttp2_nv{reinterpret_cast<uint8_t*>(name.data()),
                             reinterpret_cast<uint8_t*>(value.data()), name.size(), value.size(),
                             NGHTTP2_NV_FLAG_NONE});
  }
  nghttp2_data_provider provider;
  provider.source.ptr = stream.get();
  provider.read_callback = &ReadData;
  const int32_t id =
      nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(), &provider, stream.get());
  if (id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE) {
    // Stream ids spent: this connection drains, a new one takes the call.
    StartDraining();
    if (auto owner = owner_.lock()) {
      owner->StartInLoop(stream);
    } else {
      stream->End(absl::CancelledError("channel destroyed"), false, std::nullopt);
    }
    return;
  }
  if (id < 0) {
    stream->End(absl::InternalError(absl::StrCat("cannot start a stream to ", address_, ": ",
                                                 nghttp2_strerror(id))),
                false, std::nullopt);
    return;
  }
  stream->conn = this;
  stream->id = id;
  streams_[id] = stream;
}

void GrpcConnection::Reset(int32_t id, uint32_t error_code) {
  if (session_ == nullptr || state_ != State::kConnected) return;
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, error_code);
  Flush();
}

void GrpcConnection::ResumeData(int32_t id) {
  if (session_ == nullptr || state_ != State::kConnected) return;
  nghttp2_session_resume_data(session_, id);
  Flush();
}

void GrpcConnection::ConsumeStream(int32_t id, size_t bytes) {
  if (session_ == nullptr || state_ != State::kConnected || bytes == 0) return;
  nghttp2_session_consume_stream(session_, id, bytes);
  Flush();
}

void GrpcConnection::Flush() {
  if (session_ == nullptr || state_ != State::kConnected || callback_depth_ > 0) return;
  netpoll::LinkBuffer out;
  ++callback_depth_;
  ssize_t failed = 0;
  while (true) {
    const uint8_t* data = nullptr;
    const ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n < 0) {
      failed = n;
      break;
    }
    if (n == 0) break;
    out.WriteBinary(absl::string_view(reinterpret_cast<const char*>(data), static_cast<size_t>(n)));
  }
  --callback_depth_;
  if (failed != 0) {
    Terminate(MakeRpcError(EFAILEDSOCKET,
                           absl::StrCat("HTTP/2 session to ", address_,
                                        " failed: ", nghttp2_strerror(static_cast<int>(failed)))));
    return;
  }
  if (!out.empty()) {
    if (absl::Status written = conn_->Write(std::move(out)); !written.ok()) {
      Terminate(MakeRpcError(absl::IsResourceExhausted(written) ? EOVERCROWDED : EFAILEDSOCKET,
                             absl::StrCat("cannot write to ", address_, ": ", written.message())));
      return;
    }
  }
  if (draining_ && streams_.empty()) {
    Terminate(absl::CancelledError("connection drained"));
  } else if (nghttp2_session_want_read(session_) == 0 &&
             nghttp2_session_want_write(session_) == 0) {
    Terminate(MakeRpcError(EFAILEDSOCKET, absl::StrCat("HTTP/2 session to ", address_, " ended")));
  }
}

void GrpcConnection::OnInput(netpoll::LinkBuffer& input) {
  if (state_ != State::kConnected) {
    (void)input.Skip(input.Len());
    return;
  }
  auto self = shared_from_this();  // a stream's completion may drop the transport's reference
  ssize_t failed = 0;
  ++callback_depth_;
  input.ForEachChunk([&](absl::string_view chunk) {
    if (failed != 0 || state_ != State::kConnected) return;
    const ssize_t n = nghttp2_session_mem_recv(
        session_, reinterpret_cast<const uint8_t*>(chunk.data()), chunk.size());
    if (n < 0) failed = n;
  });
  --callback_depth_;
  (void)input.Skip(input.Len());
  input.Release();
  if (failed != 0) {
    NP_LOG(WARNING) << "closing HTTP/2 connection to " << address_ << ": "
                    << nghttp2_strerror(static_cast<int>(failed));
    Terminate(
        MakeRpcError(EFAILEDSOCKET, absl::StrCat("bad HTTP/2 from ", address_, ": ",
                                                 nghttp2_strerror(static_cast<int>(failed)))));
    return;
  }
  Flush();
}

void GrpcConnection::StartDraining() {
  if (draining_) return;
  draining_ = true;
  if (auto owner = owner_.lock()) owner->OnConnectionDraining(this);
}

void GrpcConnection::Terminate(const absl::Status& status) {
  if (state_ == State::kClosed) return;
  auto self = shared_from_this();
  state_ = State::kClosed;
  loop_->Cancel(keepalive_timer_);
  loop_->Cancel(ping_timer_);
  if (auto owner = owner_.lock()) owner->OnConnectionClosed(this, proven_, status);
  auto streams = std::move(streams_);
  streams_.clear();
  auto waiting = std::move(waiting_);
  waiting_.clear();
  for (auto& [id, stream] : streams) {
    stream->conn = nullptr;
    stream->End(absl::Status(status.code(), status.message()), false, std::nullopt);
  }
  for (auto& stream : waiting) {
    stream->End(absl::Status(status.code(), status.message()), false, std::nullopt);
  }
  if (conn_) conn_->Close(status);
}

void GrpcConnection::ScheduleKeepalive() {
  if (options_.keepalive_time == absl::InfiniteDuration()) return;
  std::weak_ptr<GrpcConnection> weak = weak_from_this();
  keepalive_timer_ = loop_->RunAfter(options_.keepalive_time, [weak] {
    if (auto self = weak.lock()) self->SendPing();
  });
}

void GrpcConnection::SendPing() {
  if (state_ != State::kConnected) return;
  nghttp2_submit_ping(session_, NGHTTP2_FLAG_NONE, nullptr);
  ping_outstanding_ = true;
  std::weak_ptr<GrpcConnection> weak = weak_from_this();
  ping_timer_ = loop_->RunAfter(options_.keepalive_timeout, [weak] {
    auto self = weak.lock();
    if (!self || !self->ping_outstanding_) return;
    self->Terminate(MakeRpcError(
        EFAILEDSOCKET, absl::StrCat("keepalive ping to ", self->address_, " not answered within ",
                                    absl::FormatDuration(self->options_.keepalive_timeout))));
  });
  Flush();
}

int GrpcConnection::OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                             size_t namelen, const uint8_t* value, size_t valuelen, uint8_t,
                             void* user_data) {
  auto* self = static_cast<GrpcConnection*>(user_data);
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  if (auto stream = self->Find(frame->hd.stream_id)) {
    return stream->OnHeader(*frame, absl::string_view(reinterpret_cast<const char*>(name), namelen),
                            absl::string_view(reinterpret_cast<const char*>(value), valuelen));
  }
  return 0;
}

int GrpcConnection::OnFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
  auto* self = static_cast<GrpcConnection*>(user_data);
  switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
      if (auto stream = self->Find(frame->hd.stream_id)) stream->OnHeadersDone(*frame);
      break;
    case NGHTTP2_DATA:
      if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) {
        if (auto stream = self->Find(frame->hd.stream_id)) stream->OnRemoteEnd();
      }
      break;
    case NGHTTP2_SETTINGS:
      if ((frame->hd.flags & NGHTTP2_FLAG_ACK) == 0 && !self->proven_) {
        self->proven_ = true;
        if (auto owner = self->owner_.lock()) owner->OnConnectionProven();
      }
      break;
    case NGHTTP2_PING:
      if ((frame->hd.flags & NGHTTP2_FLAG_ACK) != 0 && self->ping_outstanding_) {
        self->ping_outstanding_ = false;
        self->loop_->Cancel(self->ping_timer_);
        self->ScheduleKeepalive();
      }
      break;
    case NGHTTP2_GOAWAY:
      // nghttp2 closes the streams above last_stream_id (REFUSED_STREAM).
      self->StartDraining();
      break;
    default:
      break;
  }
  return 0;
}

int GrpcConnection::OnDataChunk(nghttp2_session* session, uint8_t, int32_t stream_id,
                                const uint8_t* data, size_t len, void* user_data) {
  auto* self = static_cast<GrpcConnection*>(user_data);
  nghttp2_session_consume_connection(session, len);
  if (auto stream = self->Find(stream_id)) {
    stream->OnData(data, len);
  } else {
    nghttp2_session_consume_stream(session, stream_id, len);
  }
  return 0;
}

int GrpcConnection::OnStreamClose(nghttp2_session*, int32_t stream_id, uint32_t error_code,
                                  void* user_data) {
  auto* self = static_cast<GrpcConnection*>(user_data);
  auto it = self->streams_.find(stream_id);
  if (it == self->streams_.end()) return 0;
  std::shared_ptr<GrpcStream> stream = std::move(it->second);
  self->streams_.erase(it);
  stream->OnClosed(error_code);
  return 0;
}

int GrpcConnection::OnFrameNotSend(nghttp2_session*, const nghttp2_frame* frame, int lib_error_code,
                                   void* user_data) {
  auto* self = static_cast<GrpcConnection*>(user_data);
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  auto it = self->streams_.find(frame->hd.stream_id);
  if (it == self->streams_.end()) return 0;
  std::shared_ptr<GrpcStream> stream = std::move(it->second);
  self->streams_.erase(it);
  stream->conn = nullptr;
  if (lib_error_code == NGHTTP2_ERR_START_STREAM_NOT_ALLOWED ||
      lib_error_code == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE) {
    stream->End(
        MakeRpcError(ELOGOFF, absl::StrCat(self->address_, " refused new streams (GOAWAY)")), false,
        std::nullopt);
  } else {
    stream->End(absl::InternalError(absl::StrCat("cannot send a request to ", self->address_, ": ",
                                                 nghttp2_strerror(lib_error_code))),
                false, std::nullopt);
  }
  return 0;
}

ssize_t GrpcConnection::ReadData(nghttp2_session*, int32_t, uint8_t* buf, size_t length,
                                 uint32_t* data_flags, nghttp2_data_source* source, void*) {
  return static_cast<GrpcStream*>(source->ptr)->ReadRequestData(buf, length, data_flags);
}

namespace {

// The caller's end of a gRPC stream: posts every operation to the loop.
class GrpcClientStreamHandle final : public ClientStreamCore {
 public:
  explicit GrpcClientStreamHandle(std::shared_ptr<GrpcStream> stream)
      : stream_(std::move(stream)) {}
  ~GrpcClientStreamHandle() override { Cancel(); }

  void Read(google::protobuf::Message* msg, StreamCallback done) override {
    stream_->loop()->QueueInLoop([stream = stream_, msg, done = std::move(done)]() mutable {
      stream->Read(msg, std::move(done));
    });
  }
  void Write(const google::protobuf::Message& msg, StreamCallback done) override {
    netpoll::LinkBuffer payload;
    absl::Status made = SerializeToLinkBuffer(msg, payload);
    netpoll::LinkBuffer framed;
    if (made.ok()) made = FrameMessage(std::move(payload), stream_->request_encoding(), framed);
    stream_->loop()->QueueInLoop([stream = stream_, made = std::move(made),
                                  framed = std::move(framed), done = std::move(done)]() mutable {
      if (!made.ok()) {
        stream->End(absl::InternalError(absl::StrCat("cannot send a message: ", made.message())),
                    false, NGHTTP2_CANCEL);
        done(false);
        return;
      }
      stream->Write(std::move(framed), std::move(done));
    });
  }
  void WritesDone(StreamCallback done) override {
    stream_->loop()->QueueInLoop([stream = stream_, done = std::move(done)]() mutable {
      stream->WritesDone(std::move(done));
    });
  }
  void Finish(absl::AnyInvocable<void(absl::Status)> done) override {
    stream_->loop()->QueueInLoop(
        [stream = stream_, done = std::move(done)]() mutable { stream->Finish(std::move(done)); });
  }
  void Cancel() override {
    stream_->loop()->QueueInLoop([stream = stream_] {
      stream->End(absl::CancelledError("call cancelled"), false, NGHTTP2_CANCEL);
    });
  }
  Metadata initial_metadata() const override { return stream_->initial_metadata(); }
  Metadata trailing_metadata() const override { return stream_->trailing_metadata(); }

 private:
  const std::shared_ptr<GrpcStream> stream_;
};

}  // namespace
}  // namespace grpc_client_internal

using grpc_client_internal::GrpcConnection;
using grpc_client_internal::GrpcStream;

std::shared_ptr<GrpcClientTransport> GrpcClientTransport::Create(
    std::string address, netpoll::EventLoop* loop, const GrpcTransportOptions& options) {
  return std::shared_ptr<GrpcClientTransport>(
      new GrpcClientTransport(std::move(address), loop, options));
}

GrpcClientTransport::GrpcClientTransport(std::string address, netpoll::EventLoop* loop,
                                         const GrpcTransportOptions& options)
    : address_(std::move(address)),
      loop_(loop),
      options_(options),
      backoff_(options.reconnect_backoff) {}

GrpcClientTransport::~GrpcClientTransport() = default;

namespace {

std::string AuthorityOf(const std::string& address, const GrpcTransportOptions& options) {
  if (!options.authority.empty()) return options.authority;
  if (absl::StartsWith(address, "unix:")) return "localhost";
  return address;
}

}  // namespace

void GrpcClientTransport::Send(ClientCallPtr call, const ClientRequest& request,
                               absl::Time /*deadline*/, absl::Duration timeout) {
  call->set_remote_address(address_);
  absl::StatusOr<grpc_client_internal::Headers> headers =
      grpc_client_internal::RequestHeaders(request, timeout, AuthorityOf(address_, options_));
  if (!headers.ok()) {
    call->Complete(headers.status());
    return;
  }
  auto stream = std::make_shared<GrpcStream>(
      weak_from_this(), loop_, address_, request.compress_type, options_.max_receive_message_size);
  netpoll::LinkBuffer payload = request.payload.Clone();
  if (!request.attachment.empty()) {
    call->Complete(MakeRpcError(EREQUEST, "gRPC calls carry no attachment"));
    return;
  }
  if (absl::Status framed = grpc_client_internal::FrameMessage(
          std::move(payload), request.compress_type, stream->send_buf);
      !framed.ok()) {
    call->Complete(std::move(framed));
    return;
  }
  stream->headers = *std::move(headers);
  stream->half_close = true;
  stream->call = std::move(call);
  in_flight_.fetch_add(1, std::memory_order_relaxed);
  std::weak_ptr<GrpcClientTransport> weak = weak_from_this();
  loop_->RunInLoop([weak, stream] {
    auto self = weak.lock();
    if (!self) {
      stream->End(absl::CancelledError("channel destroyed"), false, std::nullopt);
      return;
    }
    self->unary_[stream->call->id()] = stream;
    if (stream->call->completed()) {  // abandoned before it left
      stream->End(absl::CancelledError("call abandoned"), false, std::nullopt);
      return;
    }
    self->StartInLoop(stream);
  });
}

void GrpcClientTransport::ForgetUnary(int64_t call_id) {
  if (unary_.erase(call_id) > 0) in_flight_.fetch_sub(1, std::memory_order_relaxed);
}

void GrpcClientTransport::Abandon(const ClientCallPtr& call, absl::Status status) {
  if (!call->Complete(std::move(status))) return;
  std::weak_ptr<GrpcClientTransport> weak = weak_from_this();
  loop_->RunInLoop([weak, id = call->id()] {
    auto self = weak.lock();
    if (!self) return;
    auto it = self->unary_.find(id);
    if (it == self->unary_.end()) return;
    std::shared_ptr<GrpcStream> stream = it->second;
    stream->End(absl::CancelledError("call abandoned"), false, NGHTTP2_CANCEL);
  });
}

void GrpcClientTransport::StartInLoop(const std::shared_ptr<GrpcStream>& stream) {
  loop_->AssertInLoopThread();
  if (stream->ended()) return;
  if (shutdown_.load(std::memory_order_relaxed)) {
    stream->End(absl::CancelledError("channel is shut down"), false, std::nullopt);
    return;
  }
  if (current_ && (current_->draining() || current_->closed())) current_.reset();
  if (!current_) {
    if (absl::Now() < backoff_until_) {
      stream->End(MakeRpcError(EFAILEDSOCKET,
                               absl::StrCat("cannot connect to ", address_, " (retrying after ",
                                            absl::FormatDuration(backoff_),
                                            "): ", last_dial_error_.message())),
                  false, std::nullopt);
      return;
    }
    current_ = std::make_shared<GrpcConnection>(weak_from_this(), loop_, address_, options_);
    current_->Dial();
  }
  GrpcConnectionPtr conn = current_;
  conn->Add(stream);
}

void GrpcClientTransport::OnConnectionDialFailed(GrpcConnection* conn, const absl::Status& why) {
  if (current_.get() == conn) current_.reset();
  last_dial_error_ = why;
  backoff_until_ = absl::Now() + backoff_;
  backoff_ = std::min(backoff_ * 2, options_.max_reconnect_backoff);
}

void GrpcClientTransport::OnConnectionProven() {
  unproven_breaks_ = 0;
  backoff_ = options_.reconnect_backoff;
  backoff_until_ = absl::InfinitePast();
}

void GrpcClientTransport::OnConnectionDraining(GrpcConnection* conn) {
  if (current_.get() != conn) return;
  draining_.insert(std::move(current_));
  current_.reset();
}

void GrpcClientTransport::OnConnectionClosed(GrpcConnection* conn, bool proven,
                                             const absl::Status& why) {
  if (current_.get() == conn) {
    current_.reset();
    if (!proven && ++unproven_breaks_ >= 2) {
      // Connections that break before the server's SETTINGS, again: the next
      // dial waits, as after a failed one. The cause (a TLS alert, the
      // peer closing) stays in the message.
      last_dial_error_ = absl::UnavailableError(
          absl::StrCat("connection broke before the HTTP/2 handshake: ", why.message()));
      backoff_until_ = absl::Now() + backoff_;
      backoff_ = std::min(backoff_ * 2, options_.max_reconnect_backoff);
    }
  }
  for (auto it = draining_.begin(); it != draining_.end(); ++it) {
    if (it->get() == conn) {
      draining_.erase(it);
      break;
    }
  }
}

std::shared_ptr<ClientStreamCore> GrpcClientTransport::NewStream(const ClientRequest& request,
                                                                 ClientStreamStart start) {
  auto stream = std::make_shared<GrpcStream>(
      weak_from_this(), loop_, address_, request.compress_type, options_.max_receive_message_size);
  stream->on_end = std::move(start.on_end);
  auto handle = std::make_shared<grpc_client_internal::GrpcClientStreamHandle>(stream);
  absl::StatusOr<grpc_client_internal::Headers> headers =
      grpc_client_internal::RequestHeaders(request, start.timeout, AuthorityOf(address_, options_));
  std::weak_ptr<GrpcClientTransport> weak = weak_from_this();
  if (!headers.ok()) {
    loop_->QueueInLoop([stream, status = headers.status()]() mutable {
      stream->End(std::move(status), false, std::nullopt);
    });
    return handle;
  }
  stream->headers = *std::move(headers);
  loop_->QueueInLoop(
      [weak, stream, deadline = start.deadline, cancel = std::move(start.cancel)]() mutable {
        auto self = weak.lock();
        if (!self) {
          stream->End(absl::CancelledError("channel destroyed"), false, std::nullopt);
          return;
        }
        std::weak_ptr<GrpcStream> weak_stream = stream;
        if (deadline != absl::InfiniteFuture()) {
          stream->deadline_timer = self->loop_->RunAfter(deadline - absl::Now(), [weak_stream] {
            if (auto s = weak_stream.lock()) {
              s->deadline_timer = netpoll::kInvalidTimerId;
              s->End(MakeRpcError(ERPCTIMEDOUT, "deadline exceeded during the stream"), false,
                     NGHTTP2_CANCEL);
            }
          });
        }
        if (cancel.has_value()) {
          netpoll::EventLoop* loop = self->loop_;
          stream->cancel = cancel;
          stream->cancel_id = cancel->Register([weak_stream, loop] {
            loop->QueueInLoop([weak_stream] {
              if (auto s = weak_stream.lock()) {
                s->End(absl::CancelledError("call cancelled"), false, NGHTTP2_CANCEL);
              }
            });
          });
        }
        self->StartInLoop(stream);
      });
  return handle;
}

void GrpcClientTransport::Shutdown() {
  auto self = shared_from_this();
  netpoll::Notification done;
  loop_->RunInLoop([self, &done] {
    self->shutdown_.store(true, std::memory_order_relaxed);
    std::vector<GrpcConnectionPtr> conns(self->draining_.begin(), self->draining_.end());
    if (self->current_) conns.push_back(self->current_);
    self->current_.reset();
    self->draining_.clear();
    for (auto& conn : conns) conn->Terminate(absl::CancelledError("channel destroyed"));
    // Unary calls not on a connection (none should be left).
    std::vector<GrpcStreamPtr> unary;
    for (auto& [id, stream] : self->unary_) unary.push_back(stream);
    for (auto& stream : unary) {
      stream->End(absl::CancelledError("channel destroyed"), false, std::nullopt);
    }
    done.Notify();
  });
  if (!loop_->IsInLoopThread()) done.WaitForNotification();
}

}  // namespace nprpc
