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
  return absl::OkStatus();
}

}  // namespace codegen
}  // namespace nprpc
