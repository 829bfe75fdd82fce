#include "rpc/client_streaming.h"

#include <memory>
#include <utility>

#include "netpoll/logging.h"
#include "netpoll/mutex.h"

namespace nprpc {
namespace stream_internal {

void SendRequestAndHalfClose(const std::shared_ptr<ClientStreamCore>& core,
                             const google::protobuf::Message& request) {
  // Weak: a caller that drops the stream cancels the call.
  std::weak_ptr<ClientStreamCore> weak = core;
  core->Write(request, [weak](bool ok) {
    if (!ok) return;
    if (std::shared_ptr<ClientStreamCore> stream = weak.lock()) stream->WritesDone([](bool) {});
  });
}

// ------------------------------------------------------------------ BlockingClientStream

BlockingClientStream::BlockingClientStream(std::shared_ptr<ClientStreamCore> core)
    : core_(std::move(core)) {
  NP_CHECK(core_ != nullptr) << "a client stream needs a ClientStreamCore";
}

bool BlockingClientStream::MayBlock() {
  if (!core_->OnLoopThread()) return true;
  netpoll::MutexLock lock(&mu_);
  if (refused_.ok()) {
    refused_ = absl::FailedPreconditionError(
        "blocking stream operation on one of the channel's loop threads (e.g. inside a callback "
        "or a coroutine resumed by a call) would deadlock; use the callback or coroutine form "
        "there");
  }
  return false;
}

bool BlockingClientStream::Read(google::protobuf::Message* message) {
  if (!MayBlock()) return false;
  return stream_internal::AwaitCompletion<bool>(
      [&](StreamCallback done) { core_->Read(message, std::move(done)); });
}

bool BlockingClientStream::Write(const google::protobuf::Message& message) {
  if (!MayBlock()) return false;
  return stream_internal::AwaitCompletion<bool>(
      [&](StreamCallback done) { core_->Write(message, std::move(done)); });
}

bool BlockingClientStream::WritesDone() {
  {
    netpoll::MutexLock lock(&mu_);
    if (writes_done_.has_value()) return *writes_done_;
  }
  if (!MayBlock()) return false;
  const bool result = stream_internal::AwaitCompletion<bool>(
      [&](StreamCallback done) { core_->WritesDone(std::move(done)); });
  netpoll::MutexLock lock(&mu_);
  writes_done_ = result;
  return result;
}

absl::Status BlockingClientStream::Finish(google::protobuf::Message* response) {
  {
    netpoll::MutexLock lock(&mu_);
    if (status_.has_value()) return *status_;
  }
  MayBlock();  // notes a refusal here too
  absl::Status refused;
  {
    netpoll::MutexLock lock(&mu_);
    refused = refused_;
  }
  if (!refused.ok()) {
    // An operation refused to block: the call cannot go on as the caller
    // meant; end it.
    core_->Cancel();
    netpoll::MutexLock lock(&mu_);
    status_ = refused;
    return refused;
  }
  bool got_response = true;
  if (response != nullptr) {
    WritesDone();
    got_response = Read(response);
  }
  absl::Status status = stream_internal::AwaitCompletion<absl::Status>(
      [&](absl::AnyInvocable<void(absl::Status)> done) { core_->Finish(std::move(done)); });
  if (status.ok() && !got_response) {
    status = absl::InternalError("the server ended a client-streaming call without a response");
  }
  netpoll::MutexLock lock(&mu_);
  status_ = status;
  return status;
}

// ------------------------------------------------------------------ ClientReactorBase

ClientReactorBase::ClientReactorBase() = default;
ClientReactorBase::~ClientReactorBase() = default;

void ClientReactorBase::StartReadMessage(google::protobuf::Message* message) {
  ClientStreamCore* core;
  {
    netpoll::MutexLock lock(&mu_);
    NP_CHECK(!done_) << "StartRead() after OnDone()";
    NP_CHECK(!read_outstanding_) << "StartRead() while a read is outstanding";
    read_outstanding_ = true;
    if (core_ == nullptr) {
      queued_read_ = message;
      return;
    }
    // The outstanding read keeps core_ (released once OnDone runs) alive.
    core = core_.get();
  }
  core->Read(message, [this](bool ok) { OpDone(Op::kRead, ok); });
}

void ClientReactorBase::StartWriteMessage(const google::protobuf::Message* message) {
  ClientStreamCore* core;
  {
    netpoll::MutexLock lock(&mu_);
    NP_CHECK(!done_) << "StartWrite() after OnDone()";
    NP_CHECK(!write_outstanding_) << "StartWrite() while a write or WritesDone is outstanding";
    write_outstanding_ = true;
    if (core_ == nullptr) {
      queued_write_op_ = Op::kWrite;
      queued_write_ = message;
      return;
    }
    core = core_.get();
  }
  StartOp(core, Op::kWrite, message);
}

void ClientReactorBase::StartWritesDoneCall() {
  ClientStreamCore* core;
  {
    netpoll::MutexLock lock(&mu_);
    NP_CHECK(!done_) << "StartWritesDone() after OnDone()";
    NP_CHECK(!write_outstanding_) << "StartWritesDone() while a write or WritesDone is outstanding";
    write_outstanding_ = true;
    if (core_ == nullptr) {
      queued_write_op_ = Op::kWritesDone;
      return;
    }
    core = core_.get();
  }
  StartOp(core, Op::kWritesDone, nullptr);
}

void ClientReactorBase::StartOp(ClientStreamCore* core, Op op,
                                const google::protobuf::Message* message) {
  if (op == Op::kWrite) {
    core->Write(*message, [this](bool ok) { OpDone(Op::kWrite, ok); });
  } else {
    core->WritesDone([this](bool ok) { OpDone(Op::kWritesDone, ok); });
  }
}

void ClientReactorBase::Cancel() {
  std::shared_ptr<ClientStreamCore> core;
  {
    netpoll::MutexLock lock(&mu_);
    cancelled_ = true;
    end_seen_ = true;
    core = core_;
  }
  if (core == nullptr) return;  // not started yet (Bind cancels), or done
  core->Cancel();
  MaybeFinish();
}

void ClientReactorBase::Bind(const std::shared_ptr<ClientStreamCore>& core,
                             const google::protobuf::Message* request,
                             google::protobuf::Message* response) {
  google::protobuf::Message* read;
  std::optional<Op> write_op;
  const google::protobuf::Message* write;
  bool cancelled;
  {
    netpoll::MutexLock lock(&mu_);
    NP_CHECK(core_ == nullptr && !done_) << "a client reactor serves one call";
    core_ = core;
    read = std::exchange(queued_read_, nullptr);
    write_op = std::exchange(queued_write_op_, std::nullopt);
    write = std::exchange(queued_write_, nullptr);
    cancelled = cancelled_;
    expects_response_ = response != nullptr;
    // The typed reactors leave these sides to the framework.
    if (request != nullptr) write_outstanding_ = true;
    if (response != nullptr) read_outstanding_ = true;
    ++active_;
  }
  if (cancelled) core->Cancel();
  if (request != nullptr) {
    core->Write(*request, [this](bool ok) { RequestWritten(ok); });
  }
  if (response != nullptr) {
    core->Read(response, [this](bool ok) { InternalOpDone(Op::kRead, ok); });
  }
  if (read != nullptr) core->Read(read, [this](bool ok) { OpDone(Op::kRead, ok); });
  if (write_op.has_value()) StartOp(core.get(), *write_op, write);
  MaybeFinish();
  Leave();
}

void ClientReactorBase::RequestWritten(bool ok) {
  if (!ok) {
    InternalOpDone(Op::kWrite, false);
    return;
  }
  ClientStreamCore* core;
  {
    netpoll::MutexLock lock(&mu_);
    core = core_.get();  // write_outstanding_ still keeps it
  }
  core->WritesDone([this](bool done) { InternalOpDone(Op::kWritesDone, done); });
}

void ClientReactorBase::InternalOpDone(Op op, bool ok) {
  {
    netpoll::MutexLock lock(&mu_);
    if (op == Op::kRead) {
      read_outstanding_ = false;
      got_response_ = ok;
      end_seen_ = true;  // a client-streaming call has one response
    } else {
      write_outstanding_ = false;
      if (!ok) end_seen_ = true;
    }
    ++active_;
  }
  MaybeFinish();
  Leave();
}

void ClientReactorBase::OpDone(Op op, bool ok) {
  {
    netpoll::MutexLock lock(&mu_);
    if (op == Op::kRead) {
      read_outstanding_ = false;
    } else {
      write_outstanding_ = false;
    }
    if (!ok) end_seen_ = true;
    ++active_;
  }
  MaybeFinish();
  switch (op) {
    case Op::kRead:
      OnReadDone(ok);
      break;
    case Op::kWrite:
      OnWriteDone(ok);
      break;
    case Op::kWritesDone:
      OnWritesDoneDone(ok);
      break;
  }
  Leave();
}

void ClientReactorBase::MaybeFinish() {
  ClientStreamCore* core;
  {
    netpoll::MutexLock lock(&mu_);
    if (!end_seen_ || finish_started_ || core_ == nullptr) return;
    finish_started_ = true;
    // core_ lives until status_ is set, i.e. until Finish's callback ran.
    core = core_.get();
  }
  core->Finish([this](absl::Status status) { FinishDone(std::move(status)); });
}

void ClientReactorBase::FinishDone(absl::Status status) {
  {
    netpoll::MutexLock lock(&mu_);
    if (status.ok() && expects_response_ && !got_response_) {
      status = absl::InternalError("the server ended a client-streaming call without a response");
    }
    status_ = std::move(status);
    ++active_;
  }
  Leave();
}

void ClientReactorBase::Leave() {
  std::shared_ptr<ClientStreamCore> core;
  absl::Status status;
  {
    netpoll::MutexLock lock(&mu_);
    --active_;
    if (done_ || !status_.has_value() || read_outstanding_ || write_outstanding_ || active_ > 0) {
      return;
    }
    done_ = true;
    core = std::move(core_);
    status = std::move(*status_);  // shared with no other thread
  }
  OnDone(status);
  // The reactor may be gone now; `core` is released after it.
}

}  // namespace stream_internal
}  // namespace nprpc
