#include "rpc/reflection_service.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.pb.h"
#include "proto/grpc/reflection/v1alpha/reflection.pb.h"

namespace nprpc {
namespace {

namespace pb = ::google::protobuf;
using ::grpc::reflection::v1alpha::ServerReflectionRequest;
using ::grpc::reflection::v1alpha::ServerReflectionResponse;

// gRPC's status numbers in ErrorResponse.error_code.
constexpr int kNotFound = static_cast<int>(absl::StatusCode::kNotFound);
constexpr int kUnimplemented = static_cast<int>(absl::StatusCode::kUnimplemented);

// `file` first, then its imports, transitively, each once.
void AddFileAndImports(const pb::FileDescriptor* file, absl::flat_hash_set<std::string>& seen,
                       ServerReflectionResponse& response) {
  if (!seen.insert(file->name()).second) return;
  pb::FileDescriptorProto proto;
  file->CopyTo(&proto);
  proto.SerializeToString(response.mutable_file_descriptor_response()->add_file_descriptor_proto());
  for (int i = 0; i < file->dependency_count(); ++i) {
    AddFileAndImports(file->dependency(i), seen, response);
  }
}

void SetError(int code, std::string message, ServerReflectionResponse& response) {
  response.mutable_error_response()->set_error_code(code);
  response.mutable_error_response()->set_error_message(std::move(message));
}

void Answer(const std::vector<std::string>& services, const pb::DescriptorPool& pool,
            const ServerReflectionRequest& request, ServerReflectionResponse& response) {
  response.set_valid_host(request.host());
  *response.mutable_original_request() = request;
  absl::flat_hash_set<std::string> seen;
  switch (request.message_request_case()) {
    case ServerReflectionRequest::kListServices:
      for (const std::string& name : services) {
        response.mutable_list_services_response()->add_service()->set_name(name);
      }
      return;
    case ServerReflectionRequest::kFileByFilename:
      if (const pb::FileDescriptor* file = pool.FindFileByName(request.file_by_filename())) {
        AddFileAndImports(file, seen, response);
      } else {
        SetError(kNotFound, absl::StrCat("unknown file ", request.file_by_filename()), response);
      }
      return;
    case ServerReflectionRequest::kFileContainingSymbol:
      if (const pb::FileDescriptor* file =
              pool.FindFileContainingSymbol(request.file_containing_symbol())) {
        AddFileAndImports(file, seen, response);
      } else {
        SetError(kNotFound, absl::StrCat("unknown symbol ", request.file_containing_symbol()),
                 response);
      }
      return;
    case ServerReflectionRequest::kFileContainingExtension: {
      const auto& ext = request.file_containing_extension();
      const pb::Descriptor* type = pool.FindMessageTypeByName(ext.containing_type());
      const pb::FieldDescriptor* field =
          type == nullptr ? nullptr : pool.FindExtensionByNumber(type, ext.extension_number());
      if (field != nullptr) {
        AddFileAndImports(field->file(), seen, response);
      } else {
        SetError(kNotFound,
                 absl::StrCat("unknown extension ", ext.extension_number(), " of ",
                              ext.containing_type()),
                 response);
      }
      return;
    }
    case ServerReflectionRequest::kAllExtensionNumbersOfType: {
      const pb::Descriptor* type =
          pool.FindMessageTypeByName(request.all_extension_numbers_of_type());
      if (type == nullptr) {
        SetError(kNotFound, absl::StrCat("unknown type ", request.all_extension_numbers_of_type()),
                 response);
        return;
      }
      std::vector<const pb::FieldDescriptor*> extensions;
      pool.FindAllExtensions(type, &extensions);
      auto* numbers = response.mutable_all_extension_numbers_response();
      numbers->set_base_type_name(type->full_name());
      for (const pb::FieldDescriptor* f : extensions) numbers->add_extension_number(f->number());
      return;
    }
    case ServerReflectionRequest::MESSAGE_REQUEST_NOT_SET:
      break;
  }
  SetError(kUnimplemented, "unknown reflection request", response);
}

// One ServerReflectionInfo stream: read a request, write its answer, until
// the client half-closes. One read or write at a time, on the loop.
class ReflectionStream : public std::enable_shared_from_this<ReflectionStream> {
 public:
  ReflectionStream(std::shared_ptr<ServerStreamCore> stream,
                   std::shared_ptr<const std::vector<std::string>> services,
                   const pb::DescriptorPool* pool)
      : stream_(std::move(stream)), services_(std::move(services)), pool_(pool) {}

  void ReadNext() {
    stream_->Read(&request_, [self = shared_from_this()](bool ok) { self->OnRead(ok); });
  }

 private:
  void OnRead(bool ok) {
    if (!ok) {
      stream_->Finish(absl::OkStatus());
      return;
    }
    ServerReflectionResponse response;
    Answer(*services_, *pool_, request_, response);
    stream_->Write(response, [self = shared_from_this()](bool written) {
      if (written) {
        self->ReadNext();
      } else {
        self->stream_->Finish(absl::CancelledError("the reflection stream ended"));
      }
    });
  }

  const std::shared_ptr<ServerStreamCore> stream_;
  const std::shared_ptr<const std::vector<std::string>> services_;
  const pb::DescriptorPool* const pool_;
  ServerReflectionRequest request_;
};

class ReflectionHandler final : public MethodHandler {
 public:
  ReflectionHandler(std::shared_ptr<const std::vector<std::string>> services,
                    const pb::DescriptorPool* pool)
      : services_(std::move(services)), pool_(pool) {}
  std::unique_ptr<pb::Message> NewRequest() const override {
    return std::make_unique<ServerReflectionRequest>();
  }
  std::unique_ptr<pb::Message> NewResponse() const override {
    return std::make_unique<ServerReflectionResponse>();
  }
  void Call(ServerContext&, const pb::Message&, pb::Message*, Responder done) override {
    done.Finish(
        absl::UnimplementedError("ServerReflectionInfo is a bidirectional streaming method"));
  }
  ExecutionMode execution_mode() const override { return ExecutionMode::kIoLoop; }
  StreamKind stream_kind() const override { return StreamKind::kBidiStreaming; }
  void CallStream(std::shared_ptr<ServerStreamCore> stream) override {
    std::make_shared<ReflectionStream>(std::move(stream), services_, pool_)->ReadNext();
  }

 private:
  const std::shared_ptr<const std::vector<std::string>> services_;
  const pb::DescriptorPool* const pool_;
};

}  // namespace

ReflectionService::ReflectionService(std::vector<std::string> services,
                                     const pb::DescriptorPool* pool)
    : Service(
          ServerReflectionRequest::descriptor()->file()->FindServiceByName("ServerReflection")) {
  (void)AddMethod("ServerReflectionInfo",
                  std::make_unique<ReflectionHandler>(
                      std::make_shared<const std::vector<std::string>>(std::move(services)), pool));
}

}  // namespace nprpc
