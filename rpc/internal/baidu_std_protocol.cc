#include "rpc/internal/baidu_std_protocol.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "netpoll/logging.h"
#include "rpc/baidu_std.h"
#include "rpc/errors.h"
#include "rpc/internal/compression.h"
#include "rpc/internal/frame_codec.h"
#include "rpc/internal/server_call.h"
#include "rpc/internal/server_core.h"

namespace nprpc {
namespace {

// A frame whose unread rest is larger than this takes its bytes from the
// memory budget when its header arrives (and is refused when the budget
// cannot give them); smaller frames are read under the budget's read rule.
constexpr size_t kReservedFrameBytes = 64 << 10;
// What a decoded request holds besides its payload and attachment: its meta,
// the call, its context, the messages' overhead. An estimate: the budget
// counts it per call.
constexpr size_t kCallOverheadBytes = 1024;
// After a protocol error, calls already admitted get this long to answer
// before the connection closes without them.
constexpr absl::Duration kProtocolErrorGrace = absl::Seconds(10);

// One baidu_std request as a call: the frame it came in, and its answer.
class BaiduStdCall final : public ServerCall {
 public:
  BaiduStdCall(std::shared_ptr<ServerCore> core, netpoll::ConnectionPtr conn,
               std::shared_ptr<ServerSession> session, MethodEntry* method, DecodedFrame frame)
      : ServerCall(std::move(core), std::move(conn), std::move(session), method),
        correlation_id_(frame.meta.correlation_id()),
        echoed_checksum_(frame.meta.checksum_value()),
        frame_(std::move(frame)) {}

  // The request's meta, for filling the context before Start().
  const wire::RpcMeta& meta() const { return frame_.meta; }

 protected:
  absl::Status ParseRequest(google::protobuf::Message& request) override;
  bool EncodeAnswer(const absl::Status& status, const google::protobuf::Message* response,
                    bool by_handler, netpoll::LinkBuffer& out) override;

 private:
  const int64_t correlation_id_;
  const std::string echoed_checksum_;
  DecodedFrame frame_;  // ParseRequest() only
};

absl::Status BaiduStdCall::ParseRequest(google::protobuf::Message& request) {
  const int32_t compress_type = frame_.meta.compress_type();
  const size_t wire_size = frame_.payload.Len();
  const size_t max_decompressed = core().options().max_decompressed_size;
  // A compressed payload inflates into memory the budget must cover, twice
  // while it is parsed (the inflated bytes and the message): take room for
  // it first, then keep what the message holds. The room is the size the
  // payload announces (snappy, gzip), enforced while inflating; without one
  // (zlib) a quarter of what the budget has left, so that several workers
  // inflating at once do not starve each other.
  size_t granted = 0;  // the inflate limit; twice this is charged
  std::optional<size_t> announced;
  if (compress_type != 0) {
    announced = AnnouncedDecompressedSize(static_cast<CompressType>(compress_type), frame_.payload);
    if (announced.has_value() && *announced > max_decompressed) {
      return absl::InvalidArgumentError(
          absl::StrCat("Fail to decompress request, CompressType=",
                       CompressTypeName(static_cast<CompressType>(compress_type)), ": announces ",
                       *announced, " bytes, over the limit of ", max_decompressed));
    }
    granted = announced.has_value() ? std::max<size_t>(*announced, 1)
                                    : std::min(max_decompressed, core().budget().available() / 4);
    if ((!announced.has_value() && granted < kReservedFrameBytes) ||
        !TryChargeBudget(2 * granted)) {
      core().CountRefusedDecompression();
      return MakeRpcError(
          ELIMIT,
          absl::StrCat("Server memory budget exhausted (", core().budget().used(), " of ",
                       core().budget().limit(), " bytes held): cannot decompress the request"));
    }
  }
  absl::StatusOr<netpoll::LinkBuffer> payload =
      UncompressPayload(frame_, compress_type != 0 ? granted : max_decompressed);
  size_t inflated = 0;
  if (compress_type != 0) {
    inflated = payload.ok() ? payload->BlockBytes() : 0;
    if (inflated < granted) ReleaseBudget(2 * (granted - inflated));
  }
  if (!payload.ok()) {
    if (absl::IsResourceExhausted(payload.status()) && !announced.has_value() &&
        granted < max_decompressed) {
      core().CountRefusedDecompression();
      return MakeRpcError(ELIMIT, absl::StrCat("Server memory budget exhausted: the request "
                                               "inflates beyond the ",
                                               granted, " bytes left for it"));
    }
    return absl::InvalidArgumentError(
        absl::StrCat("Fail to decompress request, CompressType=",
                     CompressTypeName(static_cast<CompressType>(compress_type)), ": ",
                     payload.status().message()));
  }
  if (!ParseFromLinkBuffer(*payload, request).ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Fail to parse request message, CompressType=",
        CompressTypeName(static_cast<CompressType>(compress_type)), ", request_size=", wire_size));
  }
  payload->Clear();
  // The message stays until the call answers; the inflated bytes are gone.
  if (inflated > 0 && inflated <= granted) ReleaseBudget(inflated);
  context().request_attachment() = std::move(frame_.attachment);
  return absl::OkStatus();
}

bool BaiduStdCall::EncodeAnswer(const absl::Status& status,
                                const google::protobuf::Message* response, bool by_handler,
                                netpoll::LinkBuffer& out) {
  int32_t code = HandlerErrorCode(status);
  ResponseHeader header;
  header.correlation_id = correlation_id_;
  header.echoed_checksum_value = echoed_checksum_;
  netpoll::LinkBuffer payload;
  netpoll::LinkBuffer attachment;
  std::string text(status.message());
  if (code == 0) {
    if (absl::Status s = SerializeToLinkBuffer(*response, payload); !s.ok()) {
      code = ERESPONSE;
      text = absl::StrCat("Fail to serialize response: ", s.message());
      payload.Clear();
    } else {
      attachment = std::move(context().response_attachment());
      header.compress_type = context().response_compress_type();
    }
  }
  if (by_handler) {
    // Only the handler's own answer reads the response side of the context:
    // the server's answers race with a handler still writing it.
    for (const auto& [key, value] : context().response_user_fields()) {
      header.user_fields.push_back({key, value});
    }
  }
  header.error_code = code;
  if (code != 0) {
    header.error_text = core().ErrorText(code, text);
    // An nprpc client restores codes the brpc number does not imply.
    if (std::optional<std::string> field = StatusCodeFieldFor(code, status.code())) {
      header.user_fields.push_back({std::string(kStatusCodeField), std::move(*field)});
    }
  }
  absl::Status encoded = EncodeResponse(header, std::move(payload), std::move(attachment), out);
  if (!encoded.ok()) {
    NP_LOG(ERROR) << "cannot encode the response of " << method()->full_name << ": " << encoded;
    code = EINTERNAL;
    header.error_code = code;
    header.error_text =
        core().ErrorText(code, absl::StrCat("Fail to encode response: ", encoded.message()));
    header.compress_type = CompressType::kNone;
    header.user_fields.clear();
    out.Clear();
    NP_CHECK(EncodeResponse(header, {}, {}, out).ok());
  }
  return code == 0;
}

// One baidu_std connection. Loop thread only.
class BaiduStdSession final : public ServerSession,
                              public std::enable_shared_from_this<BaiduStdSession> {
 public:
  // `tls_identity`: the AuthContext of a TLS connection (null: plaintext).
  BaiduStdSession(std::shared_ptr<ServerCore> core, std::shared_ptr<const AuthContext> tls_identity)
      : core_(std::move(core)),
        decoder_(FrameDecoderOptions{.max_body_size = core_->options().max_body_size}),
        auth_context_(std::move(tls_identity)) {}

  void OnInput(const netpoll::ConnectionPtr& conn, netpoll::LinkBuffer& input) override;
  void OnCallDone(const netpoll::ConnectionPtr& conn, size_t held_bytes) override;
  void OnPeerClosed(const netpoll::ConnectionPtr& conn) override;
  void OnClosed(const netpoll::ConnectionPtr& conn) override;

 private:
  // A decoded request frame and what it is charged to the memory budget.
  struct QueuedFrame {
    DecodedFrame frame;
    size_t held_bytes;
  };

  // One request frame, admitted by the per-connection limit.
  void HandleFrame(const netpoll::ConnectionPtr& conn, QueuedFrame queued);
  // Answers a request that never reaches a handler (already counted).
  void ReplyError(const netpoll::ConnectionPtr& conn, const DecodedFrame& frame,
                  const absl::Status& error);
  void Pause(const netpoll::ConnectionPtr& conn);
  // After a half-close, closes once nothing is left to answer (the answers
  // already written are flushed first).
  void MaybeCloseAfterPeer(const netpoll::ConnectionPtr& conn);
  // A partial frame is buffered and `needed` more bytes complete it: takes
  // them from the memory budget (once per frame, then gives back what
  // arrived). False when the budget cannot take a new large frame.
  bool ReserveRest(const netpoll::ConnectionPtr& conn, const netpoll::LinkBuffer& input,
                   size_t needed);
  void ReleaseReservation(const netpoll::ConnectionPtr& conn);
  // Stops decoding, answers nothing more, and closes once the calls already
  // admitted have answered and their answers are flushed.
  void Fail(const netpoll::ConnectionPtr& conn, absl::Status error);
  void CloseForProtocolError(const netpoll::ConnectionPtr& conn, absl::Status error);
  // The connection's first request frame, when the server has an
  // authenticator: verifies its authentication_data. Refused: answers the
  // frame ERPCAUTH, discards everything behind it and closes after the
  // answer (returns false).
  bool Authenticate(const netpoll::ConnectionPtr& conn, const DecodedFrame& frame);

  const std::shared_ptr<ServerCore> core_;
  const FrameDecoder decoder_;
  int in_flight_ = 0;               // calls of this connection holding a slot
  std::deque<QueuedFrame> queued_;  // decoded while in_flight_ was at the limit
  bool paused_ = false;             // we called PauseRead()
  bool closed_ = false;
  bool peer_closed_ = false;  // close once every call read so far is answered
  absl::Status failure_;      // set by Fail(): decode nothing more
  size_t reserved_ = 0;       // budget bytes reserved for the partial frame (2 x its rest)
  // ServerOptions::authenticator accepted the connection's first request
  // (always true without one); what it said about the caller, given to every
  // call of the connection (null without an authenticator).
  bool authenticated_ = core_->options().authenticator == nullptr;
  std::shared_ptr<const AuthContext> auth_context_;
  // Raised on close; read by the ServerContexts of this connection's calls.
  const std::shared_ptr<std::atomic<bool>> closed_flag_ =
      std::make_shared<std::atomic<bool>>(false);
};

void BaiduStdSession::Pause(const netpoll::ConnectionPtr& conn) {
  if (!paused_) {
    paused_ = true;
    conn->PauseRead();
  }
}

void BaiduStdSession::Fail(const netpoll::ConnectionPtr& conn, absl::Status error) {
  if (!failure_.ok() || closed_) return;
  failure_ = std::move(error);
  ReleaseReservation(conn);
  for (QueuedFrame& queued : queued_) conn->ChargeHeld(-static_cast<int64_t>(queued.held_bytes));
  queued_.clear();  // never admitted: the client sees the connection close
  Pause(conn);
  if (in_flight_ == 0) {
    conn->CloseAfterFlush(failure_);
    return;
  }
  // Answers of the calls already admitted go out first (OnCallDone), within
  // a grace period.
  std::weak_ptr<netpoll::Connection> weak = conn;
  conn->loop()->RunAfter(kProtocolErrorGrace, [weak, error = failure_] {
    if (netpoll::ConnectionPtr c = weak.lock()) c->Close(error);
  });
}

void BaiduStdSession::CloseForProtocolError(const netpoll::ConnectionPtr& conn,
                                            absl::Status error) {
  core_->CountProtocolError();
  NP_LOG(WARNING) << "closing connection from " << conn->peer_address().ToString()
                  << ": protocol error: " << error;
  Fail(conn, std::move(error));
}

bool BaiduStdSession::ReserveRest(const netpoll::ConnectionPtr& conn,
                                  const netpoll::LinkBuffer& input, size_t needed) {
  if (input.Len() < kBaiduStdHeaderSize) return true;  // no header yet
  // The rest's bytes and the message they become (ParseRequest) coexist
  // until the payload is parsed: reserve twice the rest.
  const size_t reserve = 2 * needed;
  if (reserved_ == 0) {
    if (needed <= kReservedFrameBytes) return true;
    if (!core_->budget().TryCharge(reserve)) return false;
  } else if (reserve < reserved_) {
    core_->budget().Add(-static_cast<int64_t>(reserved_ - reserve));  // arrived meanwhile
  }
  reserved_ = reserve;
  conn->SetPrepaidInput(needed);
  return true;
}

void BaiduStdSession::ReleaseReservation(const netpoll::ConnectionPtr& conn) {
  if (reserved_ == 0) return;
  core_->budget().Add(-static_cast<int64_t>(reserved_));
  reserved_ = 0;
  if (!closed_) conn->SetPrepaidInput(0);
}

void BaiduStdSession::OnInput(const netpoll::ConnectionPtr& conn, netpoll::LinkBuffer& input) {
  conn->loop()->AssertInLoopThread();
  const size_t limit = static_cast<size_t>(core_->options().max_in_flight_per_connection);
  while (!closed_ && failure_.ok()) {
    if (queued_.size() >= limit) {
      // Enough decoded frames wait already: leave the rest as bytes in
      // `input` (capped by max_input_bytes, where reading stops). Decoding
      // everything a pipelining client sent would hold ~20x its bytes and
      // keep the loop busy; ResumeRead() hands the rest back (OnCallDone).
      Pause(conn);
      return;
    }
    DecodeResult r = decoder_.Decode(input);
    if (r.need_more()) {
      if (!ReserveRest(conn, input, r.bytes_needed())) {
        core_->CountRefusedFrame();
        const netpoll::MemoryBudget& budget = core_->budget();
        absl::Status refused = absl::ResourceExhaustedError(absl::StrCat(
            "frame of ", input.Len() + r.bytes_needed(), " bytes refused: server memory budget (",
            budget.used(), " of ", budget.limit(), " bytes held)"));
        NP_LOG(WARNING) << "closing connection from " << conn->peer_address().ToString() << ": "
                        << refused;
        Fail(conn, std::move(refused));
      }
      return;
    }
    ReleaseReservation(conn);  // the frame is whole: it is charged below
    if (r.is_error()) {
      CloseForProtocolError(conn, r.status());
      return;
    }
    DecodedFrame frame = r.TakeFrame();
    if (!frame.is_request()) {
      CloseForProtocolError(conn, absl::InvalidArgumentError("a client sent a response frame"));
      return;
    }
    if (!authenticated_ && !Authenticate(conn, frame)) return;
    // Its bytes, the message its payload becomes (a compressed one is
    // charged when inflated, ParseRequest), and the call.
    const size_t message = frame.meta.compress_type() == 0 ? frame.payload.Len() : 0;
    const size_t held = frame.payload.Len() + frame.attachment.Len() + message + kCallOverheadBytes;
    conn->ChargeHeld(static_cast<int64_t>(held));
    if (in_flight_ >= static_cast<int>(limit) || !queued_.empty()) {
      // Keep the order; stop reading until calls complete (OnCallDone).
      queued_.push_back({std::move(frame), held});
      Pause(conn);
      continue;
    }
    HandleFrame(conn, {std::move(frame), held});
  }
}

void BaiduStdSession::OnCallDone(const netpoll::ConnectionPtr& conn, size_t held_bytes) {
  conn->loop()->AssertInLoopThread();
  --in_flight_;
  conn->ChargeHeld(-static_cast<int64_t>(held_bytes));
  if (closed_) return;
  if (!failure_.ok()) {
    if (in_flight_ == 0) conn->CloseAfterFlush(failure_);
    return;
  }
  const int limit = core_->options().max_in_flight_per_connection;
  while (!queued_.empty() && in_flight_ < limit) {
    QueuedFrame queued = std::move(queued_.front());
    queued_.pop_front();
    HandleFrame(conn, std::move(queued));
  }
  if (queued_.empty() && paused_) {
    paused_ = false;
    conn->ResumeRead();
  }
  MaybeCloseAfterPeer(conn);
}

void BaiduStdSession::OnPeerClosed(const netpoll::ConnectionPtr& conn) {
  conn->loop()->AssertInLoopThread();
  peer_closed_ = true;
  MaybeCloseAfterPeer(conn);
}

void BaiduStdSession::OnClosed(const netpoll::ConnectionPtr& conn) {
  closed_ = true;
  closed_flag_->store(true, std::memory_order_release);
  ReleaseReservation(conn);
  for (QueuedFrame& queued : queued_) conn->ChargeHeld(-static_cast<int64_t>(queued.held_bytes));
  queued_.clear();
}

void BaiduStdSession::MaybeCloseAfterPeer(const netpoll::ConnectionPtr& conn) {
  if (peer_closed_ && !closed_ && !paused_ && in_flight_ == 0 && queued_.empty()) {
    conn->CloseAfterFlush(absl::UnavailableError("connection closed by peer"));
  }
}

void BaiduStdSession::ReplyError(const netpoll::ConnectionPtr& conn, const DecodedFrame& frame,
                                 const absl::Status& error) {
  const int32_t code = ErrorCodeOf(error);
  ResponseHeader header;
  header.correlation_id = frame.meta.correlation_id();
  header.error_code = code;
  header.error_text = core_->ErrorText(code, error.message());
  header.echoed_checksum_value = frame.meta.checksum_value();
  netpoll::LinkBuffer out;
  NP_CHECK(EncodeResponse(header, {}, {}, out).ok());
  core_->Send(conn, std::move(out));
}

bool BaiduStdSession::Authenticate(const netpoll::ConnectionPtr& conn, const DecodedFrame& frame) {
  // The first frame of the connection: nothing is queued or running yet.
  auto context = std::make_shared<AuthContext>();
  context->tls = conn->tls_info();
  absl::Status verified = core_->options().authenticator->VerifyCredential(
      frame.meta.authentication_data(), conn->peer_address(), *context);
  if (verified.ok()) {
    authenticated_ = true;
    auth_context_ = std::move(context);
    return true;
  }
  core_->CountAuthFailure();
  NP_LOG(WARNING) << "closing connection from " << conn->peer_address().ToString()
                  << ": authentication failed: " << verified;
  // brpc's words, then the verifier's reason.
  ReplyError(conn, frame,
             MakeRpcError(ERPCAUTH, absl::StrCat("Fail to authenticate: ", verified.message())));
  Fail(conn, MakeRpcError(ERPCAUTH, "authentication failed"));
  return false;
}

void BaiduStdSession::HandleFrame(const netpoll::ConnectionPtr& conn, QueuedFrame queued) {
  DecodedFrame& frame = queued.frame;
  // Answered without a call: the charge goes back at once.
  auto release = [&] { conn->ChargeHeld(-static_cast<int64_t>(queued.held_bytes)); };
  const wire::RpcRequestMeta& req = frame.meta.request();
  absl::StatusOr<MethodEntry*> method = core_->Lookup(req.service_name(), req.method_name());
  if (!method.ok()) {
    release();
    ReplyError(conn, frame, method.status());
    return;
  }
  if (absl::Status s = VerifyChecksum(frame); !s.ok()) {
    core_->CountRefused(*method, EREQUEST);
    release();
    ReplyError(conn, frame,
               MakeRpcError(EREQUEST, absl::StrCat("Fail to verify checksum: ", s.message())));
    return;
  }
  if (absl::Status s = core_->Acquire(*method); !s.ok()) {
    release();
    ReplyError(conn, frame, s);
    return;
  }
  ++in_flight_;
  auto call =
      std::make_shared<BaiduStdCall>(core_, conn, shared_from_this(), *method, std::move(frame));
  call->set_held_bytes(queued.held_bytes);
  call->set_request_bytes(queued.held_bytes);  // the frame, header included
  ServerContext& ctx = call->context();
  const wire::RpcMeta& meta = call->meta();  // `frame` was moved into the call
  const wire::RpcRequestMeta& creq = meta.request();
  ctx.set_protocol(BaiduStdProtocol::Get()->name());
  ctx.set_service_name(creq.service_name());
  ctx.set_method_name(creq.method_name());
  ctx.set_correlation_id(meta.correlation_id());
  if (creq.has_timeout_ms() && creq.timeout_ms() > 0) {
    ctx.set_timeout_ms(creq.timeout_ms());
    ctx.set_deadline(absl::Now() + absl::Milliseconds(creq.timeout_ms()));
  }
  for (const wire::UserFieldsEntry& field : meta.user_fields()) {
    ctx.mutable_request_user_fields()[field.key()] = field.value();  // last entry wins
  }
  ctx.set_trace(TraceOf(creq));
  if (meta.has_authentication_data()) ctx.set_authentication_data(meta.authentication_data());
  ctx.set_auth_context(auth_context_);
  ctx.set_connection_closed_flag(closed_flag_);
  core_->Start(call);
}

}  // namespace

const BaiduStdProtocol* BaiduStdProtocol::Get() {
  static const BaiduStdProtocol* const protocol = new BaiduStdProtocol();
  return protocol;
}

SniffResult BaiduStdProtocol::Sniff(const netpoll::LinkBuffer& input) const {
  constexpr absl::string_view kMagic(kBaiduStdMagic, sizeof(kBaiduStdMagic));
  char first[sizeof(kBaiduStdMagic)];
  const size_t n = std::min(input.Len(), kMagic.size());
  input.PeekCopy(n, first);
  if (absl::string_view(first, n) != kMagic.substr(0, n)) return SniffResult::kNotMine;
  return n == kMagic.size() ? SniffResult::kMine : SniffResult::kNeedMore;
}

std::shared_ptr<ServerSession> BaiduStdProtocol::NewSession(
    std::shared_ptr<ServerCore> core, const netpoll::ConnectionPtr& conn) const {
  std::shared_ptr<const AuthContext> tls_identity;
  if (conn->is_tls()) {
    auto context = std::make_shared<AuthContext>();
    context->tls = conn->tls_info();
    tls_identity = std::move(context);
  }
  return std::make_shared<BaiduStdSession>(std::move(core), std::move(tls_identity));
}

}  // namespace nprpc
