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
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "netpoll/link_buffer.h"
#include "rpc/baidu_std.h"
#include "rpc/internal/client_call.h"
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

  // Completes `call` with `status` if it is still pending here, and forgets it
  // (its late response, if any, is dropped).
  virtual void Abandon(const ClientCallPtr& call, absl::Status status) = 0;

  // Completes every pending attempt with CANCELLED and closes connections;
  // later Sends fail with CANCELLED. Blocks until done (must not run on one
  // of the transport's loop threads).
  virtual void Shutdown() = 0;

  // Attempts sent and not yet completed.
  virtual size_t in_flight() const = 0;
};

}  // namespace nprpc

#endif  // RPC_INTERNAL_TRANSPORT_H_
