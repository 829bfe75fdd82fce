#include "rpc/internal/client_protocols.h"

#include "absl/strings/str_cat.h"
#include "rpc/internal/baidu_std_client_protocol.h"
#include "rpc/internal/grpc_client_protocol.h"

namespace nprpc {

absl::StatusOr<std::unique_ptr<ClientProtocol>> CreateClientProtocol(
    absl::string_view name, const ClientProtocolOptions& options) {
  if (name == BaiduStdClientProtocol::kName) return BaiduStdClientProtocol::Create(options);
  if (name == GrpcClientProtocol::kName) return GrpcClientProtocol::Create(options);
  return absl::InvalidArgumentError(
      absl::StrCat("unknown client protocol '", name, "' (known: baidu_std, grpc)"));
}

}  // namespace nprpc
