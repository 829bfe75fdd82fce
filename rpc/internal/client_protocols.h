// The client protocols a channel can speak, by name (ChannelOptions::protocol).
//
// Thread safety: safe from any thread.
#ifndef RPC_INTERNAL_CLIENT_PROTOCOLS_H_
#define RPC_INTERNAL_CLIENT_PROTOCOLS_H_

#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "rpc/internal/client_protocol.h"

namespace nprpc {

// "baidu_std" or "grpc". InvalidArgument for an unknown name.
absl::StatusOr<std::unique_ptr<ClientProtocol>> CreateClientProtocol(
    absl::string_view name, const ClientProtocolOptions& options);

}  // namespace nprpc

#endif  // RPC_INTERNAL_CLIENT_PROTOCOLS_H_
