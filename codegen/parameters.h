// GeneratorParameters: the options of protoc-gen-nprpc, parsed from protoc's
// parameter string (`--nprpc_out=generate_mock=true:DIR` or
// `--nprpc_opt=generate_mock=true`).
//
//   absl::StatusOr<GeneratorParameters> p = ParseGeneratorParameters("generate_mock=true");
//
// Options (comma-separated key=value; booleans take true/false, a bare key
// means true):
//   generate_mock   also write foo_mock.nprpc.h with a gMock MockXxxStub per
//                   service (default false).
#ifndef CODEGEN_PARAMETERS_H_
#define CODEGEN_PARAMETERS_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace nprpc {
namespace codegen {

struct GeneratorParameters {
  bool generate_mock = false;
};

// InvalidArgument naming the bad option for unknown keys or bad values.
absl::StatusOr<GeneratorParameters> ParseGeneratorParameters(absl::string_view parameter);

}  // namespace codegen
}  // namespace nprpc

#endif  // CODEGEN_PARAMETERS_H_
