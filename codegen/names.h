// C++ names of what protoc-gen-nprpc generates, derived from descriptors.
//
// Every identifier taken from a .proto is escaped when it would not compile
// or would collide with a generated name: C++ keywords get a trailing '_'
// (`delete` -> `delete_`, as protoc does for messages and packages), and so
// do method names equal to generated members (`Stub`, `Service`, ...) and
// service names equal to the nested classes. Message types are spelled
// exactly as protoc's C++ generator spells them (`::pkg::Outer_Inner`).
//
// Pure functions; safe from any thread.
#ifndef CODEGEN_NAMES_H_
#define CODEGEN_NAMES_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"

namespace nprpc {
namespace codegen {

// True for C++20 keywords and alternative tokens.
bool IsCppKeyword(absl::string_view name);

// "foo.proto" -> "foo", "a/b/foo.proto" -> "a/b/foo".
std::string StripProto(absl::string_view filename);
// Generated file names of a .proto: "a/b/foo.nprpc.h", ".nprpc.cc",
// "_mock.nprpc.h", and protoc's "a/b/foo.pb.h".
std::string HeaderName(absl::string_view proto_filename);
std::string SourceName(absl::string_view proto_filename);
std::string MockHeaderName(absl::string_view proto_filename);
std::string PbHeaderName(absl::string_view proto_filename);
// "NPRPC_GENERATED_A_B_FOO_NPRPC_H_" for "a/b/foo.proto" and suffix
// "NPRPC_H".
std::string HeaderGuard(absl::string_view proto_filename, absl::string_view suffix);

// "::a::b" for package "a.b"; "" for no package. Like protoc 3.21, which
// does not escape keywords in package names (such a package does not
// compile with protoc's own output either).
std::string QualifiedNamespace(const google::protobuf::FileDescriptor* file);
// The C++ namespace components, for opening: {"a", "b"}.
std::vector<std::string> NamespaceParts(const google::protobuf::FileDescriptor* file);

// "::pkg::Outer_Inner", exactly protoc's spelling.
std::string QualifiedMessageName(const google::protobuf::Descriptor* message);

// The global the .pb.h declares for the file's descriptors:
// "descriptor_table_a_2fb_2eproto" for "a/b.proto".
std::string DescriptorTableName(const google::protobuf::FileDescriptor* file);

// The generated class of a service (escaped).
std::string ServiceClassName(const google::protobuf::ServiceDescriptor* service);
// The stub/base member of a method, and the awaitable stub member (its name
// + "Async"), escaped against keywords, generated members and the service's
// other methods.
std::string MethodName(const google::protobuf::MethodDescriptor* method);
std::string AsyncMethodName(const google::protobuf::MethodDescriptor* method);
// "Mock" + service name + "Stub".
std::string MockStubName(const google::protobuf::ServiceDescriptor* service);

// The name escaping rule, exposed for tests: appends '_' while `name` is a
// keyword or one of `reserved`.
std::string Escape(absl::string_view name, const std::vector<std::string>& reserved);

}  // namespace codegen
}  // namespace nprpc

#endif  // CODEGEN_NAMES_H_
