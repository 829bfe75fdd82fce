// The typed server ends of streaming methods, in the three styles of the
// generated service bases (the handlers that run them: rpc/stream_handlers.h).
// Each wraps the untyped ServerStreamCore of rpc/stream_core.h.
//
//   rpc Talk(stream Msg) returns (stream Msg);   // bidi
//
//   sync (Service), blocks on the server's worker pool:
//     absl::Status Talk(ServerContext& context, ServerReaderWriter<Msg, Msg>* stream) {
//       Msg m;
//       while (stream->Read(&m)) {
//         if (!stream->Write(m)) break;
//       }
//       return absl::OkStatus();
//     }
//   callback (CallbackService), reactions on the I/O loop, never block:
//     std::unique_ptr<ServerBidiReactor<Msg, Msg>> Talk(ServerContext& context) {
//       class Echo : public ServerBidiReactor<Msg, Msg> {
//        public:
//         Echo() { StartRead(&m_); }
//         void OnReadDone(bool ok) override {
//           if (!ok) return Finish(absl::OkStatus());
//           StartWrite(&m_);
//         }
//         void OnWriteDone(bool ok) override {
//           if (!ok) return Finish(absl::CancelledError());
//           StartRead(&m_);
//         }
//         Msg m_;
//       };
//       return std::make_unique<Echo>();
//     }
//   coroutine (CoroutineService), resumes on the I/O loop, never block:
//     Task<absl::Status> Talk(ServerContext& context, ServerStream<Msg, Msg>& stream) {
//       while (std::optional<Msg> m = co_await stream.Read()) {
//         if (!co_await stream.Write(*m)) break;
//       }
//       co_return absl::OkStatus();
//     }
//
// Handler signatures per kind (Req: the request type, Resp: the response):
//
//                      client streaming          server streaming        bidi
//   sync       Status (ctx, ServerReader<Req>*,  (ctx, const Req&,       (ctx, ServerReader-
//                      Resp* response)           ServerWriter<Resp>*)    Writer<Resp, Req>*)
//   callback   unique_ptr<ServerReadReactor<Req>> unique_ptr<ServerWrite- unique_ptr<ServerBidi-
//                      (ctx, Resp* response)     Reactor<Resp>>          Reactor<Req, Resp>>
//                                                (ctx, const Req&)       (ctx)
//   coroutine  Task<Status> (ctx, ServerStream-  (ctx, const Req&,       (ctx, ServerStream<
//                      Reader<Req>&, Resp*)      ServerStreamWriter<     Req, Resp>&)
//                                                Resp>&)
//
// A client-streaming handler fills `response`, sent before an OK status (an
// error status sends no response). A server-streaming handler runs once the
// client's one request arrived (a client that half-closes without one gets
// INTERNAL). The handler's status (sync, coroutine) or Finish() (callback)
// ends the call.
//
// Threads:
// - sync: the handler runs where the server runs blocking handlers (its
//   worker pool, or a blocking section of the I/O loop that the loop leaves
//   to another thread when it blocks, so a wait there never stalls the
//   stream it waits for). Read() and Write() block that thread until the
//   message arrived / the transport took it.
// - callback: the handler and every reaction (OnReadDone, OnWriteDone,
//   OnCancel, OnDone) run on the call's I/O loop thread and must not block.
//   StartRead/StartWrite/Finish may be called from any thread.
// - coroutine: the handler starts on the I/O loop thread and, after each
//   co_await of a Read or Write, continues on the I/O loop thread that
//   completed it: it must not block.
//
// Writes are flow-controlled: a Write completes (returns, calls OnWriteDone,
// resumes) once the transport took the message within the stream's
// flow-control window and bounded send buffer, so a writer that waits for
// each write before the next never outruns a slow client. A write (or read)
// that fails (false) means the call ended: the client cancelled, the deadline
// passed, the connection closed; context.IsCancelled() then tells it was not
// a normal end. Nothing more can be sent; the handler should return (or
// Finish) promptly.
//
// The incoming call is current (ScopedServerContext) while a sync handler, a
// callback handler or one of its reactions, or a coroutine handler runs, so
// stub calls made there inherit its deadline and metadata.
#ifndef RPC_SERVER_STREAMING_H_
#define RPC_SERVER_STREAMING_H_

#include <memory>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "google/protobuf/message.h"
#include "netpoll/mutex.h"
#include "rpc/server_context.h"
#include "rpc/stream_awaiters.h"
#include "rpc/stream_core.h"

namespace nprpc {

namespace stream_internal {

// Starts `core`'s Read / Write and blocks until its callback ran; its result.
bool BlockingRead(ServerStreamCore& core, google::protobuf::Message* message);
bool BlockingWrite(ServerStreamCore& core, const google::protobuf::Message& message);

}  // namespace stream_internal

// ------------------------------------------------------------------ Sync

// The requests of a client-streaming call. Read() blocks until the next
// request arrived (true, `*request` holds it) or there is none and will be
// none (false: the client half-closed, or the call ended). One thread at a
// time.
template <typename Request>
class ServerReader {
 public:
  // `core` is not owned and outlives the reader (the handler's call).
  explicit ServerReader(ServerStreamCore* core) : core_(core) {}
  ServerReader(const ServerReader&) = delete;
  ServerReader& operator=(const ServerReader&) = delete;

  bool Read(Request* request) { return stream_internal::BlockingRead(*core_, request); }
  ServerContext& context() { return core_->context(); }

 private:
  ServerStreamCore* const core_;
};

// The responses of a server-streaming call. Write() blocks until the
// transport took the message (true) or the call ended (false). One thread at
// a time.
template <typename Response>
class ServerWriter {
 public:
  explicit ServerWriter(ServerStreamCore* core) : core_(core) {}
  ServerWriter(const ServerWriter&) = delete;
  ServerWriter& operator=(const ServerWriter&) = delete;

  bool Write(const Response& response) { return stream_internal::BlockingWrite(*core_, response); }
  ServerContext& context() { return core_->context(); }

 private:
  ServerStreamCore* const core_;
};

// Both, for a bidirectional call (gRPC's order of type arguments: the written
// type first). One thread may Read() while another Write()s; two concurrent
// Reads (or Writes) are not allowed.
template <typename Response, typename Request>
class ServerReaderWriter {
 public:
  explicit ServerReaderWriter(ServerStreamCore* core) : core_(core) {}
  ServerReaderWriter(const ServerReaderWriter&) = delete;
  ServerReaderWriter& operator=(const ServerReaderWriter&) = delete;

  bool Read(Request* request) { return stream_internal::BlockingRead(*core_, request); }
  bool Write(const Response& response) { return stream_internal::BlockingWrite(*core_, response); }
  ServerContext& context() { return core_->context(); }

 private:
  ServerStreamCore* const core_;
};

// ------------------------------------------------------------------ Callback

namespace stream_internal {

class ServerReactorDriver;

// What the three server reactors share: the operations, their counting, and
// the end. Users derive from the typed reactors below.
//
// Operations: at most one read and one write outstanding (checked: a second
// aborts, as does an operation or a second Finish() after Finish()). They may
// be started from any thread, also before the handler returned the reactor
// (from its constructor, say): they start once the framework took it.
//
// Reactions run on the call's I/O loop thread, one at a time per reactor,
// never inside the Start* or Finish() call that caused them, and must not
// block:
//   OnReadDone(ok) / OnWriteDone(ok)  once per StartRead / StartWrite.
//   OnCancel()   at most once, before the OnReadDone/OnWriteDone(false) of
//                the first operation that failed because the call was
//                cancelled (client cancel, deadline, connection lost). A
//                reactor with no operation outstanding learns of a
//                cancellation from context().IsCancelled() or its next
//                operation.
//   OnDone()     last, once Finish() was called and every operation's
//                reaction has returned. The framework then deletes the
//                reactor (it owns it from the handler's return: a
//                std::unique_ptr).
//
// Finish() may run OnDone() and delete the reactor before it returns when it
// is called outside a reaction with nothing outstanding: do not touch the
// reactor after calling Finish().
class ServerReactorBase {
 public:
  virtual ~ServerReactorBase();
  ServerReactorBase(const ServerReactorBase&) = delete;
  ServerReactorBase& operator=(const ServerReactorBase&) = delete;

  virtual void OnReadDone(bool /*ok*/) {}
  virtual void OnWriteDone(bool /*ok*/) {}
  virtual void OnCancel() {}
  virtual void OnDone() {}

 protected:
  ServerReactorBase();

  void StartReadMessage(google::protobuf::Message* message);
  void StartWriteMessage(const google::protobuf::Message* message);
  void FinishCall(absl::Status status);

 private:
  friend class ServerReactorDriver;
  enum class Op { kRead, kWrite };

  // Set by the driver before Bind: the client-streaming response sent before
  // an OK status (not owned), and storage kept alive until OnDone.
  void set_final_response(const google::protobuf::Message* response) { final_response_ = response; }
  void set_owned_message(std::unique_ptr<google::protobuf::Message> message) {
    owned_message_ = std::move(message);
  }
  // Takes the reactor's ownership and starts the operations queued so far.
  void Bind(std::shared_ptr<ServerStreamCore> core, std::unique_ptr<ServerReactorBase> self);

  void StartRead(ServerStreamCore* core, google::protobuf::Message* message);
  void StartWrite(ServerStreamCore* core, const google::protobuf::Message* message);
  void SendFinish(ServerStreamCore* core, absl::Status status);
  void OpDone(Op op, bool ok);
  void FinalWriteDone(absl::Status status);
  // Leaves a reaction (or Bind, or Finish); runs OnDone when it was the last
  // thing the reactor waited for.
  void Leave();
  void RunDone();

  const google::protobuf::Message* final_response_ = nullptr;
  std::unique_ptr<google::protobuf::Message> owned_message_;

  netpoll::Mutex mu_;
  std::shared_ptr<ServerStreamCore> core_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<ServerReactorBase> self_ ABSL_GUARDED_BY(mu_);
  // Operations started before Bind.
  google::protobuf::Message* queued_read_ ABSL_GUARDED_BY(mu_) = nullptr;
  const google::protobuf::Message* queued_write_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::optional<absl::Status> queued_finish_ ABSL_GUARDED_BY(mu_);
  bool read_outstanding_ ABSL_GUARDED_BY(mu_) = false;
  bool write_outstanding_ ABSL_GUARDED_BY(mu_) = false;
  // Reactions (and Bind/Finish calls) running now.
  int active_ ABSL_GUARDED_BY(mu_) = 0;
  bool finish_called_ ABSL_GUARDED_BY(mu_) = false;
  bool finish_sent_ ABSL_GUARDED_BY(mu_) = false;
  bool cancel_reported_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
};

// Hands reactors to the framework (stream_handlers.h).
class ServerReactorDriver {
 public:
  static void Start(std::shared_ptr<ServerStreamCore> core,
                    std::unique_ptr<ServerReactorBase> reactor,
                    std::unique_ptr<google::protobuf::Message> owned_message,
                    const google::protobuf::Message* final_response);
};

}  // namespace stream_internal

// The reactor of a client-streaming call: StartRead() each request; Finish()
// with OK sends the `response` the handler was given (keep filling it until
// then), an error sends none.
template <typename Request>
class ServerReadReactor : public stream_internal::ServerReactorBase {
 public:
  // `request` must stay valid until OnReadDone.
  void StartRead(Request* request) { StartReadMessage(request); }
  void Finish(absl::Status status) { FinishCall(std::move(status)); }
};

// The reactor of a server-streaming call (the request was read before the
// handler ran).
template <typename Response>
class ServerWriteReactor : public stream_internal::ServerReactorBase {
 public:
  // `response` must stay valid until OnWriteDone.
  void StartWrite(const Response* response) { StartWriteMessage(response); }
  void Finish(absl::Status status) { FinishCall(std::move(status)); }
};

// The reactor of a bidirectional call.
template <typename Request, typename Response>
class ServerBidiReactor : public stream_internal::ServerReactorBase {
 public:
  void StartRead(Request* request) { StartReadMessage(request); }
  void StartWrite(const Response* response) { StartWriteMessage(response); }
  void Finish(absl::Status status) { FinishCall(std::move(status)); }
};

// ------------------------------------------------------------------ Coroutine

// The requests of a client-streaming call: `co_await reader.Read()` yields
// the next request, or nullopt at the end. One Read awaited at a time.
template <typename Request>
class ServerStreamReader {
 public:
  explicit ServerStreamReader(ServerStreamCore* core) : core_(core) {}
  ServerStreamReader(const ServerStreamReader&) = delete;
  ServerStreamReader& operator=(const ServerStreamReader&) = delete;

  stream_internal::ReadAwaiter<Request, ServerStreamCore> Read() {
    return stream_internal::ReadAwaiter<Request, ServerStreamCore>(core_);
  }
  ServerContext& context() { return core_->context(); }

 private:
  ServerStreamCore* const core_;
};

// The responses of a server-streaming call: `co_await writer.Write(m)` is
// true once the transport took `m`, false when the call ended. One Write
// awaited at a time.
template <typename Response>
class ServerStreamWriter {
 public:
  explicit ServerStreamWriter(ServerStreamCore* core) : core_(core) {}
  ServerStreamWriter(const ServerStreamWriter&) = delete;
  ServerStreamWriter& operator=(const ServerStreamWriter&) = delete;

  stream_internal::WriteAwaiter<ServerStreamCore> Write(const Response& response) {
    return stream_internal::WriteAwaiter<ServerStreamCore>(core_, response);
  }
  ServerContext& context() { return core_->context(); }

 private:
  ServerStreamCore* const core_;
};

// Both, for a bidirectional call. A Read and a Write may be awaited at once
// by two coroutines (WhenAll).
template <typename Request, typename Response>
class ServerStream {
 public:
  explicit ServerStream(ServerStreamCore* core) : core_(core) {}
  ServerStream(const ServerStream&) = delete;
  ServerStream& operator=(const ServerStream&) = delete;

  stream_internal::ReadAwaiter<Request, ServerStreamCore> Read() {
    return stream_internal::ReadAwaiter<Request, ServerStreamCore>(core_);
  }
  stream_internal::WriteAwaiter<ServerStreamCore> Write(const Response& response) {
    return stream_internal::WriteAwaiter<ServerStreamCore>(core_, response);
  }
  ServerContext& context() { return core_->context(); }

 private:
  ServerStreamCore* const core_;
};

}  // namespace nprpc

#endif  // RPC_SERVER_STREAMING_H_
