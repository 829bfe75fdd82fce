#include "codegen/generator.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/strip.h"
#include "codegen/file_printer.h"
#include "codegen/names.h"
#include "codegen/parameters.h"
#include "codegen/validate.h"
#include "google/protobuf/io/zero_copy_stream.h"

namespace nprpc {
namespace codegen {
namespace {

void Write(google::protobuf::compiler::GeneratorContext* context, const std::string& name,
           const std::string& text) {
  std::unique_ptr<google::protobuf::io::ZeroCopyOutputStream> out(context->Open(name));
  void* data;
  int size;
  size_t written = 0;
  while (written < text.size() && out->Next(&data, &size)) {
    size_t n = std::min(static_cast<size_t>(size), text.size() - written);
    memcpy(data, text.data() + written, n);
    written += n;
    if (n < static_cast<size_t>(size)) out->BackUp(size - static_cast<int>(n));
  }
}

}  // namespace

bool Generator::Generate(const google::protobuf::FileDescriptor* file, const std::string& parameter,
                         google::protobuf::compiler::GeneratorContext* context,
                         std::string* error) const {
  absl::StatusOr<GeneratorParameters> params = ParseGeneratorParameters(parameter);
  if (!params.ok()) {
    *error = std::string(params.status().message());
    return false;
  }
  if (absl::Status s = CheckSupported(file); !s.ok()) {
    // protoc prints "<file>: " before the error itself.
    *error = std::string(absl::StripPrefix(s.message(), file->name() + ": "));
    return false;
  }
  Write(context, HeaderName(file->name()), HeaderFile(file));
  Write(context, SourceName(file->name()), SourceFile(file));
  if (params->generate_mock) Write(context, MockHeaderName(file->name()), MockHeaderFile(file));
  return true;
}

}  // namespace codegen
}  // namespace nprpc
