// HTTP/1.1 on the server's port, beside baidu_std (docs/protocol.md, "HTTP/1.1").
// A connection is HTTP when its first bytes are a request method this
// protocol serves followed by a space ("GET ", "POST ", "PUT ", "HEAD ",
// "DELETE ", "OPTIONS ", "PATCH "); "PRI * HTTP/2.0" is left to HTTP/2 and
// "PRPC" to baidu_std.
//
// Routes:
//   GET/HEAD <path>               the built-in pages (ServerCore::http_pages()),
//                                 404 when none answers
//   POST /package.Service/Method  a call: the body is the request message in
//                                 protobuf's JSON mapping (Content-Type
//                                 application/json or none) or binary
//                                 (application/x-protobuf, application/protobuf,
//                                 application/proto); the answer is the
//                                 response message the same way, or an error
//                                 status with a JSON body (HttpErrorResponse)
//   anything else                 405
//
// Per connection (HttpSession, on the loop thread): requests are decoded
// one by one (HttpRequestDecoder), answered strictly in request order (an
// answer that is ready waits for the ones before it), at most
// ServerOptions::max_in_flight_per_connection unanswered at once (beyond
// that reading pauses and the rest stays as bytes in the input). Request
// headers become the call's request user fields (lower-case names), the
// response user fields become response headers; `traceparent` sets the
// trace context and `x-timeout-ms` the deadline. With an authenticator, the
// connection's first request must carry a credential it accepts in
// Authorization (401 and close otherwise). A malformed or oversized request
// is answered 400/413/431/505 and the connection closes after the answers
// before it.
//
// Thread safety: the protocol object is immutable and shared; a session is
// used on its connection's loop thread only (its calls finish on any thread
// and hand their answer to the loop).
#ifndef RPC_INTERNAL_HTTP_PROTOCOL_H_
#define RPC_INTERNAL_HTTP_PROTOCOL_H_

#include <memory>

#include "absl/strings/string_view.h"
#include "netpoll/connection.h"
#include "netpoll/link_buffer.h"
#include "rpc/internal/protocol.h"

namespace nprpc {

// The request header that carries a call's timeout in milliseconds (the
// deadline is its arrival plus this).
inline constexpr absl::string_view kHttpTimeoutHeader = "x-timeout-ms";

class HttpProtocol final : public ServerProtocol {
 public:
  // The process-wide instance.
  static const HttpProtocol* Get();

  absl::string_view name() const override { return "http"; }
  SniffResult Sniff(const netpoll::LinkBuffer& input) const override;
  std::shared_ptr<ServerSession> NewSession(std::shared_ptr<ServerCore> core,
                                            const netpoll::ConnectionPtr& conn) const override;
};

}  // namespace nprpc

#endif  // RPC_INTERNAL_HTTP_PROTOCOL_H_
