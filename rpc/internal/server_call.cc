#include "rpc/internal/server_call.h"

#include <time.h>

#include <cstdint>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "netpoll/logging.h"
#include "rpc/errors.h"
#include "rpc/stream_core.h"

namespace nprpc {
namespace {

// Every this many handler runs of a method, one is timed (kAdaptive): the
// last of each group, so a method's first call (one-time initialization,
// cold caches) is never timed.
constexpr int64_t kRunTimeSampling = 8;

// CPU time of the calling thread.
int64_t ThreadCpuNanos() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

}  // namespace

ServerCall::ServerCall(std::shared_ptr<ServerCore> core, netpoll::ConnectionPtr conn,
                       std::shared_ptr<ServerSession> session, MethodEntry* method)
    : core_(std::move(core)),
      conn_(std::move(conn)),
      session_(std::move(session)),
      method_(method),
      owner_(ServerConnection::Find(*conn_)) {}

void ServerCall::Run(Where where) {
  if (finished_.load(std::memory_order_acquire)) return;  // answered while queued
  if (ctx_.IsCancelled()) {
    if (ctx_.deadline_exceeded()) {
      FinishByServer(ERPCTIMEDOUT, "Deadline passed before the call started");
    } else {
      FinishByServer(ELOGOFF, "Call cancelled before it started (connection closed)");
    }
    return;
  }
  std::shared_ptr<ServerStreamCore> stream;
  if (method_->stream_kind != StreamKind::kUnary) {
    stream = StreamCore();
    if (stream == nullptr) {
      FinishByServer(ENOMETHOD, absl::StrCat(method_->full_name, " is a ",
                                             StreamKindName(method_->stream_kind),
                                             " method: call it over gRPC"));
      return;
    }
  }
  if (!core_->options().interceptors.empty()) {
    if (!RunBeforeCalls()) return;
    // The chain may have taken the rest of the call's time.
    if (ctx_.IsCancelled()) {
      FinishByServer(ctx_.deadline_exceeded() ? ERPCTIMEDOUT : ELOGOFF,
                     "Call cancelled while its interceptors ran");
      return;
    }
  }
  if (stream != nullptr) {
    (where == Where::kPool ? method_->ran_on_pool : method_->ran_on_loop)
        .fetch_add(1, std::memory_order_relaxed);
    method_->handler->CallStream(std::move(stream));
    return;
  }
  request_ = method_->handler->NewRequest();
  if (absl::Status s = ParseRequest(*request_); !s.ok()) {
    // A brpc number the protocol chose (ELIMIT for the memory budget), else
    // EREQUEST: the request cannot be read.
    const int32_t code = s.GetPayload(kErrorCodePayloadUrl).has_value() ? ErrorCodeOf(s) : EREQUEST;
    FinishByServer(code, s.message());
    return;
  }
  response_ = method_->handler->NewResponse();
  const int64_t nth = (where == Where::kPool ? method_->ran_on_pool : method_->ran_on_loop)
                          .fetch_add(1, std::memory_order_relaxed);
  // kAdaptive samples every kRunTimeSampling-th handler's run time.
  if (core_->options().handler_threads != ServerOptions::HandlerThreads::kAdaptive ||
      where == Where::kLoop || nth % kRunTimeSampling != kRunTimeSampling - 1) {
    method_->handler->Call(ctx_, *request_, response_.get(), Responder(shared_from_this()));
    return;
  }
  // On the loop, CPU time: a blocked handler is the watchdog's (it hands the
  // loop off), and time the thread was preempted is not the handler's. On
  // the pool, wall time: a handler that blocks must show it to stay there.
  const bool on_loop = where == Where::kLoopSection;
  const int64_t start = on_loop ? ThreadCpuNanos() : absl::GetCurrentTimeNanos();
  method_->handler->Call(ctx_, *request_, response_.get(), Responder(shared_from_this()));
  const int64_t end = on_loop ? ThreadCpuNanos() : absl::GetCurrentTimeNanos();
  method_->placement.RecordRun(end - start, on_loop, on_loop ? absl::GetCurrentTimeNanos() : end);
}

void ServerCall::BeginObserving() {
  start_nanos_ = absl::GetCurrentTimeNanos();
  if (owner_ != nullptr) owner_->AddCallInFlight(1);
  if (method_->metrics != nullptr) method_->metrics->OnStart();
  TraceContext trace = ctx_.trace();
  if (!trace.sampled.has_value()) {
    // Our baidu_std clients carry the decision in a traceparent user field
    // beside brpc's ids; HTTP and gRPC sessions parse the header themselves.
    if (const std::string* value = ctx_.FindRequestUserField("traceparent")) {
      if (std::optional<TraceContext> parent = ParseTraceparent(*value);
          parent.has_value() && (!trace.trace_id || trace.trace_id == parent->trace_id)) {
        trace.trace_id = parent->trace_id;
        trace.trace_id_high = parent->trace_id_high;
        if (!trace.span_id) trace.span_id = parent->span_id;
        trace.sampled = parent->sampled;
      }
    }
  }
  // The edge starts the trace and its sampling decision; otherwise brpc's
  // convention decides: span ids travel only with traced calls.
  if (!StartTraceIfAbsent(trace) && !trace.sampled.has_value()) {
    trace.sampled = trace.span_id.has_value();
  }
  trace.parent_span_id = trace.span_id;
  trace.span_id = NewTraceId();
  if (*trace.sampled) {  // only then are the span's strings made
    ctx_.set_span(StartSpan(Span::Kind::kServer, trace, method_->full_name, ctx_.protocol(),
                            ctx_.peer_address().ToString(), absl::FromUnixNanos(start_nanos_)));
  }
  ctx_.set_trace(std::move(trace));
}

bool ServerCall::RunBeforeCalls() {
  const ServerInterceptors& chain = core_->options().interceptors;
  absl::Status verdict;
  size_t ran = 0;
  while (ran < chain.size()) {
    verdict = chain[ran++]->BeforeCall(ctx_);
    if (!verdict.ok()) break;
  }
  interceptors_ran_ = ran;
  if (observe_state_.fetch_or(kChainDone, std::memory_order_acq_rel) & kFinished) {
    RunAfterCalls();  // the deadline answered while the chain ran
    return false;
  }
  if (!verdict.ok()) {
    Finish(verdict, /*by_handler=*/false);
    return false;
  }
  return true;
}

void ServerCall::RunAfterCalls() {
  const ServerInterceptors& chain = core_->options().interceptors;
  for (size_t i = interceptors_ran_; i > 0; --i) chain[i - 1]->AfterCall(ctx_, outcome_);
}

void ServerCall::Observe(const absl::Status& status, int32_t code, size_t response_bytes) {
  const absl::Duration latency = absl::Nanoseconds(absl::GetCurrentTimeNanos() - start_nanos_);
  if (method_->metrics != nullptr) {
    method_->metrics->OnEnd(code, latency, request_bytes_, response_bytes);
  }
  if (const std::shared_ptr<ActiveSpan>& span = ctx_.span(); span != nullptr) {
    span->End(code, status.message(), request_bytes_, response_bytes);
  }
  if (core_->options().interceptors.empty()) return;
  outcome_.status = status;
  outcome_.latency = latency;
  outcome_.request_bytes = request_bytes_;
  outcome_.response_bytes = response_bytes;
  if (observe_state_.fetch_or(kFinished, std::memory_order_acq_rel) & kChainDone) {
    RunAfterCalls();
  }
}

bool ServerCall::TryChargeBudget(size_t n) {
  if (!core_->budget().TryCharge(n)) return false;
  budget_charge_.fetch_add(n, std::memory_order_acq_rel);
  return true;
}

void ServerCall::ReleaseBudget(size_t n) {
  budget_charge_.fetch_sub(n, std::memory_order_acq_rel);
  core_->budget().Add(-static_cast<int64_t>(n));
}

void ServerCall::Deliver(netpoll::LinkBuffer answer, netpoll::TimerId timer) {
  core_->Send(
      conn_, std::move(answer), timer,
      [session = session_, conn = conn_, held = held_bytes_] { session->OnCallDone(conn, held); });
}

void ServerCall::FinishByServer(int32_t code, absl::string_view text) {
  Finish(MakeRpcError(code, text), /*by_handler=*/false);
}

void ServerCall::Finish(const absl::Status& status, bool by_handler) {
  if (finished_.exchange(true, std::memory_order_acq_rel)) {
    if (by_handler) {
      NP_LOG(DEBUG) << "dropping the late answer of " << method_->full_name
                    << " (already answered by the server): " << status;
    }
    return;
  }
  if (!by_handler) {
    ctx_.Cancel();
  } else {
    ctx_.DropCancelCallbacks();
  }
  netpoll::TimerId timer = timer_.exchange(netpoll::kInvalidTimerId, std::memory_order_acq_rel);
  netpoll::LinkBuffer out;
  const bool ok = EncodeAnswer(status, status.ok() ? response_.get() : nullptr, by_handler, out);
  core_->CountAnswer(method_, ok);
  const size_t response_bytes = out.Len();
  // The slots go back before the write (a client may send its next call the
  // moment it reads this answer); the call gate only after it.
  core_->Release(method_);
  if (size_t charged = budget_charge_.exchange(0, std::memory_order_acq_rel); charged > 0) {
    core_->budget().Add(-static_cast<int64_t>(charged));
  }
  Deliver(std::move(out), timer);
  // After the answer left, before the call gate opens (Shutdown waits for
  // the interceptors too).
  Observe(status, ok ? 0 : (status.ok() ? EINTERNAL : ErrorCodeOf(status)), response_bytes);
  if (owner_ != nullptr) owner_->AddCallInFlight(-1);
  core_->LeaveCall();
}

}  // namespace nprpc
