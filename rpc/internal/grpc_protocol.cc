#include "rpc/internal/grpc_protocol.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "netpoll/logging.h"
#include "rpc/authenticator.h"
#include "rpc/errors.h"
#include "rpc/internal/compression.h"
#include "rpc/internal/frame_codec.h"
#include "rpc/internal/grpc_wire.h"
#include "rpc/internal/server_call.h"
#include "rpc/internal/server_core.h"
#include "rpc/server_context.h"
#include "rpc/stream_core.h"
#include "rpc/trace_context.h"

namespace nprpc {
namespace {

// What a call holds besides its messages: the call, its context, headers.
constexpr size_t kCallOverheadBytes = 1024;
// The connection-level receive window: large, since each stream's own
// window (ServerOptions::grpc_stream_window_bytes) bounds what it buffers.
constexpr int32_t kConnectionWindowBytes = 16 << 20;
// After a GOAWAY for an error, the peer's input is read and dropped for at
// most this long and this much before the connection closes.
constexpr absl::Duration kLingerTime = absl::Seconds(2);
constexpr size_t kLingerBytes = size_t{1} << 20;
// After the peer closed its side, answers still owed get this long.
constexpr absl::Duration kPeerClosedGrace = absl::Seconds(10);

using Metadata = std::vector<std::pair<std::string, std::string>>;

// nghttp2's allocations of one session (HPACK tables, stream states, queued
// frames), counted so that the session charges them to the memory budget.
// Each block carries its size in a header.
struct H2Memory {
  int64_t allocated = 0;
};
constexpr size_t kAllocHeader = alignof(std::max_align_t);

void* H2Malloc(size_t size, void* user) {
  auto* base = static_cast<char*>(std::malloc(size + kAllocHeader));
  if (base == nullptr) return nullptr;
  std::memcpy(base, &size, sizeof(size));
  static_cast<H2Memory*>(user)->allocated += static_cast<int64_t>(size);
  return base + kAllocHeader;
}

void H2Free(void* ptr, void* user) {
  if (ptr == nullptr) return;
  char* base = static_cast<char*>(ptr) - kAllocHeader;
  size_t size = 0;
  std::memcpy(&size, base, sizeof(size));
  static_cast<H2Memory*>(user)->allocated -= static_cast<int64_t>(size);
  std::free(base);
}

void* H2Calloc(size_t n, size_t size, void* user) {
  if (size != 0 && n > std::numeric_limits<size_t>::max() / size) return nullptr;
  void* ptr = H2Malloc(n * size, user);
  if (ptr != nullptr) std::memset(ptr, 0, n * size);
  return ptr;
}

void* H2Realloc(void* ptr, size_t size, void* user) {
  if (ptr == nullptr) return H2Malloc(size, user);
  char* base = static_cast<char*>(ptr) - kAllocHeader;
  size_t old_size = 0;
  std::memcpy(&old_size, base, sizeof(old_size));
  auto* moved = static_cast<char*>(std::realloc(base, size + kAllocHeader));
  if (moved == nullptr) return nullptr;
  std::memcpy(moved, &size, sizeof(size));
  static_cast<H2Memory*>(user)->allocated +=
      static_cast<int64_t>(size) - static_cast<int64_t>(old_size);
  return moved + kAllocHeader;
}

class GrpcSession;
class GrpcCall;

// One HTTP/2 stream (one call) as the session sees it. Loop thread only.
struct GrpcStream {
  explicit GrpcStream(int32_t stream_id, size_t max_message)
      : id(stream_id), deframer(max_message) {}

  const int32_t id;
  // ------------------------------------------------ Request side
  Metadata headers;  // as received, until the call takes them
  size_t header_bytes = 0;
  bool headers_too_large = false;
  bool started = false;        // a call exists (streaming) or ran (unary)
  bool remote_closed = false;  // END_STREAM received
  MethodEntry* method = nullptr;
  CompressType request_encoding = CompressType::kNone;
  grpc_wire::MessageDeframer deframer;
  std::deque<grpc_wire::MessageDeframer::Message> ready;  // whole, not yet read
  size_t unacked = 0;   // DATA bytes not yet acknowledged to the stream's window
  int64_t charged = 0;  // ChargeHeld() for deframer + ready
  // The handler's outstanding Read (streaming).
  google::protobuf::Message* read_msg = nullptr;
  StreamCallback read_done;
  // ------------------------------------------------ Response side
  // The call, while anyone (handler, queue, Responder) holds it: a handler
  // that drops its stream without Finish() ends it (~GrpcCall).
  std::weak_ptr<GrpcCall> call;
  bool answered = false;  // trailers (or RST) submitted: nothing more to send
  bool headers_sent = false;
  bool deferred = false;      // ReadData() returned NGHTTP2_ERR_DEFERRED
  netpoll::LinkBuffer out;    // framed response messages waiting for the window
  StreamCallback write_done;  // runs when `out` is under kGrpcStreamSendBuffer
  bool finishing = false;     // send `trailers` once `out` is sent
  Metadata trailers;
  bool closed = false;  // nghttp2 closed it (or the connection closed)
};

// The answer a call hands to its stream, made by EncodeAnswer on any thread.
struct GrpcAnswer {
  int http_status = 200;
  Metadata initial;   // response headers beyond :status/content-type (when not sent yet)
  Metadata trailers;  // grpc-status, grpc-message, trailing metadata
};

// Lower-case ASCII keys; "-bin" values base64. Reserved and invalid keys are
// dropped (they are the protocol's).
void AppendUserMetadata(const ServerContext::UserFields& fields, Metadata& out) {
  for (const auto& [key, value] : fields) {
    std::string lower = absl::AsciiStrToLower(key);
    if (!grpc_wire::IsValidMetadataKey(lower) || grpc_wire::IsReservedHeader(lower) ||
        lower == kStatusCodeField) {
      continue;
    }
    if (grpc_wire::IsBinaryKey(lower)) {
      out.emplace_back(std::move(lower), grpc_wire::EncodeBinaryValue(value));
    } else {
      out.emplace_back(std::move(lower), value);
    }
  }
}

Metadata StatusTrailers(const absl::Status& status) {
  Metadata trailers;
  trailers.emplace_back("grpc-status", absl::StrCat(static_cast<int>(status.code())));
  if (!status.ok() && !status.message().empty()) {
    trailers.emplace_back("grpc-message", grpc_wire::PercentEncode(status.message()));
  }
  return trailers;
}

// One gRPC call: a ServerCall for the shared path, and for a streaming method
// the handler's ServerStreamCore. Any thread; everything that touches the
// stream is handed to the session's loop.
class GrpcCall final : public ServerCall, public ServerStreamCore {
 public:
  GrpcCall(std::shared_ptr<ServerCore> core, netpoll::ConnectionPtr conn,
           std::shared_ptr<GrpcSession> session, MethodEntry* method,
           std::shared_ptr<GrpcStream> stream, std::vector<CompressType> accepted);
  // A streaming handler that dropped its stream without Finish() ends the
  // call with INTERNAL (the slot goes back, the client gets trailers).
  ~GrpcCall() override {
    if (!finished()) Complete(absl::InternalError("the handler dropped the stream unfinished"));
  }

  // Unary: the request message, before Start().
  void set_request(grpc_wire::MessageDeframer::Message message, CompressType encoding) {
    request_ = std::move(message);
    request_encoding_ = encoding;
  }
  const std::shared_ptr<GrpcStream>& stream() const { return stream_; }

  // ServerStreamCore.
  ServerContext& context() override { return ServerCall::context(); }
  void Read(google::protobuf::Message* msg, StreamCallback done) override;
  void Write(const google::protobuf::Message& msg, StreamCallback done) override;
  void Finish(absl::Status status) override { Complete(std::move(status)); }

 protected:
  absl::Status ParseRequest(google::protobuf::Message& request) override;
  bool EncodeAnswer(const absl::Status& status, const google::protobuf::Message* response,
                    bool by_handler, netpoll::LinkBuffer& out) override;
  void Deliver(netpoll::LinkBuffer answer, netpoll::TimerId timer) override;
  std::shared_ptr<ServerStreamCore> StreamCore() override {
    return std::static_pointer_cast<GrpcCall>(shared_from_this());
  }

 private:
  // The response headers' metadata, the first time only (the handler's
  // thread, before its first message or its answer).
  std::optional<Metadata> TakeInitialMetadata();
  // Frames (and compresses) one response message.
  absl::Status FrameMessage(const google::protobuf::Message& msg, netpoll::LinkBuffer& out);

  const std::shared_ptr<GrpcSession> grpc_session_;
  const std::shared_ptr<GrpcStream> stream_;  // fields: loop thread only
  // The encodings the client accepts (grpc-accept-encoding); the response's
  // is picked from them by TakeInitialMetadata(), on the handler's thread.
  const std::vector<CompressType> accepted_;
  CompressType response_encoding_ = CompressType::kNone;
  std::optional<grpc_wire::MessageDeframer::Message> request_;  // unary, ParseRequest
  CompressType request_encoding_ = CompressType::kNone;
  std::atomic<bool> headers_taken_{false};
  GrpcAnswer answer_;  // EncodeAnswer -> Deliver (same thread)
};

// One HTTP/2 connection. Loop thread only.
class GrpcSession final : public ServerSession, public std::enable_shared_from_this<GrpcSession> {
 public:
  GrpcSession(std::shared_ptr<ServerCore> core, netpoll::ConnectionPtr conn);
  ~GrpcSession() override;

  // Creates the nghttp2 session and queues the server's SETTINGS.
  bool Init();

  void OnInput(const netpoll::ConnectionPtr& conn, netpoll::LinkBuffer& input) override;
  void OnCallDone(const netpoll::ConnectionPtr& conn, size_t held_bytes) override;
  void OnPeerClosed(const netpoll::ConnectionPtr& conn) override;
  void OnClosed(const netpoll::ConnectionPtr& conn) override;
  void OnServerStopping(const netpoll::ConnectionPtr& conn) override;

  // From the calls, on the loop (queued by them).
  void OnAnswer(const netpoll::ConnectionPtr& conn, const std::shared_ptr<GrpcStream>& stream,
                netpoll::LinkBuffer message, GrpcAnswer answer, netpoll::TimerId timer,
                size_t held_bytes);
  void OnRead(const std::shared_ptr<GrpcStream>& stream, google::protobuf::Message* msg,
              StreamCallback done);
  void OnWrite(const std::shared_ptr<GrpcStream>& stream, netpoll::LinkBuffer framed,
               std::optional<Metadata> initial, StreamCallback done);

  ServerCore& core() { return *core_; }
  const netpoll::ConnectionPtr& connection() const { return conn_; }

 private:
  // nghttp2 callbacks (user_data is the session).
  static int OnBeginHeaders(nghttp2_session* h2, const nghttp2_frame* frame, void* user);
  static int OnHeader(nghttp2_session* h2, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t flags,
                      void* user);
  static int OnFrameRecv(nghttp2_session* h2, const nghttp2_frame* frame, void* user);
  static int OnDataChunk(nghttp2_session* h2, uint8_t flags, int32_t stream_id, const uint8_t* data,
                         size_t len, void* user);
  static int OnStreamClose(nghttp2_session* h2, int32_t stream_id, uint32_t error_code, void* user);
  static int OnFrameSend(nghttp2_session* h2, const nghttp2_frame* frame, void* user);
  static ssize_t ReadData(nghttp2_session* h2, int32_t stream_id, uint8_t* buf, size_t length,
                          uint32_t* data_flags, nghttp2_data_source* source, void* user);

  std::shared_ptr<GrpcStream> Find(int32_t stream_id) const;
  // The request's headers are in: validate, look up, start a streaming call.
  void OnRequestHeaders(const std::shared_ptr<GrpcStream>& stream);
  // END_STREAM from the client.
  void OnRemoteClosed(const std::shared_ptr<GrpcStream>& stream);
  // Unary: the whole request is in.
  void StartUnary(const std::shared_ptr<GrpcStream>& stream);
  // Acquire + the call; false when refused (then answered).
  std::shared_ptr<GrpcCall> NewCall(const std::shared_ptr<GrpcStream>& stream);
  // Answers with no call (or for a call that could not run): one HEADERS
  // frame with END_STREAM. `http_status` 200 is a gRPC trailers-only answer.
  void AnswerWithoutCall(const std::shared_ptr<GrpcStream>& stream, const absl::Status& status,
                         int http_status = 200, Metadata extra = {});
  // A stream-level failure found by the session (oversized or malformed
  // message): the call ends with `status`, or the stream is answered.
  void FailStream(const std::shared_ptr<GrpcStream>& stream, const absl::Status& status);
  // Moves whole messages from the deframer to `ready`, acknowledges what
  // may be, completes a waiting Read.
  void DrainDeframer(const std::shared_ptr<GrpcStream>& stream);
  void DeliverRead(const std::shared_ptr<GrpcStream>& stream);
  void Acknowledge(const std::shared_ptr<GrpcStream>& stream);
  void Recharge(const std::shared_ptr<GrpcStream>& stream);
  void SubmitHeaders(const std::shared_ptr<GrpcStream>& stream, Metadata initial);
  void ResumeData(const std::shared_ptr<GrpcStream>& stream);
  void MaybeCompleteWrite(GrpcStream& stream);
  // The stream is gone: its call is cancelled unless answered, its
  // callbacks fail, its memory goes back.
  void CloseStream(const std::shared_ptr<GrpcStream>& stream, bool cancelled);
  // Runs `cb(ok)` later on the loop (never inside the caller).
  void Post(StreamCallback cb, bool ok);
  // Serializes what nghttp2 wants to send into the connection, up to the
  // output bound; closes when the session is over.
  void Flush();
  void Terminate(uint32_t error_code, absl::string_view why);
  // Charges what nghttp2 holds now to the memory budget.
  void SyncMemoryCharge();
  void CountReset();

  const std::shared_ptr<ServerCore> core_;
  netpoll::EventLoop* const loop_;  // the connection's; outlives every task queued on it
  netpoll::ConnectionPtr conn_;     // reset by OnClosed() (the connection owns us)
  nghttp2_session* h2_ = nullptr;
  absl::flat_hash_map<int32_t, std::shared_ptr<GrpcStream>> streams_;
  const size_t max_message_;
  const size_t max_header_bytes_;
  const size_t output_bound_;
  size_t unconfirmed_output_ = 0;  // written, not yet handed to the socket
  bool paused_for_output_ = false;
  bool in_h2_ = false;  // inside nghttp2 (mem_recv / mem_send)
  bool flushing_ = false;
  bool closed_ = false;
  bool closing_ = false;  // close once what nghttp2 has is written (Flush)
  absl::Status close_reason_ = absl::UnavailableError("HTTP/2 session ended");
  bool close_requested_ = false;  // Flush() closed, or armed the linger timer
  bool linger_ = false;           // Terminate(): drop input for kLingerTime before closing
  size_t lingered_bytes_ = 0;
  bool peer_closed_ = false;
  bool shutdown_notice_sent_ = false;
  bool goaway_sent_ = false;
  bool authenticated_;
  std::shared_ptr<const AuthContext> auth_context_;
  H2Memory memory_;             // what nghttp2 holds
  int64_t memory_charged_ = 0;  // ChargeHeld() for it (SyncMemoryCharge)
  // Rapid reset: RST_STREAMs received in the current one-second window.
  absl::Time reset_window_start_ = absl::InfinitePast();
  int resets_in_window_ = 0;
  const std::shared_ptr<std::atomic<bool>> closed_flag_ =
      std::make_shared<std::atomic<bool>>(false);
};

// ---------------------------------------------------------------- GrpcCall

GrpcCall::GrpcCall(std::shared_ptr<ServerCore> core, netpoll::ConnectionPtr conn,
                   std::shared_ptr<GrpcSession> session, MethodEntry* method,
                   std::shared_ptr<GrpcStream> stream, std::vector<CompressType> accepted)
    : ServerCall(std::move(core), std::move(conn), session, method),
      grpc_session_(std::move(session)),
      stream_(std::move(stream)),
      accepted_(std::move(accepted)) {}

absl::Status GrpcCall::ParseRequest(google::protobuf::Message& request) {
  if (!request_.has_value()) return MakeRpcError(EINTERNAL, "no request message");
  grpc_wire::MessageDeframer::Message message = std::move(*request_);
  request_.reset();
  netpoll::LinkBuffer plain;
  if (message.compressed) {
    const size_t max = core().options().grpc_max_receive_message_size;
    if (absl::Status s = Decompress(request_encoding_, message.payload, max, plain); !s.ok()) {
      if (absl::IsResourceExhausted(s)) {
        return MakeRpcError(ELIMIT, absl::StrCat("Decompressed gRPC message is larger than the "
                                                 "maximum of ",
                                                 max, " bytes"));
      }
      return MakeRpcError(
          EINTERNAL, absl::StrCat("Fail to decompress request (",
                                  grpc_wire::EncodingName(request_encoding_), "): ", s.message()));
    }
    if (!TryChargeBudget(plain.Len())) {
      core().CountRefusedDecompression();
      return MakeRpcError(ELIMIT, "Server memory budget exhausted: cannot decompress the request");
    }
  } else {
    plain = std::move(message.payload);
  }
  if (!ParseFromLinkBuffer(plain, request).ok()) {
    return MakeRpcError(EINTERNAL, absl::StrCat("Fail to parse request message ",
                                                request.GetDescriptor()->full_name(),
                                                ", request_size=", plain.Len()));
  }
  return absl::OkStatus();
}

std::optional<Metadata> GrpcCall::TakeInitialMetadata() {
  if (headers_taken_.exchange(true, std::memory_order_acq_rel)) return std::nullopt;
  Metadata md;
  // The handler's compression, when the client accepts it.
  if (const CompressType wanted = context().response_compress_type();
      (wanted == CompressType::kGzip || wanted == CompressType::kZlib) &&
      std::find(accepted_.begin(), accepted_.end(), wanted) != accepted_.end()) {
    response_encoding_ = wanted;
  }
  if (response_encoding_ != CompressType::kNone) {
    md.emplace_back("grpc-encoding", std::string(grpc_wire::EncodingName(response_encoding_)));
  }
  AppendUserMetadata(context().response_user_fields(), md);
  return md;
}

absl::Status GrpcCall::FrameMessage(const google::protobuf::Message& msg,
                                    netpoll::LinkBuffer& out) {
  netpoll::LinkBuffer payload;
  if (absl::Status s = SerializeToLinkBuffer(msg, payload); !s.ok()) return s;
  if (response_encoding_ != CompressType::kNone) {
    netpoll::LinkBuffer compressed;
    if (absl::Status s = Compress(response_encoding_, payload, compressed); !s.ok()) return s;
    grpc_wire::AppendMessage(std::move(compressed), /*compressed=*/true, out);
  } else {
    grpc_wire::AppendMessage(std::move(payload), /*compressed=*/false, out);
  }
  return absl::OkStatus();
}

bool GrpcCall::EncodeAnswer(const absl::Status& status, const google::protobuf::Message* response,
                            bool by_handler, netpoll::LinkBuffer& out) {
  absl::Status final_status = status;
  if (by_handler) {
    if (std::optional<Metadata> initial = TakeInitialMetadata()) answer_.initial = *initial;
  }
  if (status.ok() && method()->stream_kind == StreamKind::kUnary) {
    if (absl::Status s = FrameMessage(*response, out); !s.ok()) {
      out.Clear();
      final_status = absl::InternalError(absl::StrCat("Fail to serialize response: ", s.message()));
    }
  }
  answer_.trailers = StatusTrailers(final_status);
  if (by_handler) AppendUserMetadata(context().response_trailers(), answer_.trailers);
  return final_status.ok();
}

void GrpcCall::Deliver(netpoll::LinkBuffer answer, netpoll::TimerId timer) {
  // Queued, never run here: a streaming handler's Write()s queued before
  // its Finish() must reach the stream first.
  core().QueueOnLoop(
      connection()->loop(),
      [session = grpc_session_, conn = connection(), stream = stream_, message = std::move(answer),
       answer = std::move(answer_), timer, held = held_bytes()]() mutable {
        session->OnAnswer(conn, stream, std::move(message), std::move(answer), timer, held);
      });
}

void GrpcCall::Read(google::protobuf::Message* msg, StreamCallback done) {
  core().QueueOnLoop(connection()->loop(), [session = grpc_session_, stream = stream_, msg,
                                            done = std::move(done)]() mutable {
    session->OnRead(stream, msg, std::move(done));
  });
}

void GrpcCall::Write(const google::protobuf::Message& msg, StreamCallback done) {
  netpoll::LinkBuffer framed;
  if (absl::Status s = FrameMessage(msg, framed); !s.ok()) {
    NP_LOG(ERROR) << "cannot serialize a response message of " << method()->full_name << ": " << s;
    FinishByServer(absl::InternalError(absl::StrCat("Fail to serialize response: ", s.message())));
    core().QueueOnLoop(connection()->loop(), [done = std::move(done)]() mutable { done(false); });
    return;
  }
  std::optional<Metadata> initial = TakeInitialMetadata();
  core().QueueOnLoop(
      connection()->loop(), [session = grpc_session_, stream = stream_, framed = std::move(framed),
                             initial = std::move(initial), done = std::move(done)]() mutable {
        session->OnWrite(stream, std::move(framed), std::move(initial), std::move(done));
      });
}

// ---------------------------------------------------------------- GrpcSession

GrpcSession::GrpcSession(std::shared_ptr<ServerCore> core, netpoll::ConnectionPtr conn)
    : core_(std::move(core)),
      loop_(conn->loop()),
      conn_(std::move(conn)),
      max_message_(core_->options().grpc_max_receive_message_size),
      max_header_bytes_(core_->options().max_http_header_size),
      output_bound_(std::max<size_t>(core_->options().output_high_watermark, 64 << 10)),
      authenticated_(core_->options().authenticator == nullptr) {
  // A TLS connection's identity reaches handlers (ServerContext::
  // auth_context()->tls) as with the other protocols.
  if (authenticated_ && conn_->is_tls()) {
    auto context = std::make_shared<AuthContext>();
    context->tls = conn_->tls_info();
    auth_context_ = std::move(context);
  }
}

GrpcSession::~GrpcSession() {
  if (h2_ != nullptr) nghttp2_session_del(h2_);
}

bool GrpcSession::Init() {
  nghttp2_session_callbacks* callbacks = nullptr;
  if (nghttp2_session_callbacks_new(&callbacks) != 0) return false;
  nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, &OnBeginHeaders);
  nghttp2_session_callbacks_set_on_header_callback(callbacks, &OnHeader);
  nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, &OnFrameRecv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, &OnDataChunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, &OnStreamClose);
  nghttp2_session_callbacks_set_on_frame_send_callback(callbacks, &OnFrameSend);
  nghttp2_option* option = nullptr;
  if (nghttp2_option_new(&option) != 0) {
    nghttp2_session_callbacks_del(callbacks);
    return false;
  }
  // Stream windows open as handlers read (Acknowledge).
  nghttp2_option_set_no_auto_window_update(option, 1);
  nghttp2_mem mem = {&memory_, &H2Malloc, &H2Free, &H2Calloc, &H2Realloc};
  const int rv = nghttp2_session_server_new3(&h2_, callbacks, this, option, &mem);
  nghttp2_option_del(option);
  nghttp2_session_callbacks_del(callbacks);
  if (rv != 0) return false;
  const ServerOptions& options = core_->options();
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, options.grpc_max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE,
       std::min<uint32_t>(options.grpc_stream_window_bytes, NGHTTP2_MAX_WINDOW_SIZE)},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
       static_cast<uint32_t>(std::min<size_t>(max_header_bytes_, UINT32_MAX))},
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
  };
  if (nghttp2_submit_settings(h2_, NGHTTP2_FLAG_NONE, settings,
                              sizeof(settings) / sizeof(settings[0])) != 0) {
    return false;
  }
  nghttp2_session_set_local_window_size(h2_, NGHTTP2_FLAG_NONE, 0, kConnectionWindowBytes);
  return true;
}

std::shared_ptr<GrpcStream> GrpcSession::Find(int32_t stream_id) const {
  auto it = streams_.find(stream_id);
  return it == streams_.end() ? nullptr : it->second;
}

void GrpcSession::OnInput(const netpoll::ConnectionPtr& conn, netpoll::LinkBuffer& input) {
  conn->loop()->AssertInLoopThread();
  if (closed_ || closing_ || h2_ == nullptr) {
    lingered_bytes_ += input.Len();
    (void)input.Skip(input.Len());
    if (linger_ && lingered_bytes_ > kLingerBytes) conn->CloseAfterFlush(close_reason_);
    return;
  }
  ssize_t error = 0;
  in_h2_ = true;
  input.ForEachChunk([&](absl::string_view chunk) {
    if (error < 0 || closed_ || closing_) return;
    const ssize_t rv =
        nghttp2_session_mem_recv(h2_, reinterpret_cast<const uint8_t*>(chunk.data()), chunk.size());
    if (rv < 0) error = rv;
  });
  in_h2_ = false;
  (void)input.Skip(input.Len());
  if (closed_) return;
  if (error < 0) {
    core_->CountProtocolError();
    NP_LOG(WARNING) << "closing HTTP/2 connection from " << conn->peer_address().ToString() << ": "
                    << nghttp2_strerror(static_cast<int>(error));
    if (error == NGHTTP2_ERR_FLOODED || error == NGHTTP2_ERR_BAD_CLIENT_MAGIC) {
      closing_ = true;
      conn->Close(absl::InvalidArgumentError(
          absl::StrCat("HTTP/2: ", nghttp2_strerror(static_cast<int>(error)))));
      return;
    }
    Terminate(NGHTTP2_PROTOCOL_ERROR, nghttp2_strerror(static_cast<int>(error)));
    return;
  }
  Flush();
}

// ------------------------------------------------ nghttp2 callbacks

int GrpcSession::OnBeginHeaders(nghttp2_session* /*h2*/, const nghttp2_frame* frame, void* user) {
  auto* self = static_cast<GrpcSession*>(user);
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  // Terminated (GOAWAY sent): the rest of the input starts nothing.
  if (self->closing_ || self->closed_) return 0;
  self->streams_.emplace(frame->hd.stream_id,
                         std::make_shared<GrpcStream>(frame->hd.stream_id, self->max_message_));
  return 0;
}

int GrpcSession::OnHeader(nghttp2_session* /*h2*/, const nghttp2_frame* frame, const uint8_t* name,
                          size_t namelen, const uint8_t* value, size_t valuelen, uint8_t /*flags*/,
                          void* user) {
  auto* self = static_cast<GrpcSession*>(user);
  std::shared_ptr<GrpcStream> stream = self->Find(frame->hd.stream_id);
  if (stream == nullptr || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;  // trailers
  // RFC 9113's accounting: name, value and 32 bytes per field.
  stream->header_bytes += namelen + valuelen + 32;
  if (stream->header_bytes > self->max_header_bytes_) {
    stream->headers_too_large = true;
    stream->headers.clear();
    return 0;
  }
  stream->headers.emplace_back(std::string(reinterpret_cast<const char*>(name), namelen),
                               std::string(reinterpret_cast<const char*>(value), valuelen));
  return 0;
}

int GrpcSession::OnFrameRecv(nghttp2_session* h2, const nghttp2_frame* frame, void* user) {
  auto* self = static_cast<GrpcSession*>(user);
  switch (frame->hd.type) {
    case NGHTTP2_HEADERS: {
      std::shared_ptr<GrpcStream> stream = self->Find(frame->hd.stream_id);
      if (stream == nullptr) return 0;
      if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) self->OnRequestHeaders(stream);
      if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0 && !stream->closed) {
        self->OnRemoteClosed(stream);
      }
      return 0;
    }
    case NGHTTP2_DATA: {
      if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) == 0) return 0;
      if (std::shared_ptr<GrpcStream> stream = self->Find(frame->hd.stream_id);
          stream != nullptr && !stream->closed) {
        self->OnRemoteClosed(stream);
      }
      return 0;
    }
    case NGHTTP2_RST_STREAM:
      self->CountReset();
      return 0;
    case NGHTTP2_PING:
      if ((frame->hd.flags & NGHTTP2_FLAG_ACK) != 0 && self->shutdown_notice_sent_ &&
          !self->goaway_sent_) {
        // A round trip after the notice: every stream the client opened
        // before it is known. The last one stays; later ones are ignored.
        self->goaway_sent_ = true;
        nghttp2_submit_goaway(h2, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(h2),
                              NGHTTP2_NO_ERROR, nullptr, 0);
      }
      return 0;
    default:
      return 0;
  }
}

int GrpcSession::OnDataChunk(nghttp2_session* h2, uint8_t /*flags*/, int32_t stream_id,
                             const uint8_t* data, size_t len, void* user) {
  auto* self = static_cast<GrpcSession*>(user);
  // The connection's window always opens at once: each stream's own window
  // bounds what it holds.
  nghttp2_session_consume_connection(h2, len);
  std::shared_ptr<GrpcStream> stream = self->Find(stream_id);
  if (stream == nullptr || stream->answered || stream->closed) {
    nghttp2_session_consume_stream(h2, stream_id, len);  // nobody reads it
    return 0;
  }
  stream->deframer.Append(absl::string_view(reinterpret_cast<const char*>(data), len));
  stream->unacked += len;
  self->DrainDeframer(stream);
  return 0;
}

int GrpcSession::OnStreamClose(nghttp2_session* /*h2*/, int32_t stream_id, uint32_t error_code,
                               void* user) {
  auto* self = static_cast<GrpcSession*>(user);
  auto it = self->streams_.find(stream_id);
  if (it == self->streams_.end()) return 0;
  std::shared_ptr<GrpcStream> stream = std::move(it->second);
  self->streams_.erase(it);
  self->CloseStream(stream, /*cancelled=*/error_code != NGHTTP2_NO_ERROR || !stream->answered);
  return 0;
}

int GrpcSession::OnFrameSend(nghttp2_session* h2, const nghttp2_frame* frame, void* user) {
  auto* self = static_cast<GrpcSession*>(user);
  if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
      (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) == 0) {
    return 0;
  }
  // The answer is complete. A client still sending is told to stop (gRPC
  // servers do so: the call is over).
  if (std::shared_ptr<GrpcStream> stream = self->Find(frame->hd.stream_id);
      stream != nullptr && !stream->remote_closed) {
    nghttp2_submit_rst_stream(h2, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_NO_ERROR);
  }
  return 0;
}

ssize_t GrpcSession::ReadData(nghttp2_session* h2, int32_t stream_id, uint8_t* buf, size_t length,
                              uint32_t* data_flags, nghttp2_data_source* source, void* user) {
  auto* self = static_cast<GrpcSession*>(user);
  auto* stream = static_cast<GrpcStream*>(source->ptr);
  const size_t n = std::min(length, stream->out.Len());
  if (n > 0) {
    (void)stream->out.ReadBinary(absl::Span<char>(reinterpret_cast<char*>(buf), n));
    self->MaybeCompleteWrite(*stream);
  }
  if (stream->out.empty()) {
    if (stream->finishing) {
      *data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
      std::vector<nghttp2_nv> nva;
      nva.reserve(stream->trailers.size());
      for (auto& [name, value] : stream->trailers) {
        nva.push_back({reinterpret_cast<uint8_t*>(name.data()),
                       reinterpret_cast<uint8_t*>(value.data()), name.size(), value.size(),
                       NGHTTP2_NV_FLAG_NONE});
      }
      nghttp2_submit_trailer(h2, stream_id, nva.data(), nva.size());
      stream->answered = true;
    } else if (n == 0) {
      stream->deferred = true;
      return NGHTTP2_ERR_DEFERRED;
    }
  }
  return static_cast<ssize_t>(n);
}

// ------------------------------------------------ Requests

void GrpcSession::OnRequestHeaders(const std::shared_ptr<GrpcStream>& stream) {
  if (stream->headers_too_large) {
    AnswerWithoutCall(
        stream, absl::ResourceExhaustedError(absl::StrCat(
                    "request headers larger than the maximum of ", max_header_bytes_, " bytes")));
    return;
  }
  absl::string_view method, path, content_type;
  for (const auto& [name, value] : stream->headers) {
    if (name == ":method") method = value;
    if (name == ":path") path = value;
    if (name == "content-type") content_type = value;
  }
  if (method != "POST") {
    AnswerWithoutCall(
        stream,
        absl::UnimplementedError(absl::StrCat("HTTP method ", BoundedQuote(method, kMaxQuotedName),
                                              " is not served: gRPC calls are POST")),
        405);
    return;
  }
  if (!grpc_wire::IsGrpcContentType(content_type)) {
    AnswerWithoutCall(stream,
                      absl::InternalError(absl::StrCat("content-type ",
                                                       BoundedQuote(content_type, kMaxQuotedName),
                                                       " is not served: use application/grpc")),
                      415);
    return;
  }
  // "/package.Service/Method"
  absl::string_view service_name, method_name;
  if (const size_t slash = path.rfind('/');
      path.size() >= 4 && path[0] == '/' && slash != 0 && slash + 1 < path.size()) {
    service_name = path.substr(1, slash - 1);
    method_name = path.substr(slash + 1);
  }
  absl::StatusOr<MethodEntry*> entry = core_->Lookup(service_name, method_name);
  if (!entry.ok()) {
    if (ErrorCodeOf(entry.status()) == ELOGOFF) {
      // Stopping: refused before it did anything, the client may retry it
      // elsewhere.
      stream->answered = true;
      nghttp2_submit_rst_stream(h2_, NGHTTP2_FLAG_NONE, stream->id, NGHTTP2_REFUSED_STREAM);
      return;
    }
    AnswerWithoutCall(stream, absl::UnimplementedError(entry.status().message()));
    return;
  }
  stream->method = *entry;
  for (const auto& [name, value] : stream->headers) {
    if (name != "grpc-encoding") continue;
    std::optional<CompressType> encoding = grpc_wire::EncodingFromName(value);
    if (!encoding.has_value()) {
      core_->CountRefused(stream->method, ENOMETHOD);
      stream->method = nullptr;
      AnswerWithoutCall(
          stream,
          absl::UnimplementedError(absl::StrCat(
              "grpc-encoding ", BoundedQuote(value, kMaxQuotedName), " is not supported")),
          200, {{"grpc-accept-encoding", std::string(grpc_wire::kAcceptEncoding)}});
      return;
    }
    stream->request_encoding = *encoding;
  }
  if (stream->method->stream_kind != StreamKind::kUnary) {
    stream->started = true;
    std::shared_ptr<GrpcCall> call = NewCall(stream);
    if (call == nullptr) return;
    stream->call = call;
    Recharge(stream);
    core_->Start(call);
  }
}

void GrpcSession::OnRemoteClosed(const std::shared_ptr<GrpcStream>& stream) {
  stream->remote_closed = true;
  if (stream->answered) return;
  if (stream->deframer.buffered() > 0) {
    FailStream(stream,
               absl::InternalError(absl::StrCat("the request ended inside a message (",
                                                stream->deframer.buffered(), " bytes of it)")));
    return;
  }
  if (stream->method == nullptr) return;  // answered already or never a call
  if (stream->method->stream_kind == StreamKind::kUnary) {
    if (!stream->started) StartUnary(stream);
    return;
  }
  if (stream->read_done != nullptr && stream->ready.empty()) {
    stream->read_msg = nullptr;
    Post(std::move(stream->read_done), false);
    stream->read_done = nullptr;
  }
}

void GrpcSession::StartUnary(const std::shared_ptr<GrpcStream>& stream) {
  stream->started = true;
  if (stream->ready.size() != 1) {
    core_->CountRefused(stream->method, EREQUEST);
    AnswerWithoutCall(
        stream, absl::InternalError(stream->ready.empty() ? "missing request message"
                                                          : "more than one request message in a "
                                                            "unary call"));
    return;
  }
  std::shared_ptr<GrpcCall> call = NewCall(stream);
  if (call == nullptr) return;
  grpc_wire::MessageDeframer::Message message = std::move(stream->ready.front());
  stream->ready.clear();
  const size_t bytes = message.payload.Len();
  // The message moves to the call: its bytes and the message they become
  // (NewCall charged the call itself).
  conn_->ChargeHeld(static_cast<int64_t>(2 * bytes));
  call->set_held_bytes(2 * bytes + kCallOverheadBytes);
  call->set_request_bytes(bytes + grpc_wire::kPrefixSize);
  call->set_request(std::move(message), stream->request_encoding);
  stream->call = call;
  Recharge(stream);
  Acknowledge(stream);
  core_->Start(call);
}

std::shared_ptr<GrpcCall> GrpcSession::NewCall(const std::shared_ptr<GrpcStream>& stream) {
  MethodEntry* method = stream->method;
  if (!authenticated_) {
    // The connection's first call carries its credential (as HTTP/1.1
    // does); every later call shares what it said.
    const std::string* credential = nullptr;
    for (const auto& [name, value] : stream->headers) {
      if (name == "authorization") credential = &value;
    }
    AuthContext context;
    context.tls = conn_->tls_info();
    absl::Status verified = core_->options().authenticator->VerifyCredential(
        credential != nullptr ? absl::string_view(*credential) : absl::string_view(),
        conn_->peer_address(), context);
    if (!verified.ok()) {
      core_->CountAuthFailure();
      core_->CountRefused(method, ERPCAUTH);
      NP_LOG(WARNING) << "gRPC call from " << conn_->peer_address().ToString()
                      << " refused: authentication failed: " << verified;
      AnswerWithoutCall(stream, absl::UnauthenticatedError(
                                    absl::StrCat("Fail to authenticate: ", verified.message())));
      // As the other protocols do, the connection closes: after this
      // answer (GOAWAY with this stream as the last; CloseStream closes).
      if (!goaway_sent_) {
        goaway_sent_ = true;
        linger_ = true;
        nghttp2_submit_goaway(h2_, NGHTTP2_FLAG_NONE, stream->id, NGHTTP2_NO_ERROR, nullptr, 0);
      }
      return nullptr;
    }
    authenticated_ = true;
    auth_context_ = std::make_shared<const AuthContext>(std::move(context));
  }
  if (absl::Status s = core_->Acquire(method); !s.ok()) {
    if (ErrorCodeOf(s) == ELOGOFF) {
      stream->answered = true;
      nghttp2_submit_rst_stream(h2_, NGHTTP2_FLAG_NONE, stream->id, NGHTTP2_REFUSED_STREAM);
      return nullptr;
    }
    AnswerWithoutCall(stream, s);
    return nullptr;
  }
  // What the client accepts decides whether the handler's compression is
  // used (ServerContext::set_response_compress_type, read below).
  std::vector<CompressType> accepted;
  for (const auto& [name, value] : stream->headers) {
    if (name != "grpc-accept-encoding") continue;
    for (absl::string_view item : absl::StrSplit(value, ',')) {
      if (std::optional<CompressType> type =
              grpc_wire::EncodingFromName(absl::StripAsciiWhitespace(item))) {
        accepted.push_back(*type);
      }
    }
  }
  auto call = std::make_shared<GrpcCall>(core_, conn_, shared_from_this(), method, stream,
                                         std::move(accepted));
  ServerContext& ctx = call->context();
  ctx.set_protocol(GrpcProtocol::Get()->name());
  const size_t slash = method->full_name.rfind('/');
  ctx.set_service_name(method->full_name.substr(0, slash));
  ctx.set_method_name(method->full_name.substr(slash + 1));
  ServerContext::UserFields& fields = ctx.mutable_request_user_fields();
  for (auto& [name, value] : stream->headers) {
    if (name == "grpc-timeout") {
      if (std::optional<absl::Duration> timeout = grpc_wire::ParseTimeout(value)) {
        const int64_t ms = std::clamp<int64_t>(absl::ToInt64Milliseconds(*timeout), 1,
                                               std::numeric_limits<int32_t>::max());
        ctx.set_timeout_ms(static_cast<int32_t>(ms));
        ctx.set_deadline(absl::Now() + *timeout);
      }
      continue;
    }
    if (name == "traceparent") {
      if (std::optional<TraceContext> trace = ParseTraceparent(value)) {
        ctx.set_trace(std::move(*trace));
      }
    }
    if (grpc_wire::IsReservedHeader(name) || !grpc_wire::IsValidMetadataKey(name)) continue;
    std::string decoded;
    if (grpc_wire::IsBinaryKey(name)) {
      absl::StatusOr<std::string> bytes = grpc_wire::DecodeBinaryValue(value);
      if (!bytes.ok()) continue;  // gRPC drops malformed binary metadata
      decoded = *std::move(bytes);
    } else {
      decoded = std::move(value);
    }
    auto [it, inserted] = fields.try_emplace(name, decoded);
    if (!inserted) absl::StrAppend(&it->second, ",", decoded);
  }
  stream->headers.clear();
  stream->headers.shrink_to_fit();
  if (auth_context_ != nullptr) ctx.set_auth_context(auth_context_);
  ctx.set_connection_closed_flag(closed_flag_);
  call->set_held_bytes(kCallOverheadBytes);
  conn_->ChargeHeld(static_cast<int64_t>(kCallOverheadBytes));
  return call;
}

void GrpcSession::DrainDeframer(const std::shared_ptr<GrpcStream>& stream) {
  while (true) {
    std::optional<grpc_wire::MessageDeframer::Message> message;
    if (absl::Status s = stream->deframer.Next(message); !s.ok()) {
      FailStream(stream, s);
      return;
    }
    if (!message.has_value()) break;
    if (message->compressed && stream->request_encoding == CompressType::kNone) {
      FailStream(stream, absl::InternalError("compressed message without grpc-encoding"));
      return;
    }
    stream->ready.push_back(*std::move(message));
    if (stream->method != nullptr && stream->method->stream_kind == StreamKind::kUnary &&
        stream->ready.size() > 1) {
      core_->CountRefused(stream->method, EREQUEST);
      stream->started = true;
      AnswerWithoutCall(stream, absl::InternalError("more than one request message in a unary "
                                                    "call"));
      return;
    }
  }
  Recharge(stream);
  if (stream->read_done != nullptr && !stream->ready.empty()) DeliverRead(stream);
  // A partial message needs the window to complete; whole messages wait for
  // the handler's reads (unary: for the end of the request, bounded by the
  // message size limit).
  if (stream->ready.empty() || stream->method == nullptr ||
      stream->method->stream_kind == StreamKind::kUnary) {
    Acknowledge(stream);
  }
}

void GrpcSession::Acknowledge(const std::shared_ptr<GrpcStream>& stream) {
  if (stream->unacked == 0 || stream->closed || h2_ == nullptr) return;
  nghttp2_session_consume_stream(h2_, stream->id, stream->unacked);
  stream->unacked = 0;
}

void GrpcSession::Recharge(const std::shared_ptr<GrpcStream>& stream) {
  int64_t held = static_cast<int64_t>(stream->deframer.buffered());
  for (const auto& message : stream->ready) held += static_cast<int64_t>(message.payload.Len());
  if (stream->closed) held = 0;
  if (held != stream->charged && !closed_) {
    conn_->ChargeHeld(held - stream->charged);
  }
  stream->charged = held;
}

void GrpcSession::DeliverRead(const std::shared_ptr<GrpcStream>& stream) {
  grpc_wire::MessageDeframer::Message message = std::move(stream->ready.front());
  stream->ready.pop_front();
  google::protobuf::Message* msg = stream->read_msg;
  StreamCallback done = std::move(stream->read_done);
  stream->read_done = nullptr;
  stream->read_msg = nullptr;
  netpoll::LinkBuffer plain;
  absl::Status parsed;
  if (message.compressed) {
    parsed = Decompress(stream->request_encoding, message.payload, max_message_, plain);
    if (absl::IsResourceExhausted(parsed)) {
      parsed = absl::ResourceExhaustedError(absl::StrCat(
          "Decompressed gRPC message is larger than the maximum of ", max_message_, " bytes"));
    }
  } else {
    plain = std::move(message.payload);
  }
  if (parsed.ok() && !ParseFromLinkBuffer(plain, *msg).ok()) {
    parsed = absl::InternalError(
        absl::StrCat("Fail to parse request message ", msg->GetDescriptor()->full_name()));
  }
  Recharge(stream);
  if (stream->ready.empty()) Acknowledge(stream);
  if (!parsed.ok()) {
    Post(std::move(done), false);
    FailStream(stream, parsed);
    return;
  }
  Post(std::move(done), true);
}

void GrpcSession::FailStream(const std::shared_ptr<GrpcStream>& stream,
                             const absl::Status& status) {
  if (std::shared_ptr<GrpcCall> call = stream->call.lock(); call != nullptr) {
    call->FinishByServer(status);  // its answer arrives through OnAnswer
    return;
  }
  if (stream->method != nullptr && !stream->started) {
    core_->CountRefused(stream->method, ErrorCodeOf(status));
    stream->started = true;
  }
  AnswerWithoutCall(stream, status);
}

void GrpcSession::AnswerWithoutCall(const std::shared_ptr<GrpcStream>& stream,
                                    const absl::Status& status, int http_status, Metadata extra) {
  if (stream->answered || stream->closed || h2_ == nullptr) return;
  stream->answered = true;
  stream->ready.clear();
  Recharge(stream);
  Metadata headers;
  headers.emplace_back(":status", absl::StrCat(http_status));
  headers.emplace_back("content-type", std::string(grpc_wire::kContentType));
  for (auto& field : extra) headers.push_back(std::move(field));
  for (auto& field : StatusTrailers(status)) headers.push_back(std::move(field));
  std::vector<nghttp2_nv> nva;
  nva.reserve(headers.size());
  for (auto& [name, value] : headers) {
    nva.push_back({reinterpret_cast<uint8_t*>(name.data()),
                   reinterpret_cast<uint8_t*>(value.data()), name.size(), value.size(),
                   NGHTTP2_NV_FLAG_NONE});
  }
  nghttp2_submit_response(h2_, stream->id, nva.data(), nva.size(), nullptr);
  // DATA that still arrives is dropped: give its window back.
  Acknowledge(stream);
}

// ------------------------------------------------ Answers

void GrpcSession::SubmitHeaders(const std::shared_ptr<GrpcStream>& stream, Metadata initial) {
  stream->headers_sent = true;
  Metadata headers;
  headers.emplace_back(":status", "200");
  headers.emplace_back("content-type", std::string(grpc_wire::kContentType));
  headers.emplace_back("grpc-accept-encoding", std::string(grpc_wire::kAcceptEncoding));
  for (auto& field : initial) headers.push_back(std::move(field));
  std::vector<nghttp2_nv> nva;
  nva.reserve(headers.size());
  for (auto& [name, value] : headers) {
    nva.push_back({reinterpret_cast<uint8_t*>(name.data()),
                   reinterpret_cast<uint8_t*>(value.data()), name.size(), value.size(),
                   NGHTTP2_NV_FLAG_NONE});
  }
  nghttp2_data_provider provider;
  provider.source.ptr = stream.get();  // valid while nghttp2 has the stream (streams_)
  provider.read_callback = &ReadData;
  nghttp2_submit_response(h2_, stream->id, nva.data(), nva.size(), &provider);
}

void GrpcSession::ResumeData(const std::shared_ptr<GrpcStream>& stream) {
  if (stream->deferred) {
    stream->deferred = false;
    nghttp2_session_resume_data(h2_, stream->id);
  }
}

void GrpcSession::MaybeCompleteWrite(GrpcStream& stream) {
  if (stream.write_done != nullptr && stream.out.Len() < kGrpcStreamSendBuffer) {
    StreamCallback done = std::move(stream.write_done);
    stream.write_done = nullptr;
    Post(std::move(done), true);
  }
}

void GrpcSession::OnAnswer(const netpoll::ConnectionPtr& conn,
                           const std::shared_ptr<GrpcStream>& stream, netpoll::LinkBuffer message,
                           GrpcAnswer answer, netpoll::TimerId timer, size_t held_bytes) {
  if (timer != netpoll::kInvalidTimerId) loop_->Cancel(timer);
  OnCallDone(conn, held_bytes);
  if (closed_ || stream->closed || stream->answered || h2_ == nullptr) return;
  if (stream->read_done != nullptr) {
    stream->read_msg = nullptr;
    Post(std::move(stream->read_done), false);
    stream->read_done = nullptr;
  }
  if (!stream->headers_sent && message.empty() && stream->out.empty()) {
    // Trailers-only: one HEADERS frame.
    Metadata extra = std::move(answer.initial);
    stream->answered = true;
    Metadata headers;
    headers.emplace_back(":status", "200");
    headers.emplace_back("content-type", std::string(grpc_wire::kContentType));
    for (auto& field : extra) headers.push_back(std::move(field));
    for (auto& field : answer.trailers) headers.push_back(std::move(field));
    std::vector<nghttp2_nv> nva;
    for (auto& [name, value] : headers) {
      nva.push_back({reinterpret_cast<uint8_t*>(name.data()),
                     reinterpret_cast<uint8_t*>(value.data()), name.size(), value.size(),
                     NGHTTP2_NV_FLAG_NONE});
    }
    nghttp2_submit_response(h2_, stream->id, nva.data(), nva.size(), nullptr);
  } else {
    stream->out.Append(std::move(message));
    stream->finishing = true;
    stream->trailers = std::move(answer.trailers);
    if (!stream->headers_sent) {
      SubmitHeaders(stream, std::move(answer.initial));
    } else {
      ResumeData(stream);
    }
  }
  // Requests still arriving are dropped: their window opens.
  stream->ready.clear();
  Recharge(stream);
  Acknowledge(stream);
  Flush();
}

void GrpcSession::OnRead(const std::shared_ptr<GrpcStream>& stream, google::protobuf::Message* msg,
                         StreamCallback done) {
  if (closed_ || stream->closed || stream->answered || stream->read_done != nullptr) {
    Post(std::move(done), false);
    return;
  }
  stream->read_msg = msg;
  stream->read_done = std::move(done);
  if (!stream->ready.empty()) {
    DeliverRead(stream);
  } else if (stream->remote_closed) {
    stream->read_msg = nullptr;
    Post(std::move(stream->read_done), false);
    stream->read_done = nullptr;
  }
  Flush();  // window updates
}

void GrpcSession::OnWrite(const std::shared_ptr<GrpcStream>& stream, netpoll::LinkBuffer framed,
                          std::optional<Metadata> initial, StreamCallback done) {
  if (closed_ || stream->closed || stream->answered || stream->finishing ||
      stream->write_done != nullptr) {
    Post(std::move(done), false);
    return;
  }
  stream->out.Append(std::move(framed));
  stream->write_done = std::move(done);
  if (!stream->headers_sent) {
    SubmitHeaders(stream, initial.has_value() ? std::move(*initial) : Metadata());
  } else {
    ResumeData(stream);
  }
  MaybeCompleteWrite(*stream);
  Flush();
}

void GrpcSession::Post(StreamCallback cb, bool ok) {
  if (cb == nullptr) return;
  core_->QueueOnLoop(loop_, [cb = std::move(cb), ok]() mutable { cb(ok); });
}

// ------------------------------------------------ Life cycle

void GrpcSession::CloseStream(const std::shared_ptr<GrpcStream>& stream, bool cancelled) {
  stream->closed = true;
  if (stream->read_done != nullptr) {
    stream->read_msg = nullptr;
    Post(std::move(stream->read_done), false);
    stream->read_done = nullptr;
  }
  if (stream->write_done != nullptr) {
    Post(std::move(stream->write_done), false);
    stream->write_done = nullptr;
  }
  stream->out.Clear();
  stream->ready.clear();
  Recharge(stream);
  if (stream->started) {
    if (std::shared_ptr<GrpcCall> call = stream->call.lock();
        call != nullptr && cancelled && !stream->answered) {
      call->FinishByServer(absl::CancelledError("the client cancelled the call"));
    }
  } else if (stream->method != nullptr) {
    core_->CountRefused(stream->method, ELOGOFF);  // reset before its request was whole
  }
  if (closing_ || closed_) return;
  if ((goaway_sent_ || peer_closed_) && streams_.empty()) {
    // Flush() writes what nghttp2 still has (here, or at the end of the
    // mem_recv/mem_send this runs in), then closes.
    closing_ = true;
    Flush();
  }
}

void GrpcSession::CountReset() {
  const absl::Time now = absl::Now();
  if (now - reset_window_start_ >= absl::Seconds(1)) {
    reset_window_start_ = now;
    resets_in_window_ = 0;
  }
  if (++resets_in_window_ > core_->options().grpc_max_resets_per_second) {
    NP_LOG(WARNING) << "closing HTTP/2 connection from " << conn_->peer_address().ToString()
                    << ": more than " << core_->options().grpc_max_resets_per_second
                    << " streams reset in a second (rapid reset)";
    Terminate(NGHTTP2_ENHANCE_YOUR_CALM, "too many stream resets");
  }
}

void GrpcSession::Terminate(uint32_t error_code, absl::string_view why) {
  if (closing_ || closed_) return;
  core_->CountProtocolError();
  nghttp2_session_terminate_session(h2_, error_code);
  closing_ = true;
  linger_ = true;
  close_reason_ = absl::UnavailableError(absl::StrCat("HTTP/2: ", why));
  Flush();  // the GOAWAY, then the close (now, or after the current mem_recv)
}

void GrpcSession::Flush() {
  if (closed_ || h2_ == nullptr || flushing_ || in_h2_) return;
  flushing_ = true;
  netpoll::LinkBuffer out;
  while (unconfirmed_output_ + out.Len() < output_bound_) {
    const uint8_t* data = nullptr;
    in_h2_ = true;
    const ssize_t n = nghttp2_session_mem_send(h2_, &data);
    in_h2_ = false;
    if (n <= 0) {
      if (n < 0) {
        NP_LOG(WARNING) << "HTTP/2 send failed: " << nghttp2_strerror(static_cast<int>(n));
        closing_ = true;
      }
      break;
    }
    out.WriteBinary(absl::string_view(reinterpret_cast<const char*>(data), static_cast<size_t>(n)));
  }
  flushing_ = false;
  if (closed_) return;
  SyncMemoryCharge();
  if (!out.empty()) {
    const size_t bytes = out.Len();
    unconfirmed_output_ += bytes;
    std::weak_ptr<GrpcSession> weak = weak_from_this();
    (void)conn_->Write(std::move(out), [weak, bytes] {
      if (std::shared_ptr<GrpcSession> self = weak.lock()) {
        self->unconfirmed_output_ -= bytes;
        self->Flush();
      }
    });
  }
  // A peer that does not read its answers stops being read.
  if (unconfirmed_output_ >= output_bound_ && !paused_for_output_) {
    paused_for_output_ = true;
    conn_->PauseRead();
  } else if (unconfirmed_output_ < output_bound_ && paused_for_output_) {
    paused_for_output_ = false;
    conn_->ResumeRead();
  }
  if (!closing_ && nghttp2_session_want_read(h2_) == 0 && nghttp2_session_want_write(h2_) == 0) {
    closing_ = true;  // GOAWAY both ways, nothing left to send
  }
  if (closing_ && !closed_ && !close_requested_) {
    close_requested_ = true;
    if (!linger_) {
      conn_->CloseAfterFlush(close_reason_);
    } else {
      // After a GOAWAY for an error the peer may still be sending: closing
      // with its bytes unread would reset the connection (RST), which can
      // discard the GOAWAY before the peer reads it. Read and drop its
      // input for a while (OnInput), then close.
      std::weak_ptr<netpoll::Connection> weak = conn_;
      loop_->RunAfter(kLingerTime, [weak, reason = close_reason_] {
        if (netpoll::ConnectionPtr c = weak.lock()) c->CloseAfterFlush(reason);
      });
    }
  }
}

void GrpcSession::SyncMemoryCharge() {
  if (closed_ || memory_.allocated == memory_charged_) return;
  conn_->ChargeHeld(memory_.allocated - memory_charged_);
  memory_charged_ = memory_.allocated;
}

void GrpcSession::OnCallDone(const netpoll::ConnectionPtr& conn, size_t held_bytes) {
  conn->loop()->AssertInLoopThread();
  conn->ChargeHeld(-static_cast<int64_t>(held_bytes));
}

void GrpcSession::OnPeerClosed(const netpoll::ConnectionPtr& conn) {
  conn->loop()->AssertInLoopThread();
  peer_closed_ = true;
  if (linger_ && !closed_) {
    conn->CloseAfterFlush(close_reason_);  // the peer read the GOAWAY and is done
    return;
  }
  if (closed_ || closing_) return;
  // Nothing more arrives: streams still waiting for requests never get
  // them (they are cancelled); whole requests are still answered, within
  // the windows the peer gave, for at most kPeerClosedGrace.
  std::vector<std::shared_ptr<GrpcStream>> waiting;
  for (const auto& [id, stream] : streams_) {
    if (!stream->remote_closed) waiting.push_back(stream);
  }
  for (const std::shared_ptr<GrpcStream>& stream : waiting) {
    if (h2_ != nullptr) {
      nghttp2_submit_rst_stream(h2_, NGHTTP2_FLAG_NONE, stream->id, NGHTTP2_CANCEL);
    }
  }
  Flush();  // the resets close those streams (OnStreamClose)
  if (closing_ || closed_) return;
  if (streams_.empty()) {
    closing_ = true;
    Flush();
    return;
  }
  std::weak_ptr<netpoll::Connection> weak = conn;
  loop_->RunAfter(kPeerClosedGrace, [weak] {
    if (netpoll::ConnectionPtr c = weak.lock()) {
      c->Close(absl::UnavailableError("HTTP/2 peer closed; its answers did not fit its windows"));
    }
  });
}

void GrpcSession::OnServerStopping(const netpoll::ConnectionPtr& conn) {
  conn->loop()->AssertInLoopThread();
  if (closed_ || closing_ || h2_ == nullptr || shutdown_notice_sent_) return;
  shutdown_notice_sent_ = true;
  nghttp2_submit_shutdown_notice(h2_);
  nghttp2_submit_ping(h2_, NGHTTP2_FLAG_NONE, nullptr);
  Flush();
}

void GrpcSession::OnClosed(const netpoll::ConnectionPtr& conn) {
  conn->loop()->AssertInLoopThread();
  if (closed_) return;
  closed_ = true;
  closed_flag_->store(true, std::memory_order_release);
  absl::flat_hash_map<int32_t, std::shared_ptr<GrpcStream>> streams = std::move(streams_);
  streams_.clear();
  for (auto& [id, stream] : streams) {
    stream->closed = true;
    if (stream->charged != 0) conn->ChargeHeld(-stream->charged);
    stream->charged = 0;
    if (stream->read_done != nullptr) {
      Post(std::move(stream->read_done), false);
      stream->read_done = nullptr;
    }
    if (stream->write_done != nullptr) {
      Post(std::move(stream->write_done), false);
      stream->write_done = nullptr;
    }
    if (!stream->started) {
      if (stream->method != nullptr) core_->CountRefused(stream->method, ELOGOFF);
    } else if (std::shared_ptr<GrpcCall> call = stream->call.lock();
               call != nullptr && !stream->answered) {
      call->FinishByServer(absl::UnavailableError("the connection closed"));
    }
  }
  // The calls may still hold the session; the connection goes.
  conn->ChargeHeld(-memory_charged_);
  memory_charged_ = 0;
  conn_.reset();
  if (!in_h2_ && h2_ != nullptr) {
    nghttp2_session_del(h2_);
    h2_ = nullptr;
  }
}

}  // namespace

const GrpcProtocol* GrpcProtocol::Get() {
  static const GrpcProtocol* const protocol = new GrpcProtocol();
  return protocol;
}

SniffResult GrpcProtocol::Sniff(const netpoll::LinkBuffer& input) const {
  char first[kHttp2ClientPreface.size()];
  const size_t n = std::min(input.Len(), kHttp2ClientPreface.size());
  input.PeekCopy(n, first);
  if (absl::string_view(first, n) != kHttp2ClientPreface.substr(0, n)) {
    return SniffResult::kNotMine;
  }
  return n == kHttp2ClientPreface.size() ? SniffResult::kMine : SniffResult::kNeedMore;
}

std::shared_ptr<ServerSession> GrpcProtocol::NewSession(std::shared_ptr<ServerCore> core,
                                                        const netpoll::ConnectionPtr& conn) const {
  auto session = std::make_shared<GrpcSession>(std::move(core), conn);
  if (!session->Init()) {
    NP_LOG(ERROR) << "cannot create an HTTP/2 session (out of memory)";
  }
  return session;
}

}  // namespace nprpc
