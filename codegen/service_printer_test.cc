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
  const google::protobuf::ServiceDescriptor* Chat() {
    const auto* file = protos_.File("ex/chat.proto", R"(
      syntax = "proto3"; package ex;
      message In {} message Out {}
      service Chat {
        rpc Up(stream In) returns (Out);
        rpc Down(In) returns (stream Out);
        rpc Talk(stream In) returns (stream Out);
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

TEST_F(ServicePrinterTest, StreamingStubFormsPerKind) {
  std::string text = StubInterfaceDeclaration(Chat());
  EXPECT_THAT(text, HasSubstr("virtual ::std::unique_ptr<::nprpc::ClientWriter<::ex::In>> Up(\n"
                              "        ::ex::Out* response,"));
  EXPECT_THAT(text, HasSubstr("virtual void Up(::ex::Out* response,\n"
                              "        ::nprpc::ClientWriteReactor<::ex::In>* reactor,"));
  EXPECT_THAT(text, HasSubstr("::nprpc::Task<::nprpc::ClientStreamWriter<::ex::In, ::ex::Out>>\n"
                              "    UpAsync("));
  EXPECT_THAT(text, HasSubstr("::std::unique_ptr<::nprpc::ClientReader<::ex::Out>> Down(\n"
                              "        const ::ex::In& request,"));
  EXPECT_THAT(text, HasSubstr("::nprpc::ClientReadReactor<::ex::Out>* reactor,"));
  EXPECT_THAT(text, HasSubstr("::nprpc::Task<::nprpc::ClientStreamReader<::ex::Out>> DownAsync("));
  EXPECT_THAT(
      text,
      HasSubstr("virtual ::std::unique_ptr<::nprpc::ClientReaderWriter<::ex::In, ::ex::Out>>\n"
                "    Talk(const ::nprpc::CallOptions& options = ::nprpc::CallOptions()) = 0;"));
  EXPECT_THAT(text, HasSubstr("virtual void Talk(::nprpc::ClientBidiReactor<::ex::In, ::ex::Out>* "
                              "reactor,"));
  EXPECT_THAT(text,
              HasSubstr("::nprpc::Task<::nprpc::ClientStream<::ex::In, ::ex::Out>> TalkAsync("));
  EXPECT_THAT(text, HasSubstr("// Streaming methods (rpc/client_streaming.h)"));
  EXPECT_THAT(StubInterfaceDeclaration(Echo()), Not(HasSubstr("Streaming methods")));
}

TEST_F(ServicePrinterTest, StreamingStubCallsOpenStreamsByWireName) {
  std::string text = StubDefinitions(Chat());
  EXPECT_THAT(text, HasSubstr("ClientStreamingCall<::ex::In>(\"Up\", response, options)"));
  EXPECT_THAT(text, HasSubstr("ReactorCall(\"Up\", reactor, nullptr, response, options)"));
  EXPECT_THAT(text, HasSubstr("ServerStreamingCall<::ex::Out>(\"Down\", request, options)"));
  EXPECT_THAT(text, HasSubstr("ReactorCall(\"Down\", reactor, &request, nullptr, options)"));
  EXPECT_THAT(text, HasSubstr("BidiStreamingCall<::ex::In, ::ex::Out>(\"Talk\", options)"));
  EXPECT_THAT(text, HasSubstr("AwaitableBidiStreamingCall<::ex::In, ::ex::Out>(\"Talk\","));
}

TEST_F(ServicePrinterTest, StreamingServerBasesTakeReadersWritersReactorsAndStreams) {
  std::string sync = SyncServiceDeclaration(Chat());
  EXPECT_THAT(sync, HasSubstr("::nprpc::ServerReader<::ex::In>* reader, ::ex::Out* response);"));
  EXPECT_THAT(sync,
              HasSubstr("const ::ex::In& request, ::nprpc::ServerWriter<::ex::Out>* writer);"));
  EXPECT_THAT(sync, HasSubstr("::nprpc::ServerReaderWriter<::ex::Out, ::ex::In>* stream);"));
  std::string callback = CallbackServiceDeclaration(Chat());
  EXPECT_THAT(callback,
              HasSubstr("virtual ::std::unique_ptr<::nprpc::ServerReadReactor<::ex::In>> Up("));
  EXPECT_THAT(callback,
              HasSubstr("virtual ::std::unique_ptr<::nprpc::ServerWriteReactor<::ex::Out>> Down("));
  EXPECT_THAT(
      callback,
      HasSubstr("virtual ::std::unique_ptr<::nprpc::ServerBidiReactor<::ex::In, ::ex::Out>>\n"
                "    Talk(::nprpc::ServerContext& context);"));
  std::string coroutine = CoroutineServiceDeclaration(Chat());
  EXPECT_THAT(coroutine,
              HasSubstr("::nprpc::ServerStreamReader<::ex::In>& reader, ::ex::Out* response);"));
  EXPECT_THAT(coroutine, HasSubstr("::nprpc::ServerStreamWriter<::ex::Out>& writer);"));
  EXPECT_THAT(coroutine, HasSubstr("::nprpc::ServerStream<::ex::In, ::ex::Out>& stream);"));

  std::string definitions = CallbackServiceDefinitions(Chat());
  EXPECT_THAT(definitions, HasSubstr("MakeCallbackStreamHandler<::ex::In, ::ex::Out,\n"
                                     "          ::nprpc::StreamKind::kBidiStreaming>("));
  EXPECT_THAT(definitions,
              HasSubstr("UnimplementedReactor<\n"
                        "      ::nprpc::ServerReadReactor<::ex::In>>(kServiceName, \"Up\")"));
  EXPECT_THAT(SyncServiceDefinitions(Chat()),
              HasSubstr("MakeSyncStreamHandler<::ex::In, ::ex::Out,\n"
                        "          ::nprpc::StreamKind::kClientStreaming>("));
  EXPECT_THAT(CoroutineServiceDefinitions(Chat()),
              HasSubstr("::nprpc::StreamKind::kServerStreaming>("));
}

TEST_F(ServicePrinterTest, MockMocksEveryStreamingForm) {
  std::string text = MockStubDeclaration(Chat());
  EXPECT_THAT(text,
              HasSubstr("MOCK_METHOD(::std::unique_ptr<::nprpc::ClientWriter<::ex::In>>, Up,"));
  EXPECT_THAT(text, HasSubstr("MOCK_METHOD((::nprpc::Task<::nprpc::ClientStreamWriter<::ex::In, "
                              "::ex::Out>>),\n      UpAsync,"));
  EXPECT_THAT(text, HasSubstr("((::nprpc::ClientBidiReactor<::ex::In, ::ex::Out>*),\n"
                              "       const ::nprpc::CallOptions&), (override));"));
}

}  // namespace
}  // namespace codegen
}  // namespace nprpc
