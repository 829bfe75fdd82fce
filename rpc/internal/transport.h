// Transport: how attempts reach one endpoint. One implementation per
// connection type (ChannelOptions::connection_type):
//
//   single  SingleConnectionTransport  all calls multiplexed on one connection
//   pooled  PooledTransport            one call at a time per pooled connection
//   short   ShortTransport             a new connection per call
//
// A transport completes every attempt it was given exactly once (response,
// error response, connection failure, shutdown) unless Abandon() completes it
// first. Deadlines, cancellation, retries and hedging live above it, in the
// channel's call controller, which abandons attempts it no longer wants.
//
// Thread safety: every method is safe from any thread.
#ifndef RPC_INTERNAL_TRANSPORT_H_
#define RPC_INTERNAL_TRANSPORT_H_

#include <cstddef>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "netpoll/link_buffer.h"
#include "rpc/internal/client_call.h"

namespace nprpc {

class Transport {
 public:
  virtual ~Transport() = default;

  // Sends one encoded request frame for `call`. `deadline` bounds what the
  // transport may wait for (e.g. a pooled connection); the controller enforces
  // the call's deadline itself.
  virtual void Send(ClientCallPtr call, netpoll::LinkBuffer frame, absl::Time deadline) = 0;

  // Completes `call` with `status` if it is still pending here, and forgets it
  // (its late response, if any, is dropped).
  virtual void Abandon(const ClientCallPtr& call, absl::Status status) = 0;

  // Completes every pending attempt with CANCELLED and closes connections.
  // Blocks until done (must not run on one of the transport's loop threads).
  virtual void Shutdown() = 0;

  // Attempts sent and not yet completed.
  virtual size_t in_flight() const = 0;
};

}  // namespace nprpc

#endif  // RPC_INTERNAL_TRANSPORT_H_
