// baidu_std on the server: brpc's protocol (docs/protocol.md) as the first
// ServerProtocol. Connections that start with "PRPC" are its own.
//
// Per connection (BaiduStdSession, on the loop thread): cut every complete
// frame out of the input (FrameDecoder, zero-copy), keep at most
// ServerOptions::max_in_flight_per_connection calls running and as many
// decoded frames waiting in order (beyond that reading pauses), verify the
// checksum, admit the call through the ServerCore and answer what never
// reaches a handler. Per call (BaiduStdCall): decompress and parse the
// payload on the worker, encode the answer frame (error_text with brpc's
// "[addr][E<code>]" prefix, the canonical code in kStatusCodeField where
// the number does not imply it).
//
// Protocol errors (bad magic, oversized body, a response frame) close only
// that connection.
//
// Thread safety: the protocol object is immutable and shared; a session is
// used on its connection's loop thread only.
#ifndef RPC_INTERNAL_BAIDU_STD_PROTOCOL_H_
#define RPC_INTERNAL_BAIDU_STD_PROTOCOL_H_

#include <memory>

#include "absl/strings/string_view.h"
#include "netpoll/connection.h"
#include "netpoll/link_buffer.h"
#include "rpc/internal/protocol.h"

namespace nprpc {

class BaiduStdProtocol final : public ServerProtocol {
 public:
  // The process-wide instance.
  static const BaiduStdProtocol* Get();

  absl::string_view name() const override { return "baidu_std"; }
  SniffResult Sniff(const netpoll::LinkBuffer& input) const override;
  std::shared_ptr<ServerSession> NewSession(std::shared_ptr<ServerCore> core,
                                            const netpoll::ConnectionPtr& conn) const override;
};

}  // namespace nprpc

#endif  // RPC_INTERNAL_BAIDU_STD_PROTOCOL_H_
