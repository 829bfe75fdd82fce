// TestProtos: .proto text -> descriptors (with source info, so comments are
// there), for the plugin's unit tests. Imports resolve among the files added.
#ifndef CODEGEN_TEST_PROTOS_H_
#define CODEGEN_TEST_PROTOS_H_

#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/compiler/importer.h"
#include "google/protobuf/descriptor.h"

namespace nprpc {
namespace codegen {

class TestProtos {
 public:
  TestProtos();
  ~TestProtos();

  // Registers a file for imports and Build().
  void Add(absl::string_view name, absl::string_view text);
  // Parses `name` (added before) and what it imports; InvalidArgument with
  // protoc's messages on errors.
  absl::StatusOr<const google::protobuf::FileDescriptor*> Build(absl::string_view name);
  // Add + Build, aborting the test on errors.
  const google::protobuf::FileDescriptor* File(absl::string_view name, absl::string_view text);

 private:
  class SourceTree;
  class ErrorCollector;
  std::unique_ptr<SourceTree> tree_;
  std::unique_ptr<ErrorCollector> errors_;
  std::unique_ptr<google::protobuf::compiler::Importer> importer_;
};

}  // namespace codegen
}  // namespace nprpc

#endif  // CODEGEN_TEST_PROTOS_H_
