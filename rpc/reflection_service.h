// ReflectionService: gRPC's server reflection,
// grpc.reflection.v1alpha.ServerReflection
// (proto/grpc/reflection/v1alpha/reflection.proto), so grpcurl, Postman and
// other tools list an nprpc server's services and call them without their
// .proto files. Opt-in: ServerOptions::serve_reflection (it shows every
// service's schema to anyone who can connect).
//
// ServerReflectionInfo is a bidirectional stream (gRPC only); each request
// gets one response, in order:
//   list_services                  the server's services (full names)
//   file_by_filename               that file and, transitively, its imports,
//   file_containing_symbol         as serialized FileDescriptorProtos
//   file_containing_extension
//   all_extension_numbers_of_type  the extension numbers of a message
// and error_response NOT_FOUND for a name the descriptor pool does not know,
// UNIMPLEMENTED for a request kind it does not know. Schemas come from the
// generated descriptor pool (every linked .proto).
//
// Thread safety: immutable after construction; used from any thread.
#ifndef RPC_REFLECTION_SERVICE_H_
#define RPC_REFLECTION_SERVICE_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"
#include "rpc/service.h"

namespace nprpc {

class ReflectionService final : public Service {
 public:
  static constexpr absl::string_view kServiceName = "grpc.reflection.v1alpha.ServerReflection";

  // `services`: what list_services answers (the server adds its own
  // services, this one included). `pool` (not owned) must outlive the
  // service; by default the generated pool.
  explicit ReflectionService(std::vector<std::string> services,
                             const google::protobuf::DescriptorPool* pool =
                                 google::protobuf::DescriptorPool::generated_pool());
};

}  // namespace nprpc

#endif  // RPC_REFLECTION_SERVICE_H_
