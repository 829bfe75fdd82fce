// The per-service sections of the generated files. Each function prints one
// section and returns it; they are pure (descriptor in, text out) and tested
// alone in service_printer_test.cc; file_printer.h assembles them.
//
// For `service EchoService { rpc Echo(EchoRequest) returns (EchoResponse); }`
// in package `example` the header gets:
//
//   class EchoService final {
//    public:
//     static constexpr ::absl::string_view kServiceName = "example.EchoService";
//     static const ::google::protobuf::ServiceDescriptor* descriptor();
//     class StubInterface { ... };   // Echo (sync), Echo (callback), EchoAsync
//     class Stub final : public StubInterface { ... };
//     static ::std::unique_ptr<Stub> NewStub(::nprpc::Channel*, ...);
//     class Service : public ::nprpc::Service { ... };           // sync
//     class CallbackService : public ::nprpc::Service { ... };   // Responder
//     class CoroutineService : public ::nprpc::Service { ... };  // Task
//   };
//
// and the .cc their definitions; the mock header MockEchoServiceStub.
// Streaming methods get other signatures in each section (readers/writers,
// reactors, coroutine streams: rpc/server_streaming.h, rpc/client_streaming.h)
// and handlers of rpc/stream_handlers.h.
#ifndef CODEGEN_SERVICE_PRINTER_H_
#define CODEGEN_SERVICE_PRINTER_H_

#include <string>

#include "google/protobuf/descriptor.h"

namespace nprpc {
namespace codegen {

// ------------------------------------------------------------ Header sections
// Each is the text of one nested class (indented one level, for inside the
// service class) or, for ServiceDeclaration, the whole service class.

std::string StubInterfaceDeclaration(const google::protobuf::ServiceDescriptor* service);
std::string StubDeclaration(const google::protobuf::ServiceDescriptor* service);
std::string SyncServiceDeclaration(const google::protobuf::ServiceDescriptor* service);
std::string CallbackServiceDeclaration(const google::protobuf::ServiceDescriptor* service);
std::string CoroutineServiceDeclaration(const google::protobuf::ServiceDescriptor* service);
std::string ServiceDeclaration(const google::protobuf::ServiceDescriptor* service);

// ------------------------------------------------------------ Source sections

std::string StubDefinitions(const google::protobuf::ServiceDescriptor* service);
std::string SyncServiceDefinitions(const google::protobuf::ServiceDescriptor* service);
std::string CallbackServiceDefinitions(const google::protobuf::ServiceDescriptor* service);
std::string CoroutineServiceDefinitions(const google::protobuf::ServiceDescriptor* service);
// descriptor() and all of the above.
std::string ServiceDefinitions(const google::protobuf::ServiceDescriptor* service);

// ------------------------------------------------------------ Mock header

// class Mock<Service>Stub: gMock's MOCK_METHOD for each method's sync form;
// the callback and awaitable forms answer through it.
std::string MockStubDeclaration(const google::protobuf::ServiceDescriptor* service);

}  // namespace codegen
}  // namespace nprpc

#endif  // CODEGEN_SERVICE_PRINTER_H_
