#include "rpc/internal/http_protocol.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "google/protobuf/util/json_util.h"
#include "netpoll/logging.h"
#include "rpc/authenticator.h"
#include "rpc/errors.h"
#include "rpc/internal/http_message.h"
#include "rpc/internal/http_request_decoder.h"
#include "rpc/internal/server_call.h"
#include "rpc/internal/server_core.h"
#include "rpc/server_context.h"
#include "rpc/trace_context.h"

namespace nprpc {
namespace {

// What a decoded request holds besides its body and the message the body
// becomes: its headers, the call, its context. An estimate, per call.
constexpr size_t kCallOverheadBytes = 1024;

// The methods a connection may start with (each followed by a space).
constexpr absl::string_view kSniffedMethods[] = {"GET ",    "POST ",    "PUT ",  "HEAD ",
                                                 "DELETE ", "OPTIONS ", "PATCH "};

constexpr absl::string_view kJsonContentType = "application/json";

// After an error answer that closes the connection (400, 413, 431, 401), the
// server reads and drops what the peer still sends, for at most this long
// and this much, before it closes: closing with unread bytes makes the
// kernel reset the connection, which can discard the answer before the peer
// reads it (a lingering close, as HTTP servers do).
constexpr absl::Duration kLingerTime = absl::Seconds(2);
constexpr size_t kLingerBytes = size_t{1} << 20;

// How a call's body is encoded.
enum class BodyFormat { kJson, kProtobuf };

// One answer in request order. Filled on the loop (answers without a call)
// or by the call's EncodeAnswer on any thread; `ready` publishes `bytes`.
struct PendingAnswer {
  std::atomic<bool> ready{false};
  netpoll::LinkBuffer bytes;  // written before `ready`, read after it
  bool close_after = false;   // set on the loop before the call starts
  bool linger = false;        // close_after with a lingering close (kLingerTime)
};

// The media type of a Content-Type value: lower case, parameters dropped.
std::string MediaType(absl::string_view value) {
  value = value.substr(0, value.find(';'));
  return absl::AsciiStrToLower(absl::StripAsciiWhitespace(value));
}

// "/package.Service/Method" -> service and method; false for other paths.
bool SplitMethodPath(absl::string_view path, absl::string_view& service,
                     absl::string_view& method) {
  if (path.size() < 4 || path[0] != '/') return false;
  const size_t slash = path.rfind('/');
  if (slash == 0 || slash + 1 == path.size()) return false;
  service = path.substr(1, slash - 1);
  method = path.substr(slash + 1);
  return true;
}

// One JSON (or binary protobuf) call over HTTP and its answer.
class HttpCall final : public ServerCall {
 public:
  HttpCall(std::shared_ptr<ServerCore> core, netpoll::ConnectionPtr conn,
           std::shared_ptr<ServerSession> session, MethodEntry* method, std::string body,
           BodyFormat format, std::string content_type, std::shared_ptr<PendingAnswer> answer)
      : ServerCall(std::move(core), std::move(conn), std::move(session), method),
        body_(std::move(body)),
        format_(format),
        content_type_(std::move(content_type)),
        answer_(std::move(answer)),
        keep_alive_(!answer_->close_after) {}

 protected:
  absl::Status ParseRequest(google::protobuf::Message& request) override;
  bool EncodeAnswer(const absl::Status& status, const google::protobuf::Message* response,
                    bool by_handler, netpoll::LinkBuffer& out) override;

 private:
  std::string body_;  // ParseRequest() only
  const BodyFormat format_;
  const std::string content_type_;
  const std::shared_ptr<PendingAnswer> answer_;
  const bool keep_alive_;
};

absl::Status HttpCall::ParseRequest(google::protobuf::Message& request) {
  std::string body = std::move(body_);
  if (format_ == BodyFormat::kProtobuf) {
    if (!request.ParseFromString(body)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "Fail to parse request message (application/x-protobuf), request_size=", body.size()));
    }
    return absl::OkStatus();
  }
  if (absl::StripAsciiWhitespace(body).empty()) body = "{}";  // no body: every field unset
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  const auto parsed = google::protobuf::util::JsonStringToMessage(body, &request, options);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("Fail to parse JSON request of ", request.GetDescriptor()->full_name(), ": ",
                     absl::string_view(parsed.message().data(), parsed.message().size())));
  }
  return absl::OkStatus();
}

bool HttpCall::EncodeAnswer(const absl::Status& status, const google::protobuf::Message* response,
                            bool by_handler, netpoll::LinkBuffer& out) {
  absl::Status error = status;
  HttpResponse answer;
  if (error.ok()) {
    if (format_ == BodyFormat::kProtobuf) {
      answer.content_type = content_type_;
      if (!response->SerializeToString(&answer.body)) {
        error = MakeRpcError(ERESPONSE, "Fail to serialize response");
      }
    } else {
      answer.content_type = std::string(kJsonContentType);
      const auto encoded = google::protobuf::util::MessageToJsonString(*response, &answer.body);
      if (!encoded.ok()) {
        error = MakeRpcError(ERESPONSE, absl::StrCat("Fail to convert response to JSON: ",
                                                     absl::string_view(encoded.message().data(),
                                                                       encoded.message().size())));
      } else {
        answer.body += '\n';
      }
    }
  }
  if (!error.ok()) answer = HttpErrorResponse(error);
  if (by_handler) {
    // Only the handler's own answer reads the response side of the context:
    // the server's answers race with a handler still writing it.
    for (const auto& [key, value] : context().response_user_fields()) {
      if (!IsHttpToken(key) || !IsHttpFieldValue(value)) continue;
      const std::string lower = absl::AsciiStrToLower(key);
      if (lower == "content-length" || lower == "connection" || lower == "content-type" ||
          lower == "transfer-encoding") {
        continue;  // framing is the server's
      }
      answer.headers.Add(key, value);
    }
  }
  SerializeHttpResponse(std::move(answer), {.keep_alive = keep_alive_}, answer_->bytes);
  answer_->ready.store(true, std::memory_order_release);
  // The session writes the answer in request order (OnCallDone); `out`
  // stays empty.
  (void)out;
  return error.ok();
}

// One HTTP connection. Loop thread only.
class HttpSession final : public ServerSession, public std::enable_shared_from_this<HttpSession> {
 public:
  // `tls_identity`: the AuthContext of a TLS connection (null: plaintext).
  HttpSession(std::shared_ptr<ServerCore> core, std::shared_ptr<const AuthContext> tls_identity)
      : core_(std::move(core)),
        decoder_(
            HttpRequestDecoderOptions{.max_header_bytes = core_->options().max_http_header_size,
                                      .max_body_bytes = core_->options().max_body_size}),
        auth_context_(std::move(tls_identity)) {}

  void OnInput(const netpoll::ConnectionPtr& conn, netpoll::LinkBuffer& input) override;
  void OnCallDone(const netpoll::ConnectionPtr& conn, size_t held_bytes) override;
  void OnPeerClosed(const netpoll::ConnectionPtr& conn) override;
  void OnClosed(const netpoll::ConnectionPtr& conn) override;

 private:
  void HandleRequest(const netpoll::ConnectionPtr& conn, HttpRequest request);
  // A call to service/method; false when it was answered without one.
  void StartCall(const netpoll::ConnectionPtr& conn, HttpRequest request);
  // Queues an answer made on the loop, in order, and writes what is ready.
  void Reply(const netpoll::ConnectionPtr& conn, HttpResponse response, const HttpRequest& request);
  // Answers `error` and closes the connection after it: no request after
  // this one is read.
  void ReplyAndClose(const netpoll::ConnectionPtr& conn, int http_status,
                     const absl::Status& error);
  // Writes the ready answers at the head of the queue.
  void Flush(const netpoll::ConnectionPtr& conn);
  void Pause(const netpoll::ConnectionPtr& conn);
  void MaybeResume(const netpoll::ConnectionPtr& conn);
  void MaybeCloseAfterPeer(const netpoll::ConnectionPtr& conn);
  // The error answer is written: drop the peer's input for a while, then
  // close (kLingerTime).
  void Linger(const netpoll::ConnectionPtr& conn);
  // Charges the memory the decoder holds for a partial request.
  void SyncPartialCharge(const netpoll::ConnectionPtr& conn);

  const std::shared_ptr<ServerCore> core_;
  HttpRequestDecoder decoder_;
  // Unwritten answers in request order, at most max_in_flight_per_connection.
  std::deque<std::shared_ptr<PendingAnswer>> answers_;
  int64_t partial_charge_ = 0;  // ChargeHeld() for the decoder's partial request
  bool paused_ = false;         // we called PauseRead()
  bool done_ = false;           // read no more requests: an answer closes the connection
  bool closing_ = false;        // that answer was written (CloseAfterFlush or Linger)
  bool lingering_ = false;      // Linger(): input is dropped until the close
  size_t lingered_bytes_ = 0;   // input dropped while lingering
  bool closed_ = false;
  bool peer_closed_ = false;  // close once every request read so far is answered
  bool authenticated_ = false;
  std::shared_ptr<const AuthContext> auth_context_;  // what the authenticator filled
  // Raised on close; read by the ServerContexts of this connection's calls.
  const std::shared_ptr<std::atomic<bool>> closed_flag_ =
      std::make_shared<std::atomic<bool>>(false);
};

void HttpSession::Pause(const netpoll::ConnectionPtr& conn) {
  if (!paused_) {
    paused_ = true;
    conn->PauseRead();
  }
}

void HttpSession::MaybeResume(const netpoll::ConnectionPtr& conn) {
  if (paused_ && !done_ && !closed_ &&
      answers_.size() < static_cast<size_t>(core_->options().max_in_flight_per_connection)) {
    paused_ = false;
    conn->ResumeRead();  // hands the bytes that waited back to OnInput
  }
}

void HttpSession::SyncPartialCharge(const netpoll::ConnectionPtr& conn) {
  const auto held = static_cast<int64_t>(decoder_.held_bytes());
  if (held != partial_charge_) {
    conn->ChargeHeld(held - partial_charge_);
    partial_charge_ = held;
  }
}

void HttpSession::OnInput(const netpoll::ConnectionPtr& conn, netpoll::LinkBuffer& input) {
  conn->loop()->AssertInLoopThread();
  if (lingering_) {
    lingered_bytes_ += input.Len();
    (void)input.Skip(input.Len());
    if (lingered_bytes_ > kLingerBytes) {
      lingering_ = false;
      conn->CloseAfterFlush(absl::UnavailableError("HTTP connection closed after its error"));
    }
    return;
  }
  const size_t limit = static_cast<size_t>(core_->options().max_in_flight_per_connection);
  while (!closed_ && !done_) {
    if (answers_.size() >= limit) {
      // Enough answers are owed already: the rest waits as bytes in `input`
      // (capped by max_input_bytes, where reading stops); ResumeRead() hands
      // it back when answers leave (OnCallDone).
      Pause(conn);
      break;
    }
    HttpDecodeResult r = decoder_.Decode(input);
    if (r.need_more()) break;
    if (r.is_error()) {
      core_->CountProtocolError();
      NP_LOG(WARNING) << "closing HTTP connection from " << conn->peer_address().ToString() << ": "
                      << r.http_status() << " " << r.status();
      ReplyAndClose(conn, r.http_status(), MakeRpcError(EREQUEST, r.status().message()));
      break;
    }
    HandleRequest(conn, r.TakeRequest());
  }
  if (!closed_) SyncPartialCharge(conn);
}

void HttpSession::HandleRequest(const netpoll::ConnectionPtr& conn, HttpRequest request) {
  if (const std::shared_ptr<const Authenticator>& auth = core_->options().authenticator;
      auth != nullptr && !authenticated_) {
    // The connection's first request carries its credential (as brpc
    // verifies a connection once); every later call shares what it said.
    const std::string* credential = request.headers.Find("authorization");
    AuthContext context;
    context.tls = conn->tls_info();
    absl::Status verified = auth->VerifyCredential(
        credential != nullptr ? *credential : absl::string_view(), conn->peer_address(), context);
    if (!verified.ok()) {
      core_->CountAuthFailure();
      NP_LOG(WARNING) << "closing HTTP connection from " << conn->peer_address().ToString()
                      << ": authentication failed: " << verified;
      const absl::Status error =
          MakeRpcError(ERPCAUTH, absl::StrCat("Fail to authenticate: ", verified.message()));
      ReplyAndClose(conn, HttpStatusForError(error), error);
      return;
    }
    authenticated_ = true;
    auth_context_ = std::make_shared<const AuthContext>(std::move(context));
  }
  if (request.method == "GET" || request.method == "HEAD") {
    HttpResponse response;
    const HttpPages* pages = core_->http_pages();
    if (pages == nullptr || !pages->Serve(request, response)) {
      response = HttpErrorResponse(
          404, MakeRpcError(ENOMETHOD,
                            absl::StrCat("no page ", BoundedQuote(request.path, kMaxQuotedName))));
    }
    Reply(conn, std::move(response), request);
    return;
  }
  if (request.method == "POST") {
    StartCall(conn, std::move(request));
    return;
  }
  HttpResponse response =
      HttpErrorResponse(405, MakeRpcError(EREQUEST, absl::StrCat("method ", request.method,
                                                                 " is not served: "
                                                                 "POST calls a method, "
                                                                 "GET and HEAD read a "
                                                                 "page")));
  response.headers.Add("Allow", "GET, HEAD, POST");
  Reply(conn, std::move(response), request);
}

void HttpSession::StartCall(const netpoll::ConnectionPtr& conn, HttpRequest request) {
  absl::string_view service_name, method_name;
  if (!SplitMethodPath(request.path, service_name, method_name)) {
    Reply(conn,
          HttpErrorResponse(
              404, MakeRpcError(ENOMETHOD, absl::StrCat("POST names no method: ",
                                                        BoundedQuote(request.path, kMaxQuotedName),
                                                        " (expected /package.Service/Method)"))),
          request);
    return;
  }
  BodyFormat format = BodyFormat::kJson;
  std::string content_type;
  if (const std::string* type = request.headers.Find("content-type"); type != nullptr) {
    content_type = MediaType(*type);
    if (content_type == "application/x-protobuf" || content_type == "application/protobuf" ||
        content_type == "application/proto") {
      format = BodyFormat::kProtobuf;
    } else if (content_type != kJsonContentType && !content_type.empty() &&
               content_type != "application/x-www-form-urlencoded") {
      // (curl -d sends the last one: its body is taken as JSON.)
      Reply(conn,
            HttpErrorResponse(
                415, MakeRpcError(EREQUEST,
                                  absl::StrCat("Content-Type ", BoundedQuote(*type, kMaxQuotedName),
                                               " is not served: use application/json "
                                               "or application/x-protobuf"))),
            request);
      return;
    }
  }
  std::optional<int32_t> timeout_ms;
  if (const std::string* value = request.headers.Find(kHttpTimeoutHeader); value != nullptr) {
    int32_t ms = 0;
    if (!absl::SimpleAtoi(*value, &ms) || ms <= 0) {
      Reply(conn,
            HttpErrorResponse(400, MakeRpcError(EREQUEST, absl::StrCat(kHttpTimeoutHeader,
                                                                       " must be a positive "
                                                                       "number of milliseconds"))),
            request);
      return;
    }
    timeout_ms = ms;
  }
  absl::StatusOr<MethodEntry*> method = core_->Lookup(service_name, method_name);
  if (!method.ok()) {
    Reply(conn, HttpErrorResponse(method.status()), request);
    return;
  }
  if (absl::Status s = core_->Acquire(*method); !s.ok()) {
    Reply(conn, HttpErrorResponse(s), request);
    return;
  }
  // Its body, the message it becomes, its headers and the call.
  size_t headers_size = 0;
  for (const HttpHeaders::Field& field : request.headers.fields()) {
    headers_size += field.name.size() + field.value.size();
  }
  const size_t held = 2 * request.body.size() + headers_size + kCallOverheadBytes;
  conn->ChargeHeld(static_cast<int64_t>(held));
  auto answer = std::make_shared<PendingAnswer>();
  answer->close_after = !request.keep_alive;
  answers_.push_back(answer);
  if (!request.keep_alive) {
    done_ = true;
    Pause(conn);
  }
  auto call =
      std::make_shared<HttpCall>(core_, conn, shared_from_this(), *method, std::move(request.body),
                                 format, content_type, std::move(answer));
  call->set_held_bytes(held);
  ServerContext& ctx = call->context();
  ctx.set_service_name(std::string(service_name));
  ctx.set_method_name(std::string(method_name));
  ctx.set_protocol("http");
  if (timeout_ms.has_value()) {
    ctx.set_timeout_ms(*timeout_ms);
    ctx.set_deadline(absl::Now() + absl::Milliseconds(*timeout_ms));
  }
  if (const std::string* traceparent = request.headers.Find("traceparent");
      traceparent != nullptr) {
    if (std::optional<TraceContext> trace = ParseTraceparent(*traceparent)) {
      ctx.set_trace(std::move(*trace));
    }
  }
  ServerContext::UserFields& fields = ctx.mutable_request_user_fields();
  for (HttpHeaders::Field& field : request.headers.mutable_fields()) {
    std::string name = absl::AsciiStrToLower(field.name);
    auto [it, inserted] = fields.try_emplace(std::move(name), std::move(field.value));
    if (!inserted) {
      // A repeated field is one list (RFC 9110 5.3).
      absl::StrAppend(&it->second, ", ", field.value);
    }
  }
  if (auth_context_ != nullptr) ctx.set_auth_context(auth_context_);
  ctx.set_connection_closed_flag(closed_flag_);
  core_->Start(call);
}

void HttpSession::Reply(const netpoll::ConnectionPtr& conn, HttpResponse response,
                        const HttpRequest& request) {
  auto answer = std::make_shared<PendingAnswer>();
  answer->close_after = !request.keep_alive;
  SerializeHttpResponse(
      std::move(response),
      {.keep_alive = request.keep_alive, .head_request = request.method == "HEAD"}, answer->bytes);
  answer->ready.store(true, std::memory_order_relaxed);
  answers_.push_back(std::move(answer));
  if (!request.keep_alive) {
    done_ = true;
    Pause(conn);
  }
  Flush(conn);
}

void HttpSession::ReplyAndClose(const netpoll::ConnectionPtr& conn, int http_status,
                                const absl::Status& error) {
  auto answer = std::make_shared<PendingAnswer>();
  answer->close_after = true;
  answer->linger = true;
  SerializeHttpResponse(HttpErrorResponse(http_status, error), {.keep_alive = false},
                        answer->bytes);
  answer->ready.store(true, std::memory_order_relaxed);
  answers_.push_back(std::move(answer));
  done_ = true;
  Pause(conn);
  Flush(conn);
}

void HttpSession::Linger(const netpoll::ConnectionPtr& conn) {
  lingering_ = true;
  if (paused_) {
    paused_ = false;
    conn->ResumeRead();
  }
  std::weak_ptr<netpoll::Connection> weak = conn;
  conn->loop()->RunAfter(kLingerTime, [weak] {
    if (netpoll::ConnectionPtr c = weak.lock()) {
      c->CloseAfterFlush(absl::UnavailableError("HTTP connection closed after its error"));
    }
  });
  MaybeCloseAfterPeer(conn);
}

void HttpSession::Flush(const netpoll::ConnectionPtr& conn) {
  while (!closing_ && !answers_.empty() &&
         answers_.front()->ready.load(std::memory_order_acquire)) {
    std::shared_ptr<PendingAnswer> answer = std::move(answers_.front());
    answers_.pop_front();
    core_->Send(conn, std::move(answer->bytes));
    if (answer->close_after) {
      closing_ = true;
      answers_.clear();
      if (answer->linger) {
        Linger(conn);
      } else {
        conn->CloseAfterFlush(absl::UnavailableError("HTTP connection closed after its answer"));
      }
    }
  }
}

void HttpSession::OnCallDone(const netpoll::ConnectionPtr& conn, size_t held_bytes) {
  conn->loop()->AssertInLoopThread();
  conn->ChargeHeld(-static_cast<int64_t>(held_bytes));
  if (closed_) return;
  Flush(conn);
  MaybeResume(conn);
  MaybeCloseAfterPeer(conn);
}

void HttpSession::OnPeerClosed(const netpoll::ConnectionPtr& conn) {
  conn->loop()->AssertInLoopThread();
  peer_closed_ = true;
  MaybeCloseAfterPeer(conn);
}

void HttpSession::MaybeCloseAfterPeer(const netpoll::ConnectionPtr& conn) {
  if (peer_closed_ && lingering_) {
    lingering_ = false;  // the peer read its answer and is done
    conn->CloseAfterFlush(absl::UnavailableError("HTTP connection closed after its error"));
    return;
  }
  if (peer_closed_ && !closed_ && !closing_ && !paused_ && answers_.empty()) {
    closing_ = true;
    conn->CloseAfterFlush(absl::UnavailableError("connection closed by peer"));
  }
}

void HttpSession::OnClosed(const netpoll::ConnectionPtr& conn) {
  closed_ = true;
  closed_flag_->store(true, std::memory_order_release);
  conn->ChargeHeld(-partial_charge_);
  partial_charge_ = 0;
  answers_.clear();
}

}  // namespace

const HttpProtocol* HttpProtocol::Get() {
  static const HttpProtocol* const protocol = new HttpProtocol();
  return protocol;
}

SniffResult HttpProtocol::Sniff(const netpoll::LinkBuffer& input) const {
  constexpr size_t kLongest = 8;  // "OPTIONS "
  char first[kLongest];
  const size_t n = std::min(input.Len(), kLongest);
  input.PeekCopy(n, first);
  const absl::string_view head(first, n);
  bool need_more = false;
  for (absl::string_view method : kSniffedMethods) {
    if (absl::StartsWith(head, method)) return SniffResult::kMine;
    need_more |= head.size() < method.size() && absl::StartsWith(method, head);
  }
  return need_more ? SniffResult::kNeedMore : SniffResult::kNotMine;
}

std::shared_ptr<ServerSession> HttpProtocol::NewSession(std::shared_ptr<ServerCore> core,
                                                        const netpoll::ConnectionPtr& conn) const {
  std::shared_ptr<const AuthContext> tls_identity;
  if (conn->is_tls()) {
    auto context = std::make_shared<AuthContext>();
    context->tls = conn->tls_info();
    tls_identity = std::move(context);
  }
  return std::make_shared<HttpSession>(std::move(core), std::move(tls_identity));
}

}  // namespace nprpc
