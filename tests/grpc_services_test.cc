// gRPC's standard services on an nprpc server, called by real gRPC C++
// clients (Debian's libgrpc++): grpc.health.v1.Health (Check and Watch,
// driven by the server's state) and grpc.reflection.v1alpha server
// reflection (rpc/health_service.h, rpc/reflection_service.h).
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/echo.pb.h"
#include "proto/grpc/health/v1/health.grpc.pb.h"
#include "proto/grpc/health/v1/health.pb.h"
#include "proto/grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "proto/grpc/reflection/v1alpha/reflection.pb.h"
#include "rpc/channel.h"
#include "rpc/health_service.h"
#include "rpc/server.h"
#include "tests/harness/echo_service.h"

namespace nprpc {
namespace {

using ::grpc::health::v1::Health;
using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;
using ::grpc::reflection::v1alpha::ServerReflection;
using ::grpc::reflection::v1alpha::ServerReflectionRequest;
using ::grpc::reflection::v1alpha::ServerReflectionResponse;

class GrpcServicesTest : public ::testing::Test {
 protected:
  void StartServer(bool reflection) {
    ServerOptions options;
    options.serve_reflection = reflection;
    server_ = std::make_unique<Server>(options);
    ASSERT_TRUE(server_->AddService(testing::NewEchoService()).ok());
    ASSERT_TRUE(server_->Start("127.0.0.1:0").ok());
    channel_ = grpc::CreateChannel(server_->listen_address().ToString(),
                                   grpc::InsecureChannelCredentials());
  }

  HealthCheckResponse::ServingStatus Check(const std::string& service, grpc::Status* status) {
    HealthCheckRequest request;
    request.set_service(service);
    HealthCheckResponse response;
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    *status = Health::NewStub(channel_)->Check(&context, request, &response);
    return response.status();
  }

  std::unique_ptr<Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(GrpcServicesTest, HealthCheckAnswersServingForTheServerAndItsServices) {
  StartServer(/*reflection=*/false);
  grpc::Status status;
  EXPECT_EQ(Check("", &status), HealthCheckResponse::SERVING);
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(Check("example.EchoService", &status), HealthCheckResponse::SERVING);
  EXPECT_TRUE(status.ok()) << status.error_message();
  Check("no.such.Service", &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  server_->health()->SetServingStatus("example.EchoService", false);
  EXPECT_EQ(Check("example.EchoService", &status), HealthCheckResponse::NOT_SERVING);
}

TEST_F(GrpcServicesTest, HealthCheckIsUnarySoBaiduStdCallsItToo) {
  StartServer(/*reflection=*/false);
  auto channel = Channel::Create(server_->listen_address().ToString());
  ASSERT_TRUE(channel.ok()) << channel.status();
  HealthCheckRequest request;
  HealthCheckResponse response;
  absl::Status s = (*channel)->CallMethod("grpc.health.v1.Health", "Check", request, &response);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);
}

TEST_F(GrpcServicesTest, HealthWatchStreamsChangesAndEndsWithNotServingAtShutdown) {
  StartServer(/*reflection=*/false);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  HealthCheckRequest request;
  request.set_service("example.EchoService");
  std::unique_ptr<grpc::ClientReader<HealthCheckResponse>> reader =
      Health::NewStub(channel_)->Watch(&context, request);
  HealthCheckResponse response;
  ASSERT_TRUE(reader->Read(&response));
  EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);
  server_->health()->SetServingStatus("example.EchoService", false);
  ASSERT_TRUE(reader->Read(&response));
  EXPECT_EQ(response.status(), HealthCheckResponse::NOT_SERVING);
  server_->health()->SetServingStatus("example.EchoService", true);
  ASSERT_TRUE(reader->Read(&response));
  EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);
  EXPECT_EQ(server_->health()->watchers(), 1u);

  // Shutdown tells the watcher NOT_SERVING and ends its stream, so the
  // drain does not wait for it.
  std::thread stopper([this] { server_->Shutdown(absl::Seconds(10)); });
  ASSERT_TRUE(reader->Read(&response));
  EXPECT_EQ(response.status(), HealthCheckResponse::NOT_SERVING);
  EXPECT_FALSE(reader->Read(&response));
  const grpc::Status status = reader->Finish();
  EXPECT_TRUE(status.ok()) << status.error_code() << " " << status.error_message();
  stopper.join();
  EXPECT_EQ(server_->health()->watchers(), 0u);
}

TEST_F(GrpcServicesTest, CancelledHealthWatchIsForgotten) {
  StartServer(/*reflection=*/false);
  auto context = std::make_unique<grpc::ClientContext>();
  HealthCheckRequest request;
  std::unique_ptr<grpc::ClientReader<HealthCheckResponse>> reader =
      Health::NewStub(channel_)->Watch(context.get(), request);
  HealthCheckResponse response;
  ASSERT_TRUE(reader->Read(&response));
  EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);
  EXPECT_EQ(server_->health()->watchers(), 1u);
  context->TryCancel();
  EXPECT_FALSE(reader->Read(&response));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  // The server hears the RST_STREAM on its loop; its OnCancel drops the
  // watcher. A call on the same connection after it is answered later.
  grpc::Status status;
  Check("", &status);
  for (int i = 0; i < 1000 && server_->health()->watchers() != 0; ++i) {
    Check("", &status);  // each round trip lets the loop run the cancel
  }
  EXPECT_EQ(server_->health()->watchers(), 0u);
}

TEST_F(GrpcServicesTest, ReflectionListsServicesAndServesTheirFiles) {
  StartServer(/*reflection=*/true);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  std::unique_ptr<grpc::ClientReaderWriter<ServerReflectionRequest, ServerReflectionResponse>>
      stream = ServerReflection::NewStub(channel_)->ServerReflectionInfo(&context);

  ServerReflectionRequest list;
  list.set_list_services("");
  ASSERT_TRUE(stream->Write(list));
  ServerReflectionResponse response;
  ASSERT_TRUE(stream->Read(&response));
  std::vector<std::string> names;
  for (const auto& service : response.list_services_response().service()) {
    names.push_back(service.name());
  }
  EXPECT_EQ(names, (std::vector<std::string>{"example.EchoService", "grpc.health.v1.Health",
                                             "grpc.reflection.v1alpha.ServerReflection"}));

  ServerReflectionRequest symbol;
  symbol.set_file_containing_symbol("example.EchoService");
  ASSERT_TRUE(stream->Write(symbol));
  ASSERT_TRUE(stream->Read(&response));
  ASSERT_EQ(response.file_descriptor_response().file_descriptor_proto_size(), 1);
  google::protobuf::FileDescriptorProto file;
  ASSERT_TRUE(file.ParseFromString(response.file_descriptor_response().file_descriptor_proto(0)));
  EXPECT_EQ(file.name(), "proto/echo.proto");
  ASSERT_GE(file.service_size(), 1);
  EXPECT_EQ(file.service(0).name(), "EchoService");

  ServerReflectionRequest missing;
  missing.set_file_by_filename("no/such.proto");
  ASSERT_TRUE(stream->Write(missing));
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_EQ(response.error_response().error_code(), static_cast<int>(grpc::StatusCode::NOT_FOUND));

  ASSERT_TRUE(stream->WritesDone());
  EXPECT_FALSE(stream->Read(&response));
  const grpc::Status status = stream->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
}

TEST_F(GrpcServicesTest, ReflectionIsOffByDefault) {
  StartServer(/*reflection=*/false);
  grpc::ClientContext context;
  auto stream = ServerReflection::NewStub(channel_)->ServerReflectionInfo(&context);
  ServerReflectionRequest list;
  list.set_list_services("");
  stream->Write(list);
  ServerReflectionResponse response;
  EXPECT_FALSE(stream->Read(&response));
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::UNIMPLEMENTED);
}

}  // namespace
}  // namespace nprpc
