// Interceptors: code that sees and may police every call of a server or a
// channel without touching handlers or call sites: authentication by
// metadata, logging, auditing, quotas.
//
//   class RequireTenant : public nprpc::ServerInterceptor {
//    public:
//     absl::Status BeforeCall(nprpc::ServerContext& ctx) override {
//       if (ctx.FindRequestUserField("x-tenant") == nullptr) {
//         return absl::PermissionDeniedError("x-tenant missing");
//       }
//       return absl::OkStatus();
//     }
//   };
//   server_options.interceptors.push_back(std::make_shared<RequireTenant>());
//
// Order (both sides): the chain is a list; interceptors[0] is the outermost.
// BeforeCall runs in list order; the first non-OK status rejects the call
// (the later ones do not run, nor does the handler or the transport). AfterCall
// runs in reverse order for every interceptor whose BeforeCall ran, the
// rejecting one included, once the call's outcome is known.
//
// Server: BeforeCall runs on the thread that will run the handler (an I/O
// loop or a worker), after the request was admitted (method found, limits
// taken) and before its payload is parsed; a rejection is answered with its
// status (the brpc number of an rpc error, e.g. ERPCAUTH, or the code's
// mapping, docs/protocol.md). It sees the method, the deadline, the peer,
// the authenticated AuthContext and the request metadata, and may add
// request metadata (the handler sees it) or response metadata. Calls the
// server refuses before they are admitted (unknown method, limits, a full
// queue) and calls already past their deadline are not shown to
// interceptors; the metrics count them.
// AfterCall runs on the thread that completed the call (the handler's, or
// the loop's deadline timer) and may read only the request side of the
// context: the handler may still be running when the deadline answered for it.
//
// Client: BeforeCall runs on the calling thread inside Channel::CallMethod,
// before the first attempt; it may add metadata (sent with every attempt) or
// reject the call (done runs with that status; nothing is sent). AfterCall
// runs on the thread that completes the call, just before `done`.
//
// No interceptor installed costs nothing: the chain is skipped.
//
// Thread safety: an interceptor is shared by every call and called from any
// thread, concurrently; it must be thread-safe.
#ifndef RPC_INTERCEPTOR_H_
#define RPC_INTERCEPTOR_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "rpc/server_context.h"
#include "rpc/trace_context.h"

namespace nprpc {

// How a call ended, as an interceptor sees it after the call.
struct CallOutcome {
  absl::Status status;
  // From admission (server) or CallMethod (client) to the answer.
  absl::Duration latency;
  // Serialized request and response payloads plus attachments (the response:
  // 0 for an error answer).
  size_t request_bytes = 0;
  size_t response_bytes = 0;
};

class ServerInterceptor {
 public:
  virtual ~ServerInterceptor() = default;
  virtual absl::Status BeforeCall(ServerContext& /*ctx*/) { return absl::OkStatus(); }
  virtual void AfterCall(const ServerContext& /*ctx*/, const CallOutcome& /*outcome*/) {}
};

// One client call as interceptors see it.
struct ClientCallView {
  absl::string_view service;  // "example.EchoService"
  absl::string_view method;   // "Echo"
  absl::Time deadline;
  // Sent as request metadata (baidu_std user_fields, HTTP headers).
  std::vector<std::pair<std::string, std::string>>* metadata;
  const TraceContext* trace;  // the ids this call is sent with
};

class ClientInterceptor {
 public:
  virtual ~ClientInterceptor() = default;
  virtual absl::Status BeforeCall(ClientCallView& /*call*/) { return absl::OkStatus(); }
  virtual void AfterCall(const ClientCallView& /*call*/, const CallOutcome& /*outcome*/) {}
};

using ServerInterceptors = std::vector<std::shared_ptr<ServerInterceptor>>;
using ClientInterceptors = std::vector<std::shared_ptr<ClientInterceptor>>;

}  // namespace nprpc

#endif  // RPC_INTERCEPTOR_H_
