// Generator: protoc-gen-nprpc's CodeGenerator. For each .proto protoc asks
// it about, it checks what is supported (validate.h), parses the options
// (parameters.h) and writes foo.nprpc.h, foo.nprpc.cc and, with
// generate_mock=true, foo_mock.nprpc.h (file_printer.h).
//
// Errors go back to protoc, which prints them and exits non-zero.
#ifndef CODEGEN_GENERATOR_H_
#define CODEGEN_GENERATOR_H_

#include <cstdint>
#include <string>

#include "google/protobuf/compiler/code_generator.h"
#include "google/protobuf/descriptor.h"

namespace nprpc {
namespace codegen {

class Generator : public google::protobuf::compiler::CodeGenerator {
 public:
  bool Generate(const google::protobuf::FileDescriptor* file, const std::string& parameter,
                google::protobuf::compiler::GeneratorContext* context,
                std::string* error) const override;
  uint64_t GetSupportedFeatures() const override { return FEATURE_PROTO3_OPTIONAL; }
};

}  // namespace codegen
}  // namespace nprpc

#endif  // CODEGEN_GENERATOR_H_
