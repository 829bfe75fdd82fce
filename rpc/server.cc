#include "rpc/server.h"

#include <algorithm>
#include <any>
#include <atomic>
#include <deque>
#include <utility>

#include "absl/strings/str_cat.h"
#include "netpoll/connection.h"
#include "netpoll/event_loop.h"
#include "netpoll/event_loop_group.h"
#include "netpoll/logging.h"
#include "netpoll/server.h"
#include "rpc/errors.h"
#include "rpc/internal/compression.h"
#include "rpc/internal/frame_codec.h"
#include "rpc/internal/worker_pool.h"

namespace nprpc {
namespace {

// One method as the server serves it. The table is built before Start() and
// immutable afterwards; the counters are atomics, touched from any thread.
struct MethodEntry {
  std::string full_name;   // "package.Service/Method"
  MethodHandler* handler;  // owned by its Service, which outlives the server
  int max_concurrency;     // 0 = unlimited
  std::atomic<int64_t> in_flight{0};
  std::atomic<int64_t> received{0};
  std::atomic<int64_t> succeeded{0};
  std::atomic<int64_t> failed{0};
};

// Per connection, the value of Connection::context().
struct ConnState {
  // Loop thread only.
  int in_flight = 0;                // calls of this connection holding a slot
  std::deque<DecodedFrame> queued;  // decoded while in_flight was at the limit
  bool paused = false;              // we called PauseRead()
  bool closed = false;
  // The peer half-closed: close once every call read so far is answered.
  bool peer_closed = false;
  // Raised on close; read by the ServerContexts of this connection's calls.
  std::shared_ptr<std::atomic<bool>> closed_flag = std::make_shared<std::atomic<bool>>(false);
};

std::shared_ptr<ConnState> ConnStateOf(netpoll::Connection& conn) {
  auto* state = std::any_cast<std::shared_ptr<ConnState>>(&conn.context());
  NP_CHECK(state != nullptr) << "connection without server state";
  return *state;
}

}  // namespace

// Server-wide state shared by the Server, its connections and its calls. A
// call may outlive the Server (a handler holding its Responder): the gate
// below makes such late completions drop their answer instead of touching
// loops that no longer exist.
struct Server::Core : std::enable_shared_from_this<Server::Core> {
  explicit Core(const ServerOptions& o)
      : options(o), decoder(FrameDecoderOptions{.max_body_size = o.max_body_size}) {}

  // Loop thread: new input on `conn`.
  void OnRequest(const netpoll::ConnectionPtr& conn, netpoll::LinkBuffer& input);
  // Loop thread: one request frame, admitted by the per-connection limit.
  void HandleFrame(const netpoll::ConnectionPtr& conn, const std::shared_ptr<ConnState>& cs,
                   DecodedFrame frame);
  // Loop thread: a call of `conn` completed (its slot is free).
  void OnCallDone(const netpoll::ConnectionPtr& conn, const std::shared_ptr<ConnState>& cs);
  // Loop thread: the peer of `conn` closed its write side.
  void OnPeerClosed(const netpoll::ConnectionPtr& conn);
  // Loop thread: after a half-close, closes `conn` once nothing is left to
  // answer (the answers already written are flushed first).
  void MaybeCloseAfterPeer(const netpoll::ConnectionPtr& conn, const ConnState& cs);
  // Loop thread: answers a request that never reaches a handler.
  void ReplyError(const netpoll::ConnectionPtr& conn, const DecodedFrame& frame,
                  MethodEntry* method, int32_t code, absl::string_view text);
  // Any thread: queues an encoded response on `conn` through the gate. With
  // a `cs`, also returns that connection's slot (on the loop); cancels
  // `timer` when valid.
  void Send(const netpoll::ConnectionPtr& conn, const std::shared_ptr<ConnState>& cs,
            netpoll::LinkBuffer frame, netpoll::TimerId timer = netpoll::kInvalidTimerId);
  // Any thread: "[addr][E<code>]text" (or just text).
  std::string ErrorText(int32_t code, absl::string_view text) const;
  void CountAnswer(MethodEntry* method, int32_t code);
  void ReleaseServerSlot();

  // Constant after Start().
  const ServerOptions options;
  const FrameDecoder decoder;
  absl::flat_hash_map<std::string, absl::flat_hash_map<std::string, std::unique_ptr<MethodEntry>>>
      services;
  std::string error_prefix;    // "[127.0.0.1:8000]"
  WorkerPool* pool = nullptr;  // owned by Server; outlives every loop turn

  std::atomic<bool> stopping{false};
  std::atomic<int64_t> concurrency{0};  // calls holding a server-wide slot
  std::atomic<int64_t> received{0}, succeeded{0}, failed{0}, protocol_errors{0};

  netpoll::Mutex mu;
  netpoll::CondVar cv;                        // in_flight reached 0, or a gate user left
  int64_t in_flight ABSL_GUARDED_BY(mu) = 0;  // admitted calls whose answer is not yet queued
  bool gate_closed ABSL_GUARDED_BY(mu) = false;
  int gate_users ABSL_GUARDED_BY(mu) = 0;
};

namespace {

// One call from slot acquisition to its single answer. Completed by the
// handler (through Responder -> Complete), by the server before the handler
// runs (bad payload, deadline passed in the queue, full pool), or by the
// deadline timer; the first wins, the others are dropped.
class Call : public CallCompleter, public std::enable_shared_from_this<Call> {
 public:
  Call(std::shared_ptr<Server::Core> core, netpoll::ConnectionPtr conn,
       std::shared_ptr<ConnState> cs, MethodEntry* method, DecodedFrame frame)
      : core_(std::move(core)),
        conn_(std::move(conn)),
        cs_(std::move(cs)),
        method_(method),
        correlation_id_(frame.meta.correlation_id()),
        echoed_checksum_(frame.meta.checksum_value()),
        frame_(std::move(frame)) {}

  ServerContext& context() { return ctx_; }
  // The request's meta, for filling the context before Run().
  const wire::RpcMeta& meta() const { return frame_.meta; }
  void set_timer(netpoll::TimerId id) { timer_.store(id, std::memory_order_release); }

  // Worker (or loop, inline): parses the request and runs the handler.
  void Run();
  // The handler's answer (through its Responder).
  void Complete(absl::Status status) override { Finish(std::move(status), /*by_handler=*/true); }
  // The server's own answer; the handler (if running) is told through
  // IsCancelled() and its answer is dropped.
  void FinishByServer(int32_t code, absl::string_view text) {
    Finish(MakeRpcError(code, text), /*by_handler=*/false);
  }

 private:
  void Finish(absl::Status status, bool by_handler);

  const std::shared_ptr<Server::Core> core_;
  const netpoll::ConnectionPtr conn_;
  const std::shared_ptr<ConnState> cs_;
  MethodEntry* const method_;
  const int64_t correlation_id_;
  const std::string echoed_checksum_;

  DecodedFrame frame_;  // Run() only
  ServerContext ctx_;
  std::unique_ptr<google::protobuf::Message> request_;
  std::unique_ptr<google::protobuf::Message> response_;
  std::atomic<bool> finished_{false};
  std::atomic<netpoll::TimerId> timer_{netpoll::kInvalidTimerId};
};

void Call::Run() {
  if (finished_.load(std::memory_order_acquire)) return;  // answered while queued
  if (ctx_.IsCancelled()) {
    if (ctx_.deadline_exceeded()) {
      FinishByServer(ERPCTIMEDOUT, "Deadline passed before the call started");
    } else {
      FinishByServer(ELOGOFF, "Call cancelled before it started (connection closed)");
    }
    return;
  }
  const int32_t compress_type = frame_.meta.compress_type();
  const size_t wire_size = frame_.payload.Len();
  absl::StatusOr<netpoll::LinkBuffer> payload =
      UncompressPayload(frame_, core_->options.max_decompressed_size);
  if (!payload.ok()) {
    FinishByServer(EREQUEST,
                   absl::StrCat("Fail to decompress request, CompressType=",
                                CompressTypeName(static_cast<CompressType>(compress_type)), ": ",
                                payload.status().message()));
    return;
  }
  request_ = method_->handler->NewRequest();
  if (absl::Status s = ParseFromLinkBuffer(*payload, *request_); !s.ok()) {
    FinishByServer(EREQUEST,
                   absl::StrCat("Fail to parse request message, CompressType=",
                                CompressTypeName(static_cast<CompressType>(compress_type)),
                                ", request_size=", wire_size));
    return;
  }
  payload->Clear();
  response_ = method_->handler->NewResponse();
  ctx_.request_attachment() = std::move(frame_.attachment);
  method_->handler->Call(ctx_, *request_, response_.get(), Responder(shared_from_this()));
}

void Call::Finish(absl::Status status, bool by_handler) {
  if (finished_.exchange(true, std::memory_order_acq_rel)) {
    if (by_handler) {
      NP_LOG(DEBUG) << "dropping the late answer of " << method_->full_name
                    << " (already answered by the server): " << status;
    }
    return;
  }
  if (!by_handler) ctx_.Cancel();
  netpoll::TimerId timer = timer_.exchange(netpoll::kInvalidTimerId, std::memory_order_acq_rel);
  int32_t code = HandlerErrorCode(status);
  ResponseHeader header;
  header.correlation_id = correlation_id_;
  header.echoed_checksum_value = echoed_checksum_;
  netpoll::LinkBuffer payload;
  netpoll::LinkBuffer attachment;
  std::string text(status.message());
  if (code == 0) {
    if (absl::Status s = SerializeToLinkBuffer(*response_, payload); !s.ok()) {
      code = ERESPONSE;
      text = absl::StrCat("Fail to serialize response: ", s.message());
      payload.Clear();
    } else {
      attachment = std::move(ctx_.response_attachment());
      header.compress_type = ctx_.response_compress_type();
    }
  }
  if (by_handler) {
    // Only the handler's own answer reads the response side of the context:
    // the server's answers race with a handler still writing it.
    for (const auto& [key, value] : ctx_.response_user_fields()) {
      header.user_fields.push_back({key, value});
    }
  }
  header.error_code = code;
  if (code != 0) {
    header.error_text = core_->ErrorText(code, text);
    // An nprpc client restores codes the brpc number does not imply.
    if (std::optional<std::string> field = StatusCodeFieldFor(code, status.code())) {
      header.user_fields.push_back({std::string(kStatusCodeField), std::move(*field)});
    }
  }
  netpoll::LinkBuffer out;
  absl::Status encoded = EncodeResponse(header, std::move(payload), std::move(attachment), out);
  if (!encoded.ok()) {
    NP_LOG(ERROR) << "cannot encode the response of " << method_->full_name << ": " << encoded;
    code = EINTERNAL;
    header.error_code = code;
    header.error_text =
        core_->ErrorText(code, absl::StrCat("Fail to encode response: ", encoded.message()));
    header.compress_type = CompressType::kNone;
    header.user_fields.clear();
    out.Clear();
    NP_CHECK(EncodeResponse(header, {}, {}, out).ok());
  }
  core_->CountAnswer(method_, code);
  method_->in_flight.fetch_sub(1, std::memory_order_relaxed);
  core_->concurrency.fetch_sub(1, std::memory_order_relaxed);
  core_->Send(conn_, cs_, std::move(out), timer);
  core_->ReleaseServerSlot();
}

}  // namespace

// ------------------------------------------------------------------ Core

std::string Server::Core::ErrorText(int32_t code, absl::string_view text) const {
  if (!options.brpc_error_prefix) return std::string(text);
  return absl::StrCat(error_prefix, "[E", code, "]", text);
}

void Server::Core::CountAnswer(MethodEntry* method, int32_t code) {
  std::atomic<int64_t>& total = code == 0 ? succeeded : failed;
  total.fetch_add(1, std::memory_order_relaxed);
  if (method != nullptr) {
    (code == 0 ? method->succeeded : method->failed).fetch_add(1, std::memory_order_relaxed);
  }
}

void Server::Core::ReleaseServerSlot() {
  netpoll::MutexLock lock(&mu);
  if (--in_flight == 0) cv.SignalAll();
}

void Server::Core::Send(const netpoll::ConnectionPtr& conn, const std::shared_ptr<ConnState>& cs,
                        netpoll::LinkBuffer frame, netpoll::TimerId timer) {
  {
    netpoll::MutexLock lock(&mu);
    if (gate_closed) return;  // the server is gone; nobody can read this answer
    ++gate_users;
  }
  // From here until the gate is left, the loops exist.
  if (timer != netpoll::kInvalidTimerId) conn->loop()->Cancel(timer);
  absl::Status s = conn->Write(std::move(frame));
  if (absl::IsResourceExhausted(s)) {
    // The client does not read its answers: stop serving it.
    NP_LOG(WARNING) << "closing connection from " << conn->peer_address().ToString() << ": " << s;
    conn->Close(s);
  }
  if (cs != nullptr) {
    conn->loop()->QueueInLoop(
        [self = shared_from_this(), conn, cs] { self->OnCallDone(conn, cs); });
  }
  netpoll::MutexLock lock(&mu);
  if (--gate_users == 0) cv.SignalAll();
}

void Server::Core::ReplyError(const netpoll::ConnectionPtr& conn, const DecodedFrame& frame,
                              MethodEntry* method, int32_t code, absl::string_view text) {
  conn->loop()->AssertInLoopThread();
  CountAnswer(method, code);
  ResponseHeader header;
  header.correlation_id = frame.meta.correlation_id();
  header.error_code = code;
  header.error_text = ErrorText(code, text);
  header.echoed_checksum_value = frame.meta.checksum_value();
  netpoll::LinkBuffer out;
  NP_CHECK(EncodeResponse(header, {}, {}, out).ok());
  Send(conn, nullptr, std::move(out));
}

void Server::Core::OnRequest(const netpoll::ConnectionPtr& conn, netpoll::LinkBuffer& input) {
  conn->loop()->AssertInLoopThread();
  std::shared_ptr<ConnState> cs = ConnStateOf(*conn);
  while (!cs->closed) {
    if (cs->queued.size() >= static_cast<size_t>(options.max_in_flight_per_connection)) {
      // Enough decoded frames wait already: leave the rest as bytes in
      // `input` (capped by max_input_bytes, where reading stops). Decoding
      // everything a pipelining client sent would hold ~20x its bytes and
      // keep the loop busy; ResumeRead() hands the rest back (OnCallDone).
      if (!cs->paused) {
        cs->paused = true;
        conn->PauseRead();
      }
      return;
    }
    DecodeResult r = decoder.Decode(input);
    if (r.need_more()) return;
    if (r.is_error()) {
      protocol_errors.fetch_add(1, std::memory_order_relaxed);
      NP_LOG(WARNING) << "closing connection from " << conn->peer_address().ToString()
                      << ": protocol error: " << r.status();
      conn->Close(r.status());
      return;
    }
    DecodedFrame frame = r.TakeFrame();
    if (!frame.is_request()) {
      protocol_errors.fetch_add(1, std::memory_order_relaxed);
      absl::Status s = absl::InvalidArgumentError("a client sent a response frame");
      NP_LOG(WARNING) << "closing connection from " << conn->peer_address().ToString() << ": " << s;
      conn->Close(s);
      return;
    }
    if (cs->in_flight >= options.max_in_flight_per_connection || !cs->queued.empty()) {
      // Keep the order; stop reading until calls complete (OnCallDone).
      cs->queued.push_back(std::move(frame));
      if (!cs->paused) {
        cs->paused = true;
        conn->PauseRead();
      }
      continue;
    }
    HandleFrame(conn, cs, std::move(frame));
  }
}

void Server::Core::OnCallDone(const netpoll::ConnectionPtr& conn,
                              const std::shared_ptr<ConnState>& cs) {
  conn->loop()->AssertInLoopThread();
  --cs->in_flight;
  if (cs->closed) return;
  while (!cs->queued.empty() && cs->in_flight < options.max_in_flight_per_connection) {
    DecodedFrame frame = std::move(cs->queued.front());
    cs->queued.pop_front();
    HandleFrame(conn, cs, std::move(frame));
  }
  if (cs->queued.empty() && cs->paused) {
    cs->paused = false;
    conn->ResumeRead();
  }
  MaybeCloseAfterPeer(conn, *cs);
}

void Server::Core::OnPeerClosed(const netpoll::ConnectionPtr& conn) {
  conn->loop()->AssertInLoopThread();
  std::shared_ptr<ConnState> cs = ConnStateOf(*conn);
  cs->peer_closed = true;
  MaybeCloseAfterPeer(conn, *cs);
}

void Server::Core::MaybeCloseAfterPeer(const netpoll::ConnectionPtr& conn, const ConnState& cs) {
  if (cs.peer_closed && !cs.closed && !cs.paused && cs.in_flight == 0 && cs.queued.empty()) {
    conn->CloseAfterFlush(absl::UnavailableError("connection closed by peer"));
  }
}

void Server::Core::HandleFrame(const netpoll::ConnectionPtr& conn,
                               const std::shared_ptr<ConnState>& cs, DecodedFrame frame) {
  netpoll::EventLoop* loop = conn->loop();
  received.fetch_add(1, std::memory_order_relaxed);
  const wire::RpcRequestMeta& req = frame.meta.request();
  MethodEntry* method = nullptr;
  if (auto service = services.find(req.service_name()); service != services.end()) {
    if (auto m = service->second.find(req.method_name()); m != service->second.end()) {
      method = m->second.get();
    }
  }
  if (method != nullptr) method->received.fetch_add(1, std::memory_order_relaxed);
  if (stopping.load(std::memory_order_acquire)) {
    ReplyError(conn, frame, method, ELOGOFF, "Server is stopping");
    return;
  }
  if (method == nullptr) {
    // brpc answers an unknown service with ENOMETHOD too, and this text.
    ReplyError(conn, frame, nullptr, ENOMETHOD,
               absl::StrCat("Fail to find method=", req.service_name(), "/", req.method_name()));
    return;
  }
  if (absl::Status s = VerifyChecksum(frame); !s.ok()) {
    ReplyError(conn, frame, method, EREQUEST,
               absl::StrCat("Fail to verify checksum: ", s.message()));
    return;
  }
  // Slots: server-wide, then method. Call::Finish gives them back before it
  // writes the answer (a client may send its next call the moment it reads
  // one); `in_flight` (what Shutdown waits for) drops only after the write.
  if (int64_t before = concurrency.fetch_add(1, std::memory_order_relaxed);
      options.max_concurrency > 0 && before >= options.max_concurrency) {
    concurrency.fetch_sub(1, std::memory_order_relaxed);
    ReplyError(conn, frame, method, ELIMIT,
               absl::StrCat("Reached server's max_concurrency=", options.max_concurrency));
    return;
  }
  if (int64_t before = method->in_flight.fetch_add(1, std::memory_order_relaxed);
      method->max_concurrency > 0 && before >= method->max_concurrency) {
    method->in_flight.fetch_sub(1, std::memory_order_relaxed);
    concurrency.fetch_sub(1, std::memory_order_relaxed);
    ReplyError(conn, frame, method, ELIMIT,
               absl::StrCat("Reached max_concurrency=", method->max_concurrency, " of method ",
                            method->full_name));
    return;
  }
  {
    netpoll::MutexLock lock(&mu);
    ++in_flight;
  }
  ++cs->in_flight;

  auto call = std::make_shared<Call>(shared_from_this(), conn, cs, method, std::move(frame));
  ServerContext& ctx = call->context();
  const wire::RpcMeta& meta = call->meta();  // `frame` was moved into the call
  const wire::RpcRequestMeta& creq = meta.request();
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
  ctx.set_metadata_forwarding(&options.forward_metadata);
  if (meta.has_authentication_data()) ctx.set_authentication_data(meta.authentication_data());
  ctx.set_peer_address(conn->peer_address());
  ctx.set_local_address(conn->local_address());
  ctx.set_connection_closed_flag(cs->closed_flag);

  if (ctx.deadline() != absl::InfiniteFuture()) {
    // A handler that never answers gives its slot back at the deadline.
    std::weak_ptr<Call> weak = call;
    call->set_timer(loop->RunAfter(ctx.deadline() - absl::Now(), [weak] {
      if (std::shared_ptr<Call> c = weak.lock()) {
        c->FinishByServer(ERPCTIMEDOUT, "Deadline exceeded before the handler answered");
      }
    }));
  }
  if (options.run_handlers_inline ||
      method->handler->execution_mode() == MethodHandler::ExecutionMode::kIoLoop) {
    call->Run();
    return;
  }
  if (absl::Status s = pool->TrySubmit([call] { call->Run(); }); !s.ok()) {
    call->FinishByServer(ELIMIT, absl::StrCat("Server is overloaded: ", s.message()));
  }
}

// ------------------------------------------------------------------ Server

Server::Server(ServerOptions options)
    : options_(std::move(options)), core_(std::make_shared<Core>(options_)) {}

Server::~Server() { Shutdown(options_.shutdown_grace); }

absl::Status Server::AddService(std::unique_ptr<Service> service) {
  if (service == nullptr) return absl::InvalidArgumentError("null service");
  absl::Status s = AddService(service.get());
  if (s.ok()) owned_services_.push_back(std::move(service));
  return s;
}

absl::Status Server::AddService(Service* service) {
  if (service == nullptr) return absl::InvalidArgumentError("null service");
  netpoll::MutexLock lock(&mu_);
  if (started_) return absl::FailedPreconditionError("AddService after Start");
  std::vector<std::string> names = service->method_names();
  if (names.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(service->full_name(), " has no methods"));
  }
  auto [it, inserted] = core_->services.try_emplace(service->full_name());
  if (!inserted) {
    return absl::AlreadyExistsError(absl::StrCat(service->full_name(), " is already served"));
  }
  for (const std::string& name : names) {
    auto entry = std::make_unique<MethodEntry>();
    entry->full_name = absl::StrCat(service->full_name(), "/", name);
    entry->handler = service->FindMethod(name);
    auto limit = options_.method_max_concurrency.find(entry->full_name);
    entry->max_concurrency = limit == options_.method_max_concurrency.end() ? 0 : limit->second;
    it->second.emplace(name, std::move(entry));
  }
  return absl::OkStatus();
}

absl::Status Server::Start(absl::string_view address) {
  absl::StatusOr<netpoll::SocketAddress> parsed = netpoll::SocketAddress::Parse(address);
  if (!parsed.ok()) return parsed.status();
  return Start(*parsed);
}

absl::Status Server::Start(const netpoll::SocketAddress& address) {
  netpoll::MutexLock lock(&mu_);
  if (started_) return absl::FailedPreconditionError("server already started");
  if (options_.num_io_loops < 1) return absl::InvalidArgumentError("num_io_loops must be >= 1");
  if (options_.max_in_flight_per_connection < 1) {
    return absl::InvalidArgumentError("max_in_flight_per_connection must be >= 1");
  }
  if (!options_.run_handlers_inline) {
    absl::StatusOr<std::unique_ptr<WorkerPool>> pool =
        WorkerPool::Create({.num_threads = options_.num_worker_threads,
                            .max_queued_tasks = options_.max_queued_calls,
                            .name = "nprpc-worker",
                            .busy_poll = options_.worker_busy_poll});
    if (!pool.ok()) return pool.status();
    pool_ = std::move(*pool);
    core_->pool = pool_.get();
  }
  absl::StatusOr<std::unique_ptr<netpoll::EventLoopGroup>> group = netpoll::EventLoopGroup::Create(
      {.num_loops = options_.num_io_loops, .name = "nprpc-io", .busy_poll = options_.io_busy_poll});
  if (!group.ok()) return group.status();
  group_ = std::move(*group);

  netpoll::ServerOptions transport;
  transport.group = group_.get();
  transport.connection.idle_timeout = options_.idle_timeout;
  transport.connection.read_timeout = options_.read_timeout;
  // A whole frame of the largest allowed body must fit in the input buffer,
  // and no more: with the frames queued behind max_in_flight_per_connection,
  // this bounds what one connection can make the server hold.
  transport.connection.max_input_bytes = options_.max_body_size + 2 * kBaiduStdHeaderSize;
  std::weak_ptr<Core> weak = core_;
  transport.callbacks->on_prepare = [weak](netpoll::Connection&) -> absl::StatusOr<std::any> {
    std::shared_ptr<Core> core = weak.lock();
    if (core == nullptr || core->stopping.load(std::memory_order_acquire)) {
      return absl::UnavailableError("server is stopping");
    }
    return std::any(std::make_shared<ConnState>());
  };
  transport.callbacks->on_request = [weak](const netpoll::ConnectionPtr& conn,
                                           netpoll::LinkBuffer& input) {
    if (std::shared_ptr<Core> core = weak.lock()) core->OnRequest(conn, input);
  };
  // A client that half-closes after its last request still gets every
  // answer: the connection closes when the last one is written.
  transport.callbacks->on_peer_closed = [weak](const netpoll::ConnectionPtr& conn) {
    if (std::shared_ptr<Core> core = weak.lock()) {
      core->OnPeerClosed(conn);
    } else {
      conn->CloseAfterFlush(absl::UnavailableError("connection closed by peer"));
    }
  };
  transport.callbacks->on_disconnect = [](const netpoll::ConnectionPtr& conn,
                                          const absl::Status& reason) {
    std::shared_ptr<ConnState> cs = ConnStateOf(*conn);
    cs->closed = true;
    cs->closed_flag->store(true, std::memory_order_release);
    cs->queued.clear();
  };
  absl::StatusOr<std::unique_ptr<netpoll::Server>> server = netpoll::Server::Create(transport);
  if (!server.ok()) return server.status();
  transport_ = std::move(*server);
  if (absl::Status s = transport_->Start(address); !s.ok()) return s;
  core_->error_prefix = absl::StrCat("[", transport_->listen_address().ToString(), "]");
  started_ = true;
  return absl::OkStatus();
}

void Server::Shutdown(absl::Duration grace) {
  netpoll::MutexLock lock(&mu_);
  if (shut_down_) return;
  shut_down_ = true;
  const absl::Time deadline = absl::Now() + grace;
  core_->stopping.store(true, std::memory_order_release);
  if (transport_ != nullptr) {
    // 1. Calls in flight may finish (new ones get ELOGOFF, new connections
    //    are refused in on_prepare).
    {
      netpoll::MutexLock core_lock(&core_->mu);
      while (core_->in_flight > 0) {
        if (core_->cv.WaitWithDeadline(&core_->mu, deadline)) break;
      }
      if (core_->in_flight > 0) {
        NP_LOG(WARNING) << "shutting down with " << core_->in_flight << " calls still in flight";
      }
    }
    // 2. Flush the answers and close the connections (forced at the deadline).
    transport_->Shutdown(std::max(absl::ZeroDuration(), deadline - absl::Now()));
  }
  // 3. Run what is still queued (each sees its closed connection and is
  //    answered without running), join the workers.
  if (pool_ != nullptr) pool_->Stop();
  // 4. Late completions from now on drop their answer: the loops go away.
  {
    netpoll::MutexLock core_lock(&core_->mu);
    core_->gate_closed = true;
    while (core_->gate_users > 0) core_->cv.Wait(&core_->mu);
  }
  if (group_ != nullptr) group_->Stop();
  transport_.reset();
  core_->pool = nullptr;
  pool_.reset();
  group_.reset();
}

netpoll::SocketAddress Server::listen_address() const {
  return transport_ == nullptr ? netpoll::SocketAddress() : transport_->listen_address();
}

ServerStats Server::Stats() const {
  ServerStats stats;
  stats.total.received = core_->received.load(std::memory_order_relaxed);
  stats.total.succeeded = core_->succeeded.load(std::memory_order_relaxed);
  stats.total.failed = core_->failed.load(std::memory_order_relaxed);
  stats.protocol_errors = core_->protocol_errors.load(std::memory_order_relaxed);
  if (transport_ != nullptr)
    stats.connections = static_cast<int64_t>(transport_->connection_count());
  {
    netpoll::MutexLock lock(&core_->mu);
    stats.total.in_flight = core_->in_flight;
  }
  for (const auto& [service, methods] : core_->services) {
    for (const auto& [name, entry] : methods) {
      MethodStats& m = stats.methods[entry->full_name];
      m.received = entry->received.load(std::memory_order_relaxed);
      m.succeeded = entry->succeeded.load(std::memory_order_relaxed);
      m.failed = entry->failed.load(std::memory_order_relaxed);
      m.in_flight = entry->in_flight.load(std::memory_order_relaxed);
    }
  }
  return stats;
}

}  // namespace nprpc
