#include "rpc/stream_handlers.h"

#include "absl/strings/str_cat.h"

namespace nprpc {
namespace codegen_internal {

absl::Status StreamingOverUnary(const ServerContext& context, StreamKind kind) {
  return absl::UnimplementedError(
      absl::StrCat(context.service_name(), "/", context.method_name(), " is a ",
                   StreamKindName(kind), " method; call it over a protocol with streams (gRPC)"));
}

absl::Status MissingStreamRequest(const ServerContext& context) {
  return absl::InternalError(absl::StrCat("the client of server-streaming method ",
                                          context.service_name(), "/", context.method_name(),
                                          " half-closed without sending its request"));
}

}  // namespace codegen_internal
}  // namespace nprpc
