// protoc-gen-nprpc: protoc --plugin=protoc-gen-nprpc=PATH --nprpc_out=[OPTIONS:]DIR foo.proto
#include "codegen/generator.h"
#include "google/protobuf/compiler/plugin.h"

int main(int argc, char* argv[]) {
  nprpc::codegen::Generator generator;
  return google::protobuf::compiler::PluginMain(argc, argv, &generator);
}
