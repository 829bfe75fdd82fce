// Authenticator: who may call a server, as brpc's Authenticator has it. The
// client generates a credential that travels in the request meta's
// authentication_data (baidu_std) or the Authorization header (HTTP); the
// server verifies it once per connection, on the connection's first request,
// and every later call of that connection carries the AuthContext the
// verification filled. A failure answers ERPCAUTH (1004) and closes the
// connection. A brpc client configured with an authenticator sends the same
// bytes, so the two interoperate.
//
//   class TokenAuthenticator : public nprpc::Authenticator {
//    public:
//     absl::StatusOr<std::string> GenerateCredential() const override { return token_; }
//     absl::Status VerifyCredential(absl::string_view credential,
//                                   const netpoll::SocketAddress& peer,
//                                   nprpc::AuthContext& context) const override {
//       if (credential != token_) return absl::UnauthenticatedError("bad token");
//       context.user = "batch-jobs";
//       return absl::OkStatus();
//     }
//    private:
//     std::string token_ = "s3cret";
//   };
//   server_options.authenticator = std::make_shared<TokenAuthenticator>();
//   channel_options.authenticator = server_options.authenticator;
//
// Per-call credentials (a bearer token that changes per call) belong in
// metadata and an interceptor (rpc/interceptor.h), not here.
//
// Thread safety: both methods are called from any thread (client calls,
// server I/O loops) and must be safe to call concurrently. VerifyCredential()
// runs on the server's I/O loop and GenerateCredential() on the client's (or
// the thread that acquired a pooled connection): both should be quick.
#ifndef RPC_AUTHENTICATOR_H_
#define RPC_AUTHENTICATOR_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "netpoll/socket_address.h"
#include "netpoll/tls_context.h"

namespace nprpc {

// What a verified credential says about the caller (brpc's AuthContext),
// and what TLS established about the connection.
struct AuthContext {
  std::string user;
  std::string group;
  std::string roles;
  std::string starter;
  bool is_service = false;
  // The connection's TLS handshake (netpoll/tls_context.h): peer certificate
  // subject and SANs and whether it verified (mTLS), ALPN, version, cipher.
  // Null on a plaintext connection. Set before VerifyCredential() runs, so an
  // authenticator may decide by the certificate; on a TLS connection of a
  // server without an authenticator the AuthContext carries only this.
  std::shared_ptr<const netpoll::TlsInfo> tls{};
};

class Authenticator {
 public:
  virtual ~Authenticator() = default;
  // Client: the credential a new connection presents. An error fails the
  // calls waiting for that connection with ERPCAUTH.
  virtual absl::StatusOr<std::string> GenerateCredential() const = 0;
  // Server: accepts `credential` from `peer` (OK) and fills `context`, or
  // refuses it (any error: the call is answered ERPCAUTH with its message and
  // the connection closes).
  virtual absl::Status VerifyCredential(absl::string_view credential,
                                        const netpoll::SocketAddress& peer,
                                        AuthContext& context) const = 0;
};

}  // namespace nprpc

#endif  // RPC_AUTHENTICATOR_H_
