#include "rpc/internal/server_core.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "netpoll/logging.h"
#include "rpc/errors.h"
#include "rpc/internal/server_call.h"

namespace nprpc {

ServerCore::ServerCore(const ServerOptions& options)
    : options_(options),
      budget_(std::make_shared<netpoll::MemoryBudget>(options.memory_budget_bytes > 0
                                                          ? options.memory_budget_bytes
                                                          : netpoll::DefaultMemoryBudget())) {}

std::vector<std::string> ServerCore::service_names() const {
  std::vector<std::string> names;
  names.reserve(services_.size());
  for (const auto& entry : services_) names.push_back(entry.first);
  std::sort(names.begin(), names.end());
  return names;
}

absl::Status ServerCore::AddService(Service* service) {
  std::vector<std::string> names = service->method_names();
  if (names.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(service->full_name(), " has no methods"));
  }
  auto [it, inserted] = services_.try_emplace(service->full_name());
  if (!inserted) {
    return absl::AlreadyExistsError(absl::StrCat(service->full_name(), " is already served"));
  }
  for (const std::string& name : names) {
    auto entry = std::make_unique<MethodEntry>();
    entry->full_name = absl::StrCat(service->full_name(), "/", name);
    entry->handler = service->FindMethod(name);
    auto limit = options_.method_max_concurrency.find(entry->full_name);
    entry->max_concurrency = limit == options_.method_max_concurrency.end() ? 0 : limit->second;
    entry->metrics =
        MetricsRegistry::Default().Method(MetricsSide::kServer, service->full_name(), name);
    entry->nested_on_loop =
        options_.handler_threads == ServerOptions::HandlerThreads::kIoLoop ||
        entry->handler->execution_mode() == MethodHandler::ExecutionMode::kIoLoop;
    entry->stream_kind = entry->handler->stream_kind();
    it->second.emplace(name, std::move(entry));
  }
  return absl::OkStatus();
}

void ServerCore::set_listen_address(const netpoll::SocketAddress& address) {
  error_prefix_ = absl::StrCat("[", address.ToString(), "]");
}

absl::StatusOr<MethodEntry*> ServerCore::Lookup(absl::string_view service,
                                                absl::string_view method) {
  received_.fetch_add(1, std::memory_order_relaxed);
  MethodEntry* entry = nullptr;
  if (auto s = services_.find(service); s != services_.end()) {
    if (auto m = s->second.find(method); m != s->second.end()) entry = m->second.get();
  }
  if (entry != nullptr) entry->received.fetch_add(1, std::memory_order_relaxed);
  if (stopping()) {
    CountRefused(entry, ELOGOFF);
    return MakeRpcError(ELOGOFF, "Server is stopping");
  }
  if (entry == nullptr) {
    CountRefused(nullptr, ENOMETHOD);
    // brpc answers an unknown service with ENOMETHOD too, and this text.
    return MakeRpcError(
        ENOMETHOD, absl::StrCat("Fail to find method=", BoundedQuote(service, kMaxQuotedName), "/",
                                BoundedQuote(method, kMaxQuotedName)));
  }
  return entry;
}

absl::Status ServerCore::Acquire(MethodEntry* method) {
  // Slots: server-wide, then method.
  if (int64_t before = concurrency_.fetch_add(1, std::memory_order_relaxed);
      options_.max_concurrency > 0 && before >= options_.max_concurrency) {
    concurrency_.fetch_sub(1, std::memory_order_relaxed);
    CountRefused(method, ELIMIT);
    return MakeRpcError(
        ELIMIT, absl::StrCat("Reached server's max_concurrency=", options_.max_concurrency));
  }
  if (int64_t before = method->in_flight.fetch_add(1, std::memory_order_relaxed);
      method->max_concurrency > 0 && before >= method->max_concurrency) {
    method->in_flight.fetch_sub(1, std::memory_order_relaxed);
    concurrency_.fetch_sub(1, std::memory_order_relaxed);
    CountRefused(method, ELIMIT);
    return MakeRpcError(ELIMIT, absl::StrCat("Reached max_concurrency=", method->max_concurrency,
                                             " of method ", method->full_name));
  }
  if (!calls_.TryEnter()) {
    Release(method);
    CountRefused(method, ELOGOFF);
    return MakeRpcError(ELOGOFF, "Server is stopping");
  }
  return absl::OkStatus();
}

void ServerCore::Start(const std::shared_ptr<ServerCall>& call) {
  const netpoll::ConnectionPtr& conn = call->connection();
  ServerContext& ctx = call->context();
  ctx.set_peer_address(conn->peer_address());
  ctx.set_local_address(conn->local_address());
  ctx.set_metadata_forwarding(&options_.forward_metadata);
  call->BeginObserving();
  if (ctx.deadline() != absl::InfiniteFuture()) {
    // A handler that never answers gives its slot back at the deadline.
    std::weak_ptr<ServerCall> weak = call;
    call->set_timer(conn->loop()->RunAfter(ctx.deadline() - absl::Now(), [weak] {
      if (std::shared_ptr<ServerCall> c = weak.lock()) {
        c->FinishByServer(ERPCTIMEDOUT, "Deadline exceeded before the handler answered");
      }
    }));
  }
  MethodEntry* method = call->method();
  if (method->nested_on_loop) {
    call->Run(ServerCall::Where::kLoop);
    return;
  }
  if (options_.handler_threads == ServerOptions::HandlerThreads::kAdaptive &&
      method->stream_kind == StreamKind::kUnary && method->placement.OnLoop()) {
    // After this turn's reads, so that the calls of one read run back to
    // back and their answers leave in one write; if the handler blocks, the
    // loop moves to another thread and the method to the pool.
    conn->loop()->QueueMayBlock([call] { call->Run(ServerCall::Where::kLoopSection); },
                                method->placement.handoff_flag());
    return;
  }
  // Keyed by connection: the pool serves connections in turn, and a full
  // queue still admits a connection holding less than its share.
  if (absl::Status s =
          pool_->TrySubmit([call] { call->Run(ServerCall::Where::kPool); }, conn->id());
      !s.ok()) {
    call->FinishByServer(ELIMIT, absl::StrCat("Server is overloaded: ", s.message()));
  }
}

void ServerCore::Send(const netpoll::ConnectionPtr& conn, netpoll::LinkBuffer frame,
                      netpoll::TimerId timer, absl::AnyInvocable<void()> on_loop) {
  if (!loops_.TryEnter()) return;  // the server is gone; nobody can read this answer
  // From here until Leave(), the loops exist.
  if (timer != netpoll::kInvalidTimerId) conn->loop()->Cancel(timer);
  // One loop task for the answer's flush and on_loop.
  if (absl::Status s = conn->Write(std::move(frame), std::move(on_loop));
      absl::IsResourceExhausted(s)) {
    // The client does not read its answers: stop serving it.
    NP_LOG(WARNING) << "closing connection from " << conn->peer_address().ToString() << ": " << s;
    conn->Close(s);
  }
  loops_.Leave();
}

void ServerCore::QueueOnLoop(netpoll::EventLoop* loop, absl::AnyInvocable<void()> task) {
  if (!loops_.TryEnter()) return;
  loop->QueueInLoop(std::move(task));
  loops_.Leave();
}

std::string ServerCore::ErrorText(int32_t code, absl::string_view text) const {
  if (!options_.brpc_error_prefix) return std::string(text);
  return absl::StrCat(error_prefix_, "[E", code, "]", text);
}

void ServerCore::CountAnswer(MethodEntry* method, bool ok) {
  (ok ? succeeded_ : failed_).fetch_add(1, std::memory_order_relaxed);
  if (method != nullptr) {
    (ok ? method->succeeded : method->failed).fetch_add(1, std::memory_order_relaxed);
  }
}

void ServerCore::CountRefused(MethodEntry* method, int32_t code) {
  CountAnswer(method, false);
  if (method != nullptr && method->metrics != nullptr) {
    method->metrics->OnStart();
    method->metrics->OnEnd(code, absl::ZeroDuration(), 0, 0);
  }
}

void ServerCore::Release(MethodEntry* method) {
  method->in_flight.fetch_sub(1, std::memory_order_relaxed);
  concurrency_.fetch_sub(1, std::memory_order_relaxed);
}

void ServerCore::BeginStopping() {
  stopping_.store(true, std::memory_order_release);
  calls_.Close();
}

int64_t ServerCore::WaitForCalls(absl::Time deadline) {
  calls_.WaitUntilEmpty(deadline);
  return calls_.size();
}

void ServerCore::CloseLoops() {
  loops_.Close();
  loops_.WaitUntilEmpty();
}

void ServerCore::FillStats(ServerStats& stats) const {
  stats.total.received = received_.load(std::memory_order_relaxed);
  stats.total.succeeded = succeeded_.load(std::memory_order_relaxed);
  stats.total.failed = failed_.load(std::memory_order_relaxed);
  stats.total.in_flight = calls_.size();
  stats.protocol_errors = protocol_errors_.load(std::memory_order_relaxed);
  stats.auth_failures = auth_failures_.load(std::memory_order_relaxed);
  stats.frames_refused = frames_refused_.load(std::memory_order_relaxed);
  stats.decompressions_refused = decompressions_refused_.load(std::memory_order_relaxed);
  stats.output_pauses = output_pauses_.load(std::memory_order_relaxed);
  stats.memory_releases = memory_releases_.load(std::memory_order_relaxed);
  const netpoll::MemoryBudgetStats memory = budget_->Stats();
  stats.memory_budget_bytes = memory.limit;
  stats.memory_held_bytes = memory.used;
  stats.memory_held_peak_bytes = memory.peak;
  stats.budget_read_pauses = memory.read_pauses;
  stats.connections_waiting_for_memory = memory.waiting;
  for (const auto& [service, methods] : services_) {
    for (const auto& [name, entry] : methods) {
      MethodStats& m = stats.methods[entry->full_name];
      m.received = entry->received.load(std::memory_order_relaxed);
      m.succeeded = entry->succeeded.load(std::memory_order_relaxed);
      m.failed = entry->failed.load(std::memory_order_relaxed);
      m.in_flight = entry->in_flight.load(std::memory_order_relaxed);
      m.ran_on_loop = entry->ran_on_loop.load(std::memory_order_relaxed);
      m.ran_on_pool = entry->ran_on_pool.load(std::memory_order_relaxed);
      m.moves_to_pool = entry->placement.moves_to_pool();
      m.on_loop_now = entry->nested_on_loop ||
                      (options_.handler_threads == ServerOptions::HandlerThreads::kAdaptive &&
                       entry->placement.on_loop_now());
    }
  }
}

}  // namespace nprpc
