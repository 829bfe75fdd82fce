#include "codegen/validate.h"

#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.pb.h"

namespace nprpc {
namespace codegen {

absl::Status CheckSupported(const google::protobuf::FileDescriptor* file) {
  if (file->service_count() > 0 && file->options().cc_generic_services()) {
    return absl::InvalidArgumentError(absl::StrCat(
        file->name(),
        ": option cc_generic_services = true makes protoc generate a class per service in ",
        "the .pb.h that collides with protoc-gen-nprpc's; remove the option"));
  }
  for (int s = 0; s < file->service_count(); ++s) {
    const google::protobuf::ServiceDescriptor* service = file->service(s);
    for (int m = 0; m < service->method_count(); ++m) {
      const google::protobuf::MethodDescriptor* method = service->method(m);
      if (!method->client_streaming() && !method->server_streaming()) continue;
      const char* kind = method->client_streaming() && method->server_streaming()
                             ? "bidirectional streaming"
                         : method->client_streaming() ? "client streaming"
                                                      : "server streaming";
      return absl::InvalidArgumentError(absl::StrCat(
          file->name(), ": service ", service->full_name(), ", method ", method->name(), ": ", kind,
          " methods are not supported by protoc-gen-nprpc yet (unary methods only)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace codegen
}  // namespace nprpc
