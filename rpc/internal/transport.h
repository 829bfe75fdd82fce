// Transport: how the attempts of calls reach one endpoint, in one protocol.
// A ClientProtocol (client_protocol.h) makes one per endpoint; the call
// controller hands it a protocol-independent ClientRequest per attempt and
// gets the answer back through the attempt's ClientCall.
//
// A transport completes every attempt it was given exactly once (response,
// error response, connection failure, shutdown) unless Abandon() completes it
// first. Deadlines, cancellation, retries and hedging live above it, in the
// call controller, which abandons attempts it no longer wants.
//
// Thread safety: every method is safe from any thread.
#ifndef RPC_INTERNAL_TRANSPORT_H_
#define RPC_INTERNAL_TRANSPORT_H_

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "netpoll/event_loop.h"
#include "netpoll/link_buffer.h"
#include "rpc/baidu_std.h"
#include "rpc/call_options.h"
#include "rpc/internal/client_call.h"
#include "rpc/stream_core.h"
#include "rpc/trace_context.h"

namespace nprpc {

// What one call sends, whatever the protocol. Built once per call by the
// channel and immutable after: every attempt (first try, retry, backup) sends
// the same request, with Clone()s of payload and attachment (no copy).
struct ClientRequest {
  std::string service;  // full name: "example.EchoService"
  std::string method;   // "Echo"
  TraceContext trace;
  std::vector<std::pair<std::string, std::string>> metadata;
  CompressType compress_type = CompressType::kNone;  // payload only
  bool checksum = false;                             // CRC32C over the payload
  netpoll::LinkBuffer payload;                       // the serialized request
  netpoll::LinkBuffer attachment;
};

// How a streaming call starts (Transport::NewStream), besides its request
// headers (a ClientRequest whose payload and attachment are empty).
struct ClientStreamStart {
  // The call's deadline (InfiniteFuture: none) and the time left before it
  // (InfiniteDuration: none), which the protocol tells the server. At the
  // deadline the stream ends with DEADLINE_EXCEEDED and the server is told.
  absl::Time deadline = absl::InfiniteFuture();
  absl::Duration timeout = absl::InfiniteDuration();
  // Cancels the stream (CANCELLED) when cancelled.
  std::optional<CancellationToken> cancel{};
  // Runs once, with the call's final status, when the stream ends (on a loop
  // thread, or inside NewStream() when the stream cannot start).
  absl::AnyInvocable<void(const absl::Status&)> on_end{};
  // Where a transport without streams runs the failed stream's callbacks
  // (not owned; outlives the stream).
  netpoll::EventLoop* loop = nullptr;
};

class Transport {
 public:
  virtual ~Transport() = default;

  // Sends `request` as the attempt `call`. `deadline` is the call's deadline
  // (InfiniteFuture: none) and `timeout` the time left before it when the
  // attempt starts, which the protocol tells the server (InfiniteDuration:
  // none). The transport keeps no reference to `request` after Send() returns
  // (it encodes it, or keeps Clone()s of its buffers). `deadline` bounds what
  // the transport itself may wait for (e.g. a pooled connection); the
  // controller enforces the call's deadline.
  virtual void Send(ClientCallPtr call, const ClientRequest& request, absl::Time deadline,
                    absl::Duration timeout) = 0;

  // Completes `call` with `status` unless it has completed, and forgets it
  // (its late response, if any, is dropped). When Abandon() returns, the call
  // has completed: with `status`, or with what completed it first, whose
  // decoding into the response (maybe on another thread) has finished. The
  // controller relies on it: right after, it hands the response to the
  // caller, who may free it.
  virtual void Abandon(const ClientCallPtr& call, absl::Status status) = 0;

  // Completes every pending attempt with CANCELLED and closes connections;
  // later Sends fail with CANCELLED. Blocks until done (must not run on one
  // of the transport's loop threads).
  virtual void Shutdown() = 0;

  // Attempts sent and not yet completed.
  virtual size_t in_flight() const = 0;

  // Starts a streaming call (rpc/stream_core.h): `request` names the method
  // and carries the trace, metadata and compression; its payload is unused.
  // Streams are not retried or hedged. The default: a protocol without
  // streams, whose stream fails with FAILED_PRECONDITION (its callbacks run
  // on start.loop; start.on_end runs at once).
  virtual std::shared_ptr<ClientStreamCore> NewStream(const ClientRequest& request,
                                                      ClientStreamStart start);
};

}  // namespace nprpc

#endif  // RPC_INTERNAL_TRANSPORT_H_
