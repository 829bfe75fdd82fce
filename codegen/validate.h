// What protoc-gen-nprpc refuses to generate, with a message naming the file,
// service and method. Pure; safe from any thread.
#ifndef CODEGEN_VALIDATE_H_
#define CODEGEN_VALIDATE_H_

#include "absl/status/status.h"
#include "google/protobuf/descriptor.h"

namespace nprpc {
namespace codegen {

// InvalidArgument for `option cc_generic_services = true`: protoc would then
// put a class of the service's name into foo.pb.h, colliding with the
// generated one. Every method kind, streaming too, is supported.
absl::Status CheckSupported(const google::protobuf::FileDescriptor* file);

}  // namespace codegen
}  // namespace nprpc

#endif  // CODEGEN_VALIDATE_H_
