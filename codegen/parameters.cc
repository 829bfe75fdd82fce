#include "codegen/parameters.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace nprpc {
namespace codegen {
namespace {

absl::StatusOr<bool> ParseBool(absl::string_view key, absl::string_view value) {
  if (value.empty() || value == "true") return true;
  if (value == "false") return false;
  return absl::InvalidArgumentError(
      absl::StrCat("option ", key, " takes true or false, not '", value, "'"));
}

}  // namespace

absl::StatusOr<GeneratorParameters> ParseGeneratorParameters(absl::string_view parameter) {
  GeneratorParameters params;
  for (absl::string_view item : absl::StrSplit(parameter, ',', absl::SkipWhitespace())) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(item, absl::MaxSplits('=', 1));
    if (kv.first == "generate_mock") {
      absl::StatusOr<bool> value = ParseBool(kv.first, kv.second);
      if (!value.ok()) return value.status();
      params.generate_mock = *value;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown option '", kv.first, "' (known: generate_mock)"));
    }
  }
  return params;
}

}  // namespace codegen
}  // namespace nprpc
