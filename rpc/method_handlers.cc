#include "rpc/method_handlers.h"

#include "absl/strings/str_cat.h"
#include "netpoll/logging.h"

namespace nprpc {
namespace codegen_internal {

absl::Status Unimplemented(absl::string_view service, absl::string_view method) {
  return absl::UnimplementedError(absl::StrCat(service, "/", method, " is not implemented"));
}

void AddGeneratedMethod(Service& service, absl::string_view method,
                        std::unique_ptr<MethodHandler> handler) {
  absl::Status status = service.AddMethod(std::string(method), std::move(handler));
  NP_CHECK(status.ok()) << "generated service " << service.full_name() << ": " << status;
}

}  // namespace codegen_internal
}  // namespace nprpc
