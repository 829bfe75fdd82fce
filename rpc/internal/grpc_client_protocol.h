// GrpcClientProtocol: the "grpc" ClientProtocol. An nprpc channel with
// ChannelOptions::protocol = "grpc" calls any gRPC server (gRPC over HTTP/2,
// h2c with prior knowledge); its transports are GrpcClientTransports
// (grpc_client_transport.h), one HTTP/2 connection per endpoint carrying
// every call as a stream, and they carry streaming calls too
// (Channel::NewStream).
//
// Connection types: HTTP/2 multiplexes by itself, so "pooled" and "short"
// map to the same one multiplexed connection per endpoint as "single".
// An authenticator's credential is not sent (gRPC carries credentials as
// call metadata: set CallOptions::metadata or an interceptor).
//
// TLS (ClientProtocolOptions::tls): every connection, and every probe, is
// TLS with ALPN offering exactly "h2" (the transports use a copy of the
// context made by TlsContext::WithAlpn, so the channel's own context may
// offer anything, or nothing as baidu_std does). See GrpcTransportOptions::tls
// for what the server may answer.
//
// Probe (health check of an endpoint taken out): dials, sends the HTTP/2
// preface and an empty SETTINGS frame and succeeds when the server's first
// frame is SETTINGS, within connect_timeout.
//
// Thread safety: as ClientProtocol.
#ifndef RPC_INTERNAL_GRPC_CLIENT_PROTOCOL_H_
#define RPC_INTERNAL_GRPC_CLIENT_PROTOCOL_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "rpc/internal/client_protocol.h"
#include "rpc/internal/grpc_client_transport.h"

namespace nprpc {

class GrpcClientProtocol final : public ClientProtocol {
 public:
  static constexpr absl::string_view kName = "grpc";

  // options.loops must not be null.
  static absl::StatusOr<std::unique_ptr<ClientProtocol>> Create(
      const ClientProtocolOptions& options);
  ~GrpcClientProtocol() override = default;

  absl::string_view name() const override { return kName; }
  std::shared_ptr<Transport> NewTransport(const std::string& address) override;
  void Probe(const std::string& address, absl::AnyInvocable<void(absl::Status)> done) override;
  void Shutdown() override {}

 private:
  explicit GrpcClientProtocol(const ClientProtocolOptions& options);

  const ClientProtocolOptions options_;
  GrpcTransportOptions transport_options_;  // .tls: options_.tls offering "h2"
};

}  // namespace nprpc

#endif  // RPC_INTERNAL_GRPC_CLIENT_PROTOCOL_H_
