#include "rpc/server_streaming.h"

#include <memory>
#include <utility>

#include "netpoll/logging.h"
#include "netpoll/mutex.h"
#include "rpc/context_propagation.h"

namespace nprpc {
namespace stream_internal {

bool BlockingRead(ServerStreamCore& core, google::protobuf::Message* message) {
  return AwaitCompletion<bool>([&](StreamCallback done) { core.Read(message, std::move(done)); });
}

bool BlockingWrite(ServerStreamCore& core, const google::protobuf::Message& message) {
  return AwaitCompletion<bool>([&](StreamCallback done) { core.Write(message, std::move(done)); });
}

// ------------------------------------------------------------------ ServerReactorBase

ServerReactorBase::ServerReactorBase() = default;
ServerReactorBase::~ServerReactorBase() = default;

void ServerReactorBase::StartReadMessage(google::protobuf::Message* message) {
  ServerStreamCore* core;
  {
    netpoll::MutexLock lock(&mu_);
    NP_CHECK(!finish_called_) << "StartRead() after Finish()";
    NP_CHECK(!read_outstanding_) << "StartRead() while a read is outstanding";
    read_outstanding_ = true;
    if (core_ == nullptr) {
      queued_read_ = message;
      return;
    }
    // The outstanding read keeps core_ (released only by RunDone) alive.
    core = core_.get();
  }
  StartRead(core, message);
}

void ServerReactorBase::StartWriteMessage(const google::protobuf::Message* message) {
  ServerStreamCore* core;
  {
    netpoll::MutexLock lock(&mu_);
    NP_CHECK(!finish_called_) << "StartWrite() after Finish()";
    NP_CHECK(!write_outstanding_) << "StartWrite() while a write is outstanding";
    write_outstanding_ = true;
    if (core_ == nullptr) {
      queued_write_ = message;
      return;
    }
    core = core_.get();
  }
  StartWrite(core, message);
}

void ServerReactorBase::FinishCall(absl::Status status) {
  ServerStreamCore* core;
  {
    netpoll::MutexLock lock(&mu_);
    NP_CHECK(!finish_called_) << "Finish() called twice";
    finish_called_ = true;
    if (core_ == nullptr) {
      queued_finish_ = std::move(status);
      return;
    }
    core = core_.get();
    ++active_;
  }
  SendFinish(core, std::move(status));
  Leave();
}

void ServerReactorBase::Bind(std::shared_ptr<ServerStreamCore> core,
                             std::unique_ptr<ServerReactorBase> self) {
  google::protobuf::Message* read;
  const google::protobuf::Message* write;
  std::optional<absl::Status> finish;
  ServerStreamCore* const stream = core.get();  // core_ keeps it alive
  {
    netpoll::MutexLock lock(&mu_);
    core_ = std::move(core);
    self_ = std::move(self);
    read = std::exchange(queued_read_, nullptr);
    write = std::exchange(queued_write_, nullptr);
    finish = std::exchange(queued_finish_, std::nullopt);
    ++active_;
  }
  if (read != nullptr) StartRead(stream, read);
  if (write != nullptr) StartWrite(stream, write);
  if (finish.has_value()) SendFinish(stream, std::move(*finish));
  Leave();
}

void ServerReactorBase::StartRead(ServerStreamCore* core, google::protobuf::Message* message) {
  core->Read(message, [this](bool ok) { OpDone(Op::kRead, ok); });
}

void ServerReactorBase::StartWrite(ServerStreamCore* core,
                                   const google::protobuf::Message* message) {
  core->Write(*message, [this](bool ok) { OpDone(Op::kWrite, ok); });
}

void ServerReactorBase::SendFinish(ServerStreamCore* core, absl::Status status) {
  if (status.ok() && final_response_ != nullptr) {
    {
      netpoll::MutexLock lock(&mu_);
      // A read reactor has no StartWrite(): the write side is free.
      write_outstanding_ = true;
    }
    core->Write(*final_response_, [this](bool) { FinalWriteDone(absl::OkStatus()); });
    return;
  }
  core->Finish(std::move(status));
  netpoll::MutexLock lock(&mu_);
  finish_sent_ = true;
}

void ServerReactorBase::FinalWriteDone(absl::Status status) {
  ServerStreamCore* core;
  {
    netpoll::MutexLock lock(&mu_);
    write_outstanding_ = false;
    ++active_;
    core = core_.get();
  }
  // A failed write means the call ended: the status is dropped then.
  core->Finish(std::move(status));
  {
    netpoll::MutexLock lock(&mu_);
    finish_sent_ = true;
  }
  Leave();
}

void ServerReactorBase::OpDone(Op op, bool ok) {
  bool report_cancel = false;
  ServerContext* context;
  {
    netpoll::MutexLock lock(&mu_);
    if (op == Op::kRead) {
      read_outstanding_ = false;
    } else {
      write_outstanding_ = false;
    }
    ++active_;
    context = &core_->context();
    if (!ok && !cancel_reported_ && context->IsCancelled()) {
      cancel_reported_ = true;
      report_cancel = true;
    }
  }
  {
    ScopedServerContext scope(context);
    if (report_cancel) OnCancel();
    if (op == Op::kRead) {
      OnReadDone(ok);
    } else {
      OnWriteDone(ok);
    }
  }
  Leave();
}

void ServerReactorBase::Leave() {
  {
    netpoll::MutexLock lock(&mu_);
    --active_;
    if (done_ || !finish_sent_ || read_outstanding_ || write_outstanding_ || active_ > 0) return;
    done_ = true;
  }
  RunDone();
}

void ServerReactorBase::RunDone() {
  std::shared_ptr<ServerStreamCore> core;
  std::unique_ptr<ServerReactorBase> self;
  {
    netpoll::MutexLock lock(&mu_);
    core = std::move(core_);
    self = std::move(self_);
  }
  {
    ScopedServerContext scope(&core->context());
    OnDone();
  }
  self.reset();  // deletes this; the core (and its context) outlives it
}

void ServerReactorDriver::Start(std::shared_ptr<ServerStreamCore> core,
                                std::unique_ptr<ServerReactorBase> reactor,
                                std::unique_ptr<google::protobuf::Message> owned_message,
                                const google::protobuf::Message* final_response) {
  if (reactor == nullptr) {
    core->Finish(absl::InternalError("the streaming handler returned no reactor"));
    return;
  }
  ServerReactorBase* raw = reactor.get();
  raw->set_owned_message(std::move(owned_message));
  raw->set_final_response(final_response);
  raw->Bind(std::move(core), std::move(reactor));
}

}  // namespace stream_internal
}  // namespace nprpc
