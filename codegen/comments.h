// The comments of .proto services and methods, as C++ comment lines for the
// generated header. Pure; safe from any thread.
#ifndef CODEGEN_COMMENTS_H_
#define CODEGEN_COMMENTS_H_

#include <string>

#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"

namespace nprpc {
namespace codegen {

// Formats protoc's comment text ("leading_comments": lines after "//" or
// inside "/* */") as "<indent>// ..." lines, each ending in '\n'; "" for
// empty text. Trailing blank lines and trailing spaces go; a line ending in
// a backslash gets a '.' so it cannot continue the comment.
std::string FormatComment(absl::string_view text, absl::string_view indent);

// The leading comment of a service or method (needs the file's source info,
// which protoc passes to plugins), formatted as above.
std::string LeadingComment(const google::protobuf::ServiceDescriptor* service,
                           absl::string_view indent);
std::string LeadingComment(const google::protobuf::MethodDescriptor* method,
                           absl::string_view indent);

}  // namespace codegen
}  // namespace nprpc

#endif  // CODEGEN_COMMENTS_H_
