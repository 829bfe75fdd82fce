// gRPC over HTTP/2 on the server's port, beside baidu_std and HTTP/1.1
// (docs/protocol.md, "gRPC (HTTP/2)"). A connection is HTTP/2 when it opens
// with the client preface "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" (h2c with prior
// knowledge, what every gRPC client sends on a plaintext channel).
//
// Per connection, a GrpcSession drives an nghttp2 server session from the
// connection's loop thread: nghttp2_session_mem_recv() on the input's chunks,
// nghttp2_session_mem_send() into the output. No extra thread, no other loop.
//
//   client HEADERS  :path /package.Service/Method, content-type
//                   application/grpc, grpc-timeout, grpc-encoding, metadata
//     -> ServerCore::Lookup (UNIMPLEMENTED when unknown), then
//        unary:     the request message is buffered until END_STREAM, then
//                   Acquire + Start: the ServerCall path every protocol
//                   shares (interceptors, metrics, tracing, deadline, limits)
//        streaming: Acquire + Start at once; the handler runs
//                   MethodHandler::CallStream() on the call, which is its
//                   ServerStreamCore (rpc/stream_core.h)
//   client DATA     length-prefixed messages (grpc_wire::MessageDeframer),
//                   refused from the prefix beyond
//                   ServerOptions::grpc_max_receive_message_size
//   client RST      cancels the call (ServerContext::IsCancelled, OnCancel)
//   server answer   HEADERS (:status 200, initial metadata), DATA (the
//                   messages), HEADERS (grpc-status, grpc-message, trailing
//                   metadata); an error before any message is one
//                   trailers-only HEADERS frame
//
// Flow control is backpressure: a stream's DATA is acknowledged (WINDOW_UPDATE)
// only as its handler reads it, so a client that outpaces its handler is
// stopped by the stream's window (ServerOptions::grpc_stream_window_bytes);
// a Write's callback runs only once the stream's unsent bytes are below
// kGrpcStreamSendBuffer, so a handler that writes faster than its client
// reads waits. Requests buffered on the server are charged to the memory
// budget. Shutdown sends GOAWAY (a notice, then the last stream after a PING
// round trip); streams opened after it are refused (REFUSED_STREAM). More
// than ServerOptions::grpc_max_resets_per_second RST_STREAMs in a second
// close the connection with GOAWAY ENHANCE_YOUR_CALM (rapid reset,
// CVE-2023-44487).
//
// Thread safety: the protocol object is immutable and shared; a session is
// used on its connection's loop thread only; its calls run anywhere and hand
// everything to the loop.
#ifndef RPC_INTERNAL_GRPC_PROTOCOL_H_
#define RPC_INTERNAL_GRPC_PROTOCOL_H_

#include <cstddef>
#include <memory>

#include "absl/strings/string_view.h"
#include "netpoll/connection.h"
#include "netpoll/link_buffer.h"
#include "rpc/internal/protocol.h"

namespace nprpc {

// The first bytes of every HTTP/2 connection (RFC 9113, 3.4).
inline constexpr absl::string_view kHttp2ClientPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
// A stream's unsent response bytes above which a Write's callback waits.
inline constexpr size_t kGrpcStreamSendBuffer = size_t{64} << 10;

class GrpcProtocol final : public ServerProtocol {
 public:
  // The process-wide instance.
  static const GrpcProtocol* Get();

  absl::string_view name() const override { return "grpc"; }
  SniffResult Sniff(const netpoll::LinkBuffer& input) const override;
  std::shared_ptr<ServerSession> NewSession(std::shared_ptr<ServerCore> core,
                                            const netpoll::ConnectionPtr& conn) const override;
};

}  // namespace nprpc

#endif  // RPC_INTERNAL_GRPC_PROTOCOL_H_
