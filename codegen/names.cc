#include "codegen/names.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/compiler/cpp/names.h"

namespace nprpc {
namespace codegen {
namespace {

// Members of the generated service class and its nested classes (and of
// nprpc::Service, which the server bases derive from): a method of one of
// these names would be hidden by them or hide them.
const std::vector<std::string>& MethodReserved() {
  static const auto* reserved = new std::vector<std::string>{"Stub",
                                                             "StubInterface",
                                                             "Service",
                                                             "CallbackService",
                                                             "CoroutineService",
                                                             "NewStub",
                                                             "descriptor",
                                                             "kServiceName",
                                                             "full_name",
                                                             "AddMethod",
                                                             "AddAsyncMethod",
                                                             "FindMethod",
                                                             "method_names",
                                                             "HandlerFromDescriptor",
                                                             "nprpc_core_"};
  return *reserved;
}

// The nested classes: a service may not share their names.
const std::vector<std::string>& ServiceReserved() {
  static const auto* reserved = new std::vector<std::string>{"Stub", "StubInterface", "Service",
                                                             "CallbackService", "CoroutineService"};
  return *reserved;
}

}  // namespace

bool IsCppKeyword(absl::string_view name) {
  static const auto* keywords = new absl::flat_hash_set<absl::string_view>{
      "alignas",       "alignof",     "and",
      "and_eq",        "asm",         "auto",
      "bitand",        "bitor",       "bool",
      "break",         "case",        "catch",
      "char",          "char8_t",     "char16_t",
      "char32_t",      "class",       "compl",
      "concept",       "const",       "consteval",
      "constexpr",     "constinit",   "const_cast",
      "continue",      "co_await",    "co_return",
      "co_yield",      "decltype",    "default",
      "delete",        "do",          "double",
      "dynamic_cast",  "else",        "enum",
      "explicit",      "export",      "extern",
      "false",         "float",       "for",
      "friend",        "goto",        "if",
      "inline",        "int",         "long",
      "mutable",       "namespace",   "new",
      "noexcept",      "not",         "not_eq",
      "nullptr",       "operator",    "or",
      "or_eq",         "private",     "protected",
      "public",        "register",    "reinterpret_cast",
      "requires",      "return",      "short",
      "signed",        "sizeof",      "static",
      "static_assert", "static_cast", "struct",
      "switch",        "template",    "this",
      "thread_local",  "throw",       "true",
      "try",           "typedef",     "typeid",
      "typename",      "union",       "unsigned",
      "using",         "virtual",     "void",
      "volatile",      "wchar_t",     "while",
      "xor",           "xor_eq",      "NULL",
  };
  return keywords->contains(name);
}

std::string Escape(absl::string_view name, const std::vector<std::string>& reserved) {
  std::string out(name);
  while (IsCppKeyword(out) || std::find(reserved.begin(), reserved.end(), out) != reserved.end()) {
    out += '_';
  }
  return out;
}

std::string StripProto(absl::string_view filename) {
  if (absl::EndsWith(filename, ".protodevel")) filename.remove_suffix(11);
  if (absl::EndsWith(filename, ".proto")) filename.remove_suffix(6);
  return std::string(filename);
}

std::string HeaderName(absl::string_view proto_filename) {
  return StripProto(proto_filename) + ".nprpc.h";
}
std::string SourceName(absl::string_view proto_filename) {
  return StripProto(proto_filename) + ".nprpc.cc";
}
std::string MockHeaderName(absl::string_view proto_filename) {
  return StripProto(proto_filename) + "_mock.nprpc.h";
}
std::string PbHeaderName(absl::string_view proto_filename) {
  return StripProto(proto_filename) + ".pb.h";
}

std::string HeaderGuard(absl::string_view proto_filename, absl::string_view suffix) {
  std::string guard = "NPRPC_GENERATED_";
  for (char c : StripProto(proto_filename)) {
    guard += absl::ascii_isalnum(static_cast<unsigned char>(c))
                 ? absl::ascii_toupper(static_cast<unsigned char>(c))
                 : '_';
  }
  absl::StrAppend(&guard, "_", suffix, "_");
  return guard;
}

std::vector<std::string> NamespaceParts(const google::protobuf::FileDescriptor* file) {
  std::vector<std::string> parts;
  if (file->package().empty()) return parts;
  for (absl::string_view part : absl::StrSplit(file->package(), '.')) {
    parts.emplace_back(part);
  }
  return parts;
}

std::string QualifiedNamespace(const google::protobuf::FileDescriptor* file) {
  std::string out;
  for (const std::string& part : NamespaceParts(file)) absl::StrAppend(&out, "::", part);
  return out;
}

std::string QualifiedMessageName(const google::protobuf::Descriptor* message) {
  return google::protobuf::compiler::cpp::QualifiedClassName(message);
}

std::string DescriptorTableName(const google::protobuf::FileDescriptor* file) {
  // protoc's FilenameIdentifier: alphanumerics kept, others as '_' + hex.
  std::string out = "descriptor_table_";
  for (char c : file->name()) {
    if (absl::ascii_isalnum(static_cast<unsigned char>(c))) {
      out += c;
    } else {
      absl::StrAppend(&out, "_", absl::Hex(static_cast<unsigned char>(c)));
    }
  }
  return out;
}

std::string ServiceClassName(const google::protobuf::ServiceDescriptor* service) {
  return Escape(service->name(), ServiceReserved());
}

std::string MethodName(const google::protobuf::MethodDescriptor* method) {
  return Escape(method->name(), MethodReserved());
}

std::string AsyncMethodName(const google::protobuf::MethodDescriptor* method) {
  std::vector<std::string> reserved = MethodReserved();
  const google::protobuf::ServiceDescriptor* service = method->service();
  for (int i = 0; i < service->method_count(); ++i) {
    reserved.push_back(service->method(i)->name());
    reserved.push_back(MethodName(service->method(i)));
  }
  return Escape(method->name() + "Async", reserved);
}

std::string MockStubName(const google::protobuf::ServiceDescriptor* service) {
  return absl::StrCat("Mock", service->name(), "Stub");
}

}  // namespace codegen
}  // namespace nprpc
