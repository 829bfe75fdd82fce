// The untyped ends of a streaming call: ServerStreamCore (what a streaming
// handler reads requests from and writes responses to) and ClientStreamCore
// (what a caller of a streaming method writes requests to and reads
// responses from). A protocol that carries streams (gRPC over HTTP/2,
// rpc/internal/grpc_*) implements them; the typed readers, writers and
// reactors of generated code (rpc/streaming.h) wrap them.
//
//   server: handler->CallStream(stream)       client: channel->NewStream(...)
//             stream->Read(&req, on_read)               stream->Write(req, on_written)
//             stream->Write(resp, on_written)           stream->WritesDone(on_done)
//             stream->Finish(status)                    stream->Read(&resp, on_read)
//                                                       stream->Finish(on_status)
//
// Rules both ends share:
// - At most one Read and one Write outstanding at a time (a Read and a Write
//   may be outstanding together). Their callbacks run exactly once each,
//   never inside the Read()/Write() call that started them, on a thread of
//   the connection's loop: they must not block.
// - Write() serializes the message before it returns (the caller may reuse
//   it at once). Its callback runs once the transport took the message within
//   the stream's flow-control window and its own bounded send buffer, so a
//   writer that waits for each callback before the next Write() never
//   outruns a slow reader: writes are flow-controlled.
// - Read(msg) callback `true`: `msg` holds the next message. `false`: there
//   is none and will be none (the peer half-closed, the call ended, or a
//   message could not be parsed, which ends the call with INTERNAL);
//   `msg` is unspecified then.
// - A Write callback `false`: the call ended (cancelled, deadline, peer gone);
//   nothing more will be sent.
//
// Thread safety: every method is safe from any thread.
#ifndef RPC_STREAM_CORE_H_
#define RPC_STREAM_CORE_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "google/protobuf/message.h"
#include "netpoll/mutex.h"

namespace nprpc {

class ServerContext;

// How a method streams, as its .proto says.
enum class StreamKind {
  kUnary,            // rpc M(Req) returns (Resp)
  kClientStreaming,  // rpc M(stream Req) returns (Resp)
  kServerStreaming,  // rpc M(Req) returns (stream Resp)
  kBidiStreaming,    // rpc M(stream Req) returns (stream Resp)
};

// "unary", "client streaming", "server streaming", "bidirectional streaming".
const char* StreamKindName(StreamKind kind);

using StreamCallback = absl::AnyInvocable<void(bool ok)>;

// The server's end of one streaming call. Made by the protocol and handed to
// MethodHandler::CallStream(); the call ends when Finish() is called (or the
// server ends it: deadline, client cancel, connection lost, shutdown, which
// the handler sees as ServerContext::IsCancelled() and failing reads and
// writes; it must still call Finish(), which is then dropped).
class ServerStreamCore {
 public:
  virtual ~ServerStreamCore() = default;

  // The call's context: method, deadline, peer, request metadata (the
  // client's initial metadata), response metadata (sent as initial metadata
  // with the first message or at Finish()), cancellation.
  virtual ServerContext& context() = 0;

  virtual void Read(google::protobuf::Message* msg, StreamCallback done) = 0;
  virtual void Write(const google::protobuf::Message& msg, StreamCallback done) = 0;
  // Ends the call with `status` (gRPC: trailers with grpc-status and
  // grpc-message). Once; outstanding reads then complete `false`. Messages
  // whose Write callback already ran are sent before the status.
  virtual void Finish(absl::Status status) = 0;
};

// The caller's end of one streaming call, from Channel::NewStream(). A call
// that cannot start (no endpoint, a protocol without streams such as
// baidu_std, a cancelled token) still yields a stream: its Read/Write fail
// and Finish() reports why. The stream owns the call: destroying the last
// reference to an unfinished stream cancels it.
class ClientStreamCore {
 public:
  using Metadata = std::vector<std::pair<std::string, std::string>>;

  virtual ~ClientStreamCore() = default;

  virtual void Read(google::protobuf::Message* msg, StreamCallback done) = 0;
  virtual void Write(const google::protobuf::Message& msg, StreamCallback done) = 0;
  // Half-closes: no more Write()s; the server's reads then end. `done(false)`
  // when the call had already ended.
  virtual void WritesDone(StreamCallback done) = 0;
  // The call's status once it ended: the server's status (gRPC trailers), or
  // CANCELLED / DEADLINE_EXCEEDED / UNAVAILABLE from this side. `done` runs
  // once, on a loop thread, after every response message was read or
  // dropped (a caller that stops reading may call it any time; unread
  // messages are dropped).
  virtual void Finish(absl::AnyInvocable<void(absl::Status)> done) = 0;
  // Ends the call at once with CANCELLED and tells the server (gRPC:
  // RST_STREAM CANCEL). Idempotent; any thread.
  virtual void Cancel() = 0;

  // The server's initial metadata (response headers), once the first
  // message arrived or the call ended; and its trailing metadata once
  // Finish()'s callback ran. Lower-case keys; `-bin` values decoded.
  virtual Metadata initial_metadata() const = 0;
  virtual Metadata trailing_metadata() const = 0;

  // True on a thread that runs this stream's callbacks (one of its
  // channel's loop threads), where waiting for a callback could deadlock:
  // the blocking readers and writers (rpc/client_streaming.h) refuse to wait
  // there with FAILED_PRECONDITION, as the sync Channel::CallMethod does.
  // Any thread.
  virtual bool OnLoopThread() const { return false; }
};

// A client stream that failed before it started: every Read/Write/WritesDone
// completes `false` and Finish() reports `status`. Callbacks run through
// `post` (which must run its task later, on another stack: a loop's
// QueueInLoop), never inside the call.
std::shared_ptr<ClientStreamCore> MakeFailedClientStream(
    absl::Status status, absl::AnyInvocable<void(absl::AnyInvocable<void()>)> post);

namespace stream_internal {

// The blocking form of a stream operation: `start(done)` begins it (e.g.
// core.Read(msg, done)), and this waits until `done` reports its Result.
// Never on a loop thread (the report may need that loop).
template <typename Result, typename Start>
Result AwaitCompletion(Start start) {
  netpoll::Notification done;
  Result result{};
  start([&](Result r) {
    result = std::move(r);
    done.Notify();
  });
  done.WaitForNotification();
  return result;
}

}  // namespace stream_internal
}  // namespace nprpc

#endif  // RPC_STREAM_CORE_H_
