// TokenAuthenticator: the smallest useful nprpc::Authenticator, for the echo
// examples' --auth_token flag. The client presents a fixed token on each new
// connection; the server accepts exactly that token and names the caller
// "token-holder". A brpc client or server whose Authenticator sends or
// accepts the same string interoperates with it.
//
//   server_options.authenticator = std::make_shared<examples::TokenAuthenticator>("s3cret");
//   channel_options.authenticator = std::make_shared<examples::TokenAuthenticator>("s3cret");
//
// Thread safety: immutable; safe from any thread.
#ifndef EXAMPLES_TOKEN_AUTHENTICATOR_H_
#define EXAMPLES_TOKEN_AUTHENTICATOR_H_

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "rpc/authenticator.h"

namespace examples {

class TokenAuthenticator final : public nprpc::Authenticator {
 public:
  explicit TokenAuthenticator(std::string token) : token_(std::move(token)) {}

  absl::StatusOr<std::string> GenerateCredential() const override { return token_; }

  absl::Status VerifyCredential(absl::string_view credential, const netpoll::SocketAddress& peer,
                                nprpc::AuthContext& context) const override {
    if (credential != token_) {
      return absl::UnauthenticatedError(absl::StrCat("unknown token from ", peer.ToString()));
    }
    context.user = "token-holder";
    return absl::OkStatus();
  }

 private:
  const std::string token_;
};

}  // namespace examples

#endif  // EXAMPLES_TOKEN_AUTHENTICATOR_H_
