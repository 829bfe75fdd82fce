#include "codegen/comments.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace nprpc {
namespace codegen {
namespace {

template <typename Descriptor>
std::string Leading(const Descriptor* descriptor, absl::string_view indent) {
  google::protobuf::SourceLocation location;
  if (!descriptor->GetSourceLocation(&location)) return "";
  return FormatComment(location.leading_comments, indent);
}

}  // namespace

std::string FormatComment(absl::string_view text, absl::string_view indent) {
  std::vector<std::string> lines;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    std::string l(absl::StripTrailingAsciiWhitespace(line));
    if (!l.empty() && l.back() == '\\') l += '.';
    lines.push_back(std::move(l));
  }
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  size_t first = 0;
  while (first < lines.size() && lines[first].empty()) ++first;
  lines.erase(lines.begin(), lines.begin() + first);
  std::string out;
  for (const std::string& line : lines) {
    if (line.empty()) {
      absl::StrAppend(&out, indent, "//\n");
    } else if (line[0] == ' ') {
      absl::StrAppend(&out, indent, "//", line, "\n");
    } else {
      absl::StrAppend(&out, indent, "// ", line, "\n");
    }
  }
  return out;
}

std::string LeadingComment(const google::protobuf::ServiceDescriptor* service,
                           absl::string_view indent) {
  return Leading(service, indent);
}

std::string LeadingComment(const google::protobuf::MethodDescriptor* method,
                           absl::string_view indent) {
  return Leading(method, indent);
}

}  // namespace codegen
}  // namespace nprpc
