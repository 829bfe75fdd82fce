#include "codegen/test_protos.h"

#include <cstdlib>
#include <iostream>
#include <string>

#include "absl/strings/str_cat.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace nprpc {
namespace codegen {

class TestProtos::SourceTree : public google::protobuf::compiler::SourceTree {
 public:
  google::protobuf::io::ZeroCopyInputStream* Open(const std::string& filename) override {
    auto it = files_.find(filename);
    if (it == files_.end()) return nullptr;
    return new google::protobuf::io::ArrayInputStream(it->second.data(),
                                                      static_cast<int>(it->second.size()));
  }
  absl::flat_hash_map<std::string, std::string> files_;
};

class TestProtos::ErrorCollector : public google::protobuf::compiler::MultiFileErrorCollector {
 public:
  void AddError(const std::string& filename, int line, int column,
                const std::string& message) override {
    absl::StrAppend(&text, filename, ":", line + 1, ":", column + 1, ": ", message, "\n");
  }
  std::string text;
};

TestProtos::TestProtos()
    : tree_(std::make_unique<SourceTree>()),
      errors_(std::make_unique<ErrorCollector>()),
      importer_(
          std::make_unique<google::protobuf::compiler::Importer>(tree_.get(), errors_.get())) {}

TestProtos::~TestProtos() = default;

void TestProtos::Add(absl::string_view name, absl::string_view text) {
  tree_->files_[std::string(name)] = std::string(text);
}

absl::StatusOr<const google::protobuf::FileDescriptor*> TestProtos::Build(absl::string_view name) {
  errors_->text.clear();
  const google::protobuf::FileDescriptor* file = importer_->Import(std::string(name));
  if (file == nullptr) return absl::InvalidArgumentError(errors_->text);
  return file;
}

const google::protobuf::FileDescriptor* TestProtos::File(absl::string_view name,
                                                         absl::string_view text) {
  Add(name, text);
  absl::StatusOr<const google::protobuf::FileDescriptor*> file = Build(name);
  if (!file.ok()) {
    std::cerr << "bad test proto " << name << ": " << file.status() << "\n";
    std::abort();
  }
  return *file;
}

}  // namespace codegen
}  // namespace nprpc
