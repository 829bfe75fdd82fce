// The typed client ends of streaming methods, in the three styles of the
// generated stubs. Each wraps the untyped ClientStreamCore of
// rpc/stream_core.h that Channel::NewStream() starts.
//
//   rpc Talk(stream Msg) returns (stream Msg);   // bidi
//
//   sync, blocks the calling thread (never an I/O loop thread):
//     std::unique_ptr<ClientReaderWriter<Msg, Msg>> s = stub->Talk();
//     s->Write(hello);
//     s->WritesDone();
//     Msg m;
//     while (s->Read(&m)) ...;
//     absl::Status status = s->Finish();
//   callback, reactions on the channel's I/O loop thread, never block:
//     class Talker : public ClientBidiReactor<Msg, Msg> {
//       void OnWriteDone(bool ok) override { StartWritesDone(); }
//       void OnReadDone(bool ok) override { if (ok) StartRead(&in_); }
//       void OnDone(const absl::Status& status) override { ...; delete this or notify; }
//     };
//     stub->Talk(talker, CallOptions());
//     talker->StartWrite(&hello);
//     talker->StartRead(&talker->in_);
//   coroutine, resumes on the channel's I/O loop thread, never block:
//     ClientStream<Msg, Msg> s = stub->TalkAsync();
//     co_await s.Write(hello);
//     co_await s.WritesDone();
//     while (std::optional<Msg> m = co_await s.Read()) ...;
//     absl::Status status = co_await s.Finish();
//
// Per kind (Req: the request type, Resp: the response):
//
//              client streaming            server streaming          bidi
//   sync       unique_ptr<ClientWriter<    unique_ptr<ClientReader<  unique_ptr<ClientReader-
//              Req>> M(Resp* response)     Resp>> M(const Req&)      Writer<Req, Resp>> M()
//   callback   M(Resp* response,           M(const Req&, ClientRead- M(ClientBidiReactor<
//              ClientWriteReactor<Req>*)   Reactor<Resp>*)           Req, Resp>*)
//   coroutine  ClientStreamWriter<Req,     ClientStreamReader<Resp>  ClientStream<Req, Resp>
//              Resp> MAsync()              MAsync(const Req&)        MAsync()
//
// A server-streaming call sends its request and half-closes by itself. A
// client-streaming call's response lands in `*response` (sync, callback; it
// must outlive Finish() / OnDone) or comes out of `co_await w.Finish()`
// (coroutine); a server that ends such a call with OK but no response makes
// it INTERNAL.
//
// Threads:
// - sync: Read(), Write(), WritesDone() and Finish() block the calling
//   thread. On one of the channel's I/O loop threads (a callback, a coroutine
//   resumed by a call) they would deadlock: they fail at once there and
//   Finish() reports FAILED_PRECONDITION.
// - callback: reactions (OnReadDone, OnWriteDone, OnWritesDoneDone, OnDone)
//   run on the channel's I/O loop thread and must not block; Start* and
//   Cancel() may be called from any thread.
// - coroutine: after each co_await the coroutine continues on the I/O loop
//   thread that completed the operation: it must not block.
//
// Writes are flow-controlled: a Write completes (returns, calls OnWriteDone,
// resumes) once the transport took the message within the stream's
// flow-control window and bounded send buffer, so a writer that waits for
// each write never outruns a slow server. A write or read that fails (false)
// means the call ended; Finish() (OnDone) tells why.
//
// Ending: the server's status comes from Finish() (sync, coroutine) or
// OnDone() (callback). Reading until a read fails is the usual way to reach
// it; Finish() may also be called earlier (unread responses are dropped).
// Destroying an unfinished stream, or Cancel(), cancels the call (gRPC:
// RST_STREAM CANCEL) and the status is CANCELLED.
#ifndef RPC_CLIENT_STREAMING_H_
#define RPC_CLIENT_STREAMING_H_

#include <memory>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "google/protobuf/message.h"
#include "netpoll/mutex.h"
#include "rpc/stream_awaiters.h"
#include "rpc/stream_core.h"
#include "rpc/task.h"

namespace nprpc {
namespace stream_internal {

// Writes `request` to `core` and half-closes after it, without waiting (a
// server-streaming call's request). Failures show in the call's status.
void SendRequestAndHalfClose(const std::shared_ptr<ClientStreamCore>& core,
                             const google::protobuf::Message& request);

// The blocking operations of the sync client streams. Read() and a
// write-side operation (Write, WritesDone) may run on two threads at once;
// Finish() after both.
class BlockingClientStream {
 public:
  explicit BlockingClientStream(std::shared_ptr<ClientStreamCore> core);
  BlockingClientStream(const BlockingClientStream&) = delete;
  BlockingClientStream& operator=(const BlockingClientStream&) = delete;

  bool Read(google::protobuf::Message* message);
  bool Write(const google::protobuf::Message& message);
  // Once; later calls return the first one's result without sending.
  bool WritesDone();
  // The call's status, once (later calls return it again). A client-streaming
  // call (`response` not null) half-closes first when it has not, and reads
  // the one response into `*response`.
  absl::Status Finish(google::protobuf::Message* response = nullptr);
  void Cancel() { core_->Cancel(); }
  ClientStreamCore& core() const { return *core_; }

 private:
  // False, after noting why for Finish(), on a thread where blocking would
  // deadlock.
  bool MayBlock();

  const std::shared_ptr<ClientStreamCore> core_;
  netpoll::Mutex mu_;
  absl::Status refused_ ABSL_GUARDED_BY(mu_);
  std::optional<bool> writes_done_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::Status> status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace stream_internal

// ------------------------------------------------------------------ Sync

// The responses of a server-streaming call (its request is already sent).
// Read() blocks until the next response (true) or the end (false). One
// thread at a time.
template <typename Response>
class ClientReader {
 public:
  // Sends `request` and half-closes.
  ClientReader(std::shared_ptr<ClientStreamCore> core, const google::protobuf::Message& request)
      : stream_(core) {
    stream_internal::SendRequestAndHalfClose(core, request);
  }

  bool Read(Response* response) { return stream_.Read(response); }
  absl::Status Finish() { return stream_.Finish(); }
  void Cancel() { stream_.Cancel(); }
  ClientStreamCore::Metadata initial_metadata() const { return stream_.core().initial_metadata(); }
  ClientStreamCore::Metadata trailing_metadata() const {
    return stream_.core().trailing_metadata();
  }

 private:
  stream_internal::BlockingClientStream stream_;
};

// The requests of a client-streaming call. Write() blocks until the transport
// took the request (true) or the call ended (false); Finish() half-closes
// (unless WritesDone() did), waits for the response, which lands in the
// `response` given to the stub, and returns the status. One thread at a time.
template <typename Request>
class ClientWriter {
 public:
  // `response` is not owned and must outlive Finish().
  ClientWriter(std::shared_ptr<ClientStreamCore> core, google::protobuf::Message* response)
      : stream_(std::move(core)), response_(response) {}

  bool Write(const Request& request) { return stream_.Write(request); }
  bool WritesDone() { return stream_.WritesDone(); }
  absl::Status Finish() { return stream_.Finish(response_); }
  void Cancel() { stream_.Cancel(); }
  ClientStreamCore::Metadata initial_metadata() const { return stream_.core().initial_metadata(); }
  ClientStreamCore::Metadata trailing_metadata() const {
    return stream_.core().trailing_metadata();
  }

 private:
  stream_internal::BlockingClientStream stream_;
  google::protobuf::Message* const response_;
};

// Both, for a bidirectional call. One thread may Read() while another
// Write()s (then WritesDone()); Finish() once both are done.
template <typename Request, typename Response>
class ClientReaderWriter {
 public:
  explicit ClientReaderWriter(std::shared_ptr<ClientStreamCore> core) : stream_(std::move(core)) {}

  bool Read(Response* response) { return stream_.Read(response); }
  bool Write(const Request& request) { return stream_.Write(request); }
  bool WritesDone() { return stream_.WritesDone(); }
  absl::Status Finish() { return stream_.Finish(); }
  void Cancel() { stream_.Cancel(); }
  ClientStreamCore::Metadata initial_metadata() const { return stream_.core().initial_metadata(); }
  ClientStreamCore::Metadata trailing_metadata() const {
    return stream_.core().trailing_metadata();
  }

 private:
  stream_internal::BlockingClientStream stream_;
};

// ------------------------------------------------------------------ Callback

namespace stream_internal {

class ClientReactorDriver;

// What the three client reactors share. Users derive from the typed reactors
// below and own them: the framework never deletes a reactor, and touches it
// no more once OnDone() was called, so OnDone() may delete it.
//
// Operations: at most one read and one write-side operation (StartWrite or
// StartWritesDone) outstanding (checked: a second aborts). Any thread, also
// before the stub call (they start with it).
//
// Reactions run on the channel's I/O loop thread, one at a time per reactor,
// never inside the Start* call that caused them, and must not block:
//   OnReadDone(ok) / OnWriteDone(ok) / OnWritesDoneDone(ok)  once per
//     StartRead / StartWrite / StartWritesDone; false: the stream ended.
//   OnDone(status)  last and once: the call's status, after every
//     operation's reaction returned. It comes once the call ended and a
//     reaction told so: a read that ended (false), a write that failed, the
//     response of a client-streaming call, or Cancel(). Keep reading until a
//     read fails (or Cancel()) to get there.
class ClientReactorBase {
 public:
  virtual ~ClientReactorBase();
  ClientReactorBase(const ClientReactorBase&) = delete;
  ClientReactorBase& operator=(const ClientReactorBase&) = delete;

  virtual void OnReadDone(bool /*ok*/) {}
  virtual void OnWriteDone(bool /*ok*/) {}
  virtual void OnWritesDoneDone(bool /*ok*/) {}
  virtual void OnDone(const absl::Status& /*status*/) {}

  // Ends the call with CANCELLED (the server is told). Any thread; before the
  // stub call too (the call then starts cancelled).
  void Cancel();

 protected:
  ClientReactorBase();

  void StartReadMessage(google::protobuf::Message* message);
  void StartWriteMessage(const google::protobuf::Message* message);
  void StartWritesDoneCall();

 private:
  friend class ClientReactorDriver;
  enum class Op { kRead, kWrite, kWritesDone };

  // Takes the call. `request`: a server-streaming call's request, sent and
  // followed by a half-close. `response`: a client-streaming call's
  // response, read by the framework.
  void Bind(std::shared_ptr<ClientStreamCore> core, const google::protobuf::Message* request,
            google::protobuf::Message* response);
  void StartOp(ClientStreamCore* core, Op op, const google::protobuf::Message* message);
  void OpDone(Op op, bool ok);
  void RequestWritten(bool ok);
  void InternalOpDone(Op op, bool ok);
  void FinishDone(absl::Status status);
  // Starts ClientStreamCore::Finish() when the call's end was seen.
  void MaybeFinish();
  void Leave();

  netpoll::Mutex mu_;
  std::shared_ptr<ClientStreamCore> core_ ABSL_GUARDED_BY(mu_);
  google::protobuf::Message* queued_read_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::optional<Op> queued_write_op_ ABSL_GUARDED_BY(mu_);
  const google::protobuf::Message* queued_write_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool read_outstanding_ ABSL_GUARDED_BY(mu_) = false;
  bool write_outstanding_ ABSL_GUARDED_BY(mu_) = false;
  int active_ ABSL_GUARDED_BY(mu_) = 0;
  // The call's end was seen: ask the core for the status.
  bool end_seen_ ABSL_GUARDED_BY(mu_) = false;
  bool finish_started_ ABSL_GUARDED_BY(mu_) = false;
  // A client-streaming call: whether its one response arrived.
  bool expects_response_ ABSL_GUARDED_BY(mu_) = false;
  bool got_response_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<absl::Status> status_ ABSL_GUARDED_BY(mu_);
  bool done_ ABSL_GUARDED_BY(mu_) = false;
};

// Binds reactors to calls (StubCore; tests).
class ClientReactorDriver {
 public:
  static void Start(std::shared_ptr<ClientStreamCore> core, ClientReactorBase* reactor,
                    const google::protobuf::Message* request, google::protobuf::Message* response) {
    reactor->Bind(std::move(core), request, response);
  }
};

}  // namespace stream_internal

// The reactor of a server-streaming call: StartRead() each response.
template <typename Response>
class ClientReadReactor : public stream_internal::ClientReactorBase {
 public:
  // `response` must stay valid until OnReadDone.
  void StartRead(Response* response) { StartReadMessage(response); }
};

// The reactor of a client-streaming call: StartWrite() each request, then
// StartWritesDone(); OnDone follows the response (in the stub's `response`).
template <typename Request>
class ClientWriteReactor : public stream_internal::ClientReactorBase {
 public:
  // `request` must stay valid until OnWriteDone.
  void StartWrite(const Request* request) { StartWriteMessage(request); }
  void StartWritesDone() { StartWritesDoneCall(); }
};

// The reactor of a bidirectional call.
template <typename Request, typename Response>
class ClientBidiReactor : public stream_internal::ClientReactorBase {
 public:
  void StartRead(Response* response) { StartReadMessage(response); }
  void StartWrite(const Request* request) { StartWriteMessage(request); }
  void StartWritesDone() { StartWritesDoneCall(); }
};

// ------------------------------------------------------------------ Coroutine

// The responses of a server-streaming call (its request is already sent):
// `co_await s.Read()` yields the next response, or nullopt at the end;
// `co_await s.Finish()` the status. Move-only; an empty stream (default or
// moved-from) may only be assigned or destroyed. Destroying it unfinished
// cancels the call.
template <typename Response>
class ClientStreamReader {
 public:
  ClientStreamReader() = default;
  ClientStreamReader(std::shared_ptr<ClientStreamCore> core,
                     const google::protobuf::Message& request)
      : core_(std::move(core)) {
    stream_internal::SendRequestAndHalfClose(core_, request);
  }

  stream_internal::ReadAwaiter<Response, ClientStreamCore> Read() {
    return stream_internal::ReadAwaiter<Response, ClientStreamCore>(core_.get());
  }
  stream_internal::FinishAwaiter Finish() { return stream_internal::FinishAwaiter(core_.get()); }
  void Cancel() { core_->Cancel(); }
  ClientStreamCore::Metadata initial_metadata() const { return core_->initial_metadata(); }
  ClientStreamCore::Metadata trailing_metadata() const { return core_->trailing_metadata(); }

 private:
  std::shared_ptr<ClientStreamCore> core_;
};

// The requests of a client-streaming call: `co_await w.Write(req)` is true
// once the transport took it; `co_await w.Finish()` half-closes (unless
// WritesDone() was awaited), reads the response and yields it or the error.
// The stream must outlive the await of Finish().
template <typename Request, typename Response>
class ClientStreamWriter {
 public:
  ClientStreamWriter() = default;
  explicit ClientStreamWriter(std::shared_ptr<ClientStreamCore> core) : core_(std::move(core)) {}

  stream_internal::WriteAwaiter<ClientStreamCore> Write(const Request& request) {
    return stream_internal::WriteAwaiter<ClientStreamCore>(core_.get(), request);
  }
  stream_internal::WritesDoneAwaiter WritesDone() {
    writes_done_ = true;
    return stream_internal::WritesDoneAwaiter(core_.get());
  }
  Task<absl::StatusOr<Response>> Finish() {
    ClientStreamCore* core = core_.get();
    if (!writes_done_) {
      writes_done_ = true;
      co_await stream_internal::WritesDoneAwaiter(core);
    }
    std::optional<Response> response =
        co_await stream_internal::ReadAwaiter<Response, ClientStreamCore>(core);
    absl::Status status = co_await stream_internal::FinishAwaiter(core);
    if (!status.ok()) co_return status;
    if (!response.has_value()) {
      co_return absl::InternalError("the server ended a client-streaming call without a response");
    }
    co_return std::move(*response);
  }
  void Cancel() { core_->Cancel(); }
  ClientStreamCore::Metadata initial_metadata() const { return core_->initial_metadata(); }
  ClientStreamCore::Metadata trailing_metadata() const { return core_->trailing_metadata(); }

 private:
  std::shared_ptr<ClientStreamCore> core_;
  bool writes_done_ = false;
};

// Both directions of a bidirectional call. A Read and a write-side operation
// may be awaited at once by two coroutines (WhenAll); one of each at a time.
template <typename Request, typename Response>
class ClientStream {
 public:
  ClientStream() = default;
  explicit ClientStream(std::shared_ptr<ClientStreamCore> core) : core_(std::move(core)) {}

  stream_internal::ReadAwaiter<Response, ClientStreamCore> Read() {
    return stream_internal::ReadAwaiter<Response, ClientStreamCore>(core_.get());
  }
  stream_internal::WriteAwaiter<ClientStreamCore> Write(const Request& request) {
    return stream_internal::WriteAwaiter<ClientStreamCore>(core_.get(), request);
  }
  stream_internal::WritesDoneAwaiter WritesDone() {
    return stream_internal::WritesDoneAwaiter(core_.get());
  }
  stream_internal::FinishAwaiter Finish() { return stream_internal::FinishAwaiter(core_.get()); }
  void Cancel() { core_->Cancel(); }
  ClientStreamCore::Metadata initial_metadata() const { return core_->initial_metadata(); }
  ClientStreamCore::Metadata trailing_metadata() const { return core_->trailing_metadata(); }

 private:
  std::shared_ptr<ClientStreamCore> core_;
};

}  // namespace nprpc

#endif  // RPC_CLIENT_STREAMING_H_
