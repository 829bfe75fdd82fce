// FakeStreamCall: one streaming call in memory, both ends: a ServerStreamCore
// for a handler and a ClientStreamCore for a caller, joined by two bounded
// queues. It follows the contract of rpc/stream_core.h, so the typed streams
// and handlers can be tested without a transport:
// - every callback runs on `loop` (QueueInLoop), never inside the call that
//   started it;
// - a Write completes once its message is in the peer's queue, which holds
//   `window` messages: a writer that waits for each completion stops while
//   the reader does not read (flow control);
// - the server's Finish() ends the call once; messages it wrote before are
//   still read by the client, then reads end and the client's Finish()
//   reports the status; a second Finish() is dropped and counted;
// - Cancel() from the client (also by dropping its last reference to an
//   unfinished call) and Abort() (the server side's deadline or reset) end
//   the call at once: queued messages are dropped, outstanding operations
//   complete `false`, ServerContext::IsCancelled() turns true.
//
//   auto call = FakeStreamCall::Create(loop);
//   handler->CallStream(call->server());
//   ClientReaderWriter<Req, Resp> stream(call->client());
//
// Thread safety: every method is safe from any thread.
#ifndef RPC_TESTING_FAKE_STREAM_H_
#define RPC_TESTING_FAKE_STREAM_H_

#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "netpoll/event_loop.h"
#include "rpc/server_context.h"
#include "rpc/stream_core.h"

namespace nprpc {
namespace testing {

struct FakeStreamOptions {
  // Messages each direction holds before a Write waits for the reader.
  size_t window = 1;
  std::string service = "test.Service";
  std::string method = "Method";
};

class FakeStreamCall {
 public:
  // `loop` runs every callback; not owned, must outlive the call.
  static std::shared_ptr<FakeStreamCall> Create(netpoll::EventLoop* loop,
                                                const FakeStreamOptions& options = {});
  ~FakeStreamCall();
  FakeStreamCall(const FakeStreamCall&) = delete;
  FakeStreamCall& operator=(const FakeStreamCall&) = delete;

  // The server's end (one object, shared).
  std::shared_ptr<ServerStreamCore> server() const { return server_; }
  // The client's end. The first call makes it; later calls return it while
  // someone holds it, null afterwards.
  std::shared_ptr<ClientStreamCore> client();

  // Ends the call as the server's transport would on a deadline or a reset:
  // the client's status is `status`.
  void Abort(absl::Status status);

  // How often the server called Finish(), and the status of the first.
  int server_finish_calls() const;
  std::optional<absl::Status> server_status() const;
  // True once the call ended (Finish, Cancel, Abort).
  bool ended() const;
  // Messages the server (client) wrote that the transport took.
  int server_messages_written() const;
  int client_messages_written() const;

  struct State;

 private:
  FakeStreamCall() = default;

  std::shared_ptr<State> state_;
  std::shared_ptr<ServerStreamCore> server_;
};

}  // namespace testing
}  // namespace nprpc

#endif  // RPC_TESTING_FAKE_STREAM_H_
