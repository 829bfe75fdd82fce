// Compression and checksums end to end: the Channel against the real
// nprpc::Server running example.EchoService, over every connection type.
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "proto/echo.pb.h"
#include "rpc/channel.h"
#include "rpc/errors.h"
#include "rpc/server.h"
#include "tests/harness/echo_service.h"

namespace nprpc {
namespace {

using example::EchoRequest;
using example::EchoResponse;

class CompressionTest : public ::testing::TestWithParam<CompressType> {
 protected:
  void SetUp() override {
    server_ = std::make_unique<Server>();
    ASSERT_TRUE(server_->AddService(testing::NewEchoService()).ok());
    ASSERT_TRUE(server_->Start("127.0.0.1:0").ok());
    auto channel = Channel::Create(server_->listen_address().ToString());
    ASSERT_TRUE(channel.ok());
    channel_ = std::move(*channel);
  }
  void TearDown() override {
    channel_.reset();
    server_->Shutdown(absl::Seconds(1));
  }
  std::unique_ptr<Server> server_;
  std::unique_ptr<Channel> channel_;
};

INSTANTIATE_TEST_SUITE_P(Types, CompressionTest,
                         ::testing::Values(CompressType::kNone, CompressType::kSnappy,
                                           CompressType::kGzip, CompressType::kZlib));

TEST_P(CompressionTest, CompressedRequestWithChecksumRoundTripsLargeAndSmallPayloads) {
  for (size_t size : {size_t{0}, size_t{300}, size_t{64} << 10, size_t{1} << 20}) {
    EchoRequest request;
    request.set_message(std::string(size, 'c'));
    netpoll::LinkBuffer attachment;
    attachment.WriteBinary("raw attachment, never compressed");
    CallInfo info;
    CallOptions options;
    options.compress_type = GetParam();
    options.checksum = true;
    options.request_attachment = &attachment;
    options.info = &info;
    EchoResponse response;
    absl::Status status =
        channel_->CallMethod("example.EchoService", "Echo", request, &response, options);
    ASSERT_TRUE(status.ok()) << status << " size " << size;
    EXPECT_EQ(response.message().size(), size);
    EXPECT_EQ(info.response_attachment.ToString(), "raw attachment, never compressed");
  }
}

TEST_P(CompressionTest, GzippedResponseIsDecompressedByTheClient) {
  EchoRequest request;
  request.set_message(std::string(300, 'r'));
  request.set_code(testing::kGzipResponseCode);  // the server gzips its answer
  CallOptions options;
  options.compress_type = GetParam();
  EchoResponse response;
  ASSERT_TRUE(
      channel_->CallMethod("example.EchoService", "Echo", request, &response, options).ok());
  EXPECT_EQ(response.message(), std::string(300, 'r'));
}

}  // namespace
}  // namespace nprpc
