#include "codegen/service_printer.h"

#include <string>

#include "codegen/test_protos.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace nprpc {
namespace codegen {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class ServicePrinterTest : public ::testing::Test {
 protected:
  const google::protobuf::ServiceDescriptor* Echo() {
    const auto* file = protos_.File("ex/echo.proto", R"(
      syntax = "proto3"; package ex.v1;
      message Req { message Inner {} }
      message Resp {}
      // Echoes.
      service EchoService {
        // Sends it back.
        rpc Echo(Req) returns (Resp);
        rpc delete(Req.Inner) returns (Resp);
      }
    )");
    return file->service(0);
  }
  TestProtos protos_;
};

TEST_F(ServicePrinterTest, StubInterfaceHasThreeFormsPerMethod) {
  std::string text = StubInterfaceDeclaration(Echo());
  EXPECT_THAT(text, HasSubstr("virtual ::absl::StatusOr<::ex::v1::Resp> Echo(\n"
                              "        const ::ex::v1::Req& request,\n"
                              "        const ::nprpc::CallOptions& options = "
                              "::nprpc::CallOptions()) = 0;"));
  EXPECT_THAT(text, HasSubstr("virtual void Echo(const ::ex::v1::Req& request,\n"
                              "        ::nprpc::Callback<::ex::v1::Resp> done,\n"
                              "        const ::nprpc::CallOptions& options) = 0;"));
  EXPECT_THAT(text, HasSubstr("::nprpc::Task<::absl::StatusOr<::ex::v1::Resp>> EchoAsync("));
  EXPECT_THAT(text, HasSubstr("    // Sends it back.\n    virtual"));
  EXPECT_THAT(text, HasSubstr("delete_(\n        const ::ex::v1::Req_Inner& request"));
  EXPECT_THAT(text, HasSubstr("deleteAsync("));
}

TEST_F(ServicePrinterTest, StubCallsUseTheWireNames) {
  std::string text = StubDefinitions(Echo());
  EXPECT_THAT(text, HasSubstr("BlockingCall<::ex::v1::Resp>(\"Echo\", request, options)"));
  EXPECT_THAT(text, HasSubstr("BlockingCall<::ex::v1::Resp>(\"delete\", request, options)"));
  EXPECT_THAT(text, HasSubstr("AwaitableCall<::ex::v1::Resp>(\"Echo\""));
}

TEST_F(ServicePrinterTest, ServerBasesDefaultToUnimplemented) {
  EXPECT_THAT(SyncServiceDeclaration(Echo()),
              HasSubstr("virtual ::absl::Status Echo(::nprpc::ServerContext& context,"));
  EXPECT_THAT(CallbackServiceDeclaration(Echo()), HasSubstr("::nprpc::Responder done);"));
  EXPECT_THAT(CoroutineServiceDeclaration(Echo()),
              HasSubstr("virtual ::nprpc::Task<::absl::Status> Echo("));
  std::string sync = SyncServiceDefinitions(Echo());
  EXPECT_THAT(sync, HasSubstr("Unimplemented(kServiceName, \"Echo\")"));
  EXPECT_THAT(sync, HasSubstr("AddGeneratedMethod(*this, \"delete\""));
  EXPECT_THAT(CoroutineServiceDefinitions(Echo()), HasSubstr("co_return"));
}

TEST_F(ServicePrinterTest, ServiceClassCarriesTheFullNameAndComment) {
  std::string text = ServiceDeclaration(Echo());
  EXPECT_THAT(text, HasSubstr("// Echoes.\nclass EchoService final {"));
  EXPECT_THAT(text, HasSubstr("kServiceName = \"ex.v1.EchoService\";"));
  EXPECT_THAT(ServiceDefinitions(Echo()),
              HasSubstr("AssignDescriptors(&::descriptor_table_ex_2fecho_2eproto);"));
}

TEST_F(ServicePrinterTest, MockMocksTheSyncForm) {
  std::string text = MockStubDeclaration(Echo());
  EXPECT_THAT(text, HasSubstr("class MockEchoServiceStub : public EchoService::StubInterface {"));
  EXPECT_THAT(text, HasSubstr("MOCK_METHOD(::absl::StatusOr<::ex::v1::Resp>, Echo,"));
  EXPECT_THAT(text, Not(HasSubstr("MOCK_METHOD(::nprpc::Task")));
}

}  // namespace
}  // namespace codegen
}  // namespace nprpc
