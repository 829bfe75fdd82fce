// Status fidelity across the wire: every absl::StatusCode a handler returns
// reaches an nprpc client unchanged, while the raw answer (what a brpc peer
// reads) carries the brpc number brpc peers expect.
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "netpoll/testing/blocking_client.h"
#include "proto/echo.pb.h"
#include "rpc/channel.h"
#include "rpc/errors.h"
#include "rpc/internal/frame_codec.h"
#include "rpc/server.h"
#include "rpc/service.h"

namespace nprpc {
namespace {

using example::EchoRequest;
using example::EchoResponse;

// test.Status/Fail answers absl::Status(request.code(), request.message()).
std::unique_ptr<Service> NewStatusService() {
  auto service = std::make_unique<Service>("test.Status");
  EXPECT_TRUE(
      service
          ->AddMethod("Fail",
                      MakeUnaryMethodHandler(
                          &EchoRequest::default_instance(), &EchoResponse::default_instance(),
                          [](ServerContext&, const auto& rq, auto*) {
                            const auto& request = static_cast<const EchoRequest&>(rq);
                            return absl::Status(static_cast<absl::StatusCode>(request.code()),
                                                request.message());
                          }))
          .ok());
  return service;
}

class StatusFidelityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.AddService(NewStatusService()).ok());
    ASSERT_TRUE(server_.Start("127.0.0.1:0").ok());
    auto channel = Channel::Create(server_.listen_address().ToString());
    ASSERT_TRUE(channel.ok()) << channel.status();
    channel_ = std::move(*channel);
  }

  Server server_;
  std::unique_ptr<Channel> channel_;
};

TEST_F(StatusFidelityTest, EveryCanonicalCodeSurvivesTheRoundTrip) {
  for (int code = 1; code <= 16; ++code) {
    SCOPED_TRACE(absl::StrCat("code ", code));
    EchoRequest request;
    request.set_code(code);
    request.set_message(absl::StrCat("failure ", code));
    EchoResponse response;
    absl::Status s = channel_->CallMethod("test.Status", "Fail", request, &response);
    EXPECT_EQ(s.code(), static_cast<absl::StatusCode>(code)) << s;
    EXPECT_TRUE(absl::EndsWith(s.message(), absl::StrCat("failure ", code))) << s;
  }
}

// What a brpc client reads: the brpc number of each code, and the code in
// the reserved user field only where the number does not imply it.
TEST_F(StatusFidelityTest, BrpcPeersSeeBrpcNumbers) {
  struct Case {
    absl::StatusCode code;
    int32_t brpc_number;
    bool has_field;
  };
  const Case cases[] = {
      {absl::StatusCode::kNotFound, EINTERNAL, true},
      {absl::StatusCode::kPermissionDenied, ERPCAUTH, true},
      {absl::StatusCode::kUnauthenticated, ERPCAUTH, false},
      {absl::StatusCode::kInternal, EINTERNAL, false},
      {absl::StatusCode::kUnimplemented, ENOMETHOD, false},
      {absl::StatusCode::kCancelled, EINTERNAL, true},
  };
  absl::StatusOr<netpoll::testing::BlockingClient> client =
      netpoll::testing::BlockingClient::Connect(server_.listen_address());
  ASSERT_TRUE(client.ok()) << client.status();
  int64_t id = 1;
  for (const Case& c : cases) {
    SCOPED_TRACE(absl::StatusCodeToString(c.code));
    EchoRequest request;
    request.set_code(static_cast<int>(c.code));
    request.set_message("m");
    netpoll::LinkBuffer payload;
    ASSERT_TRUE(SerializeToLinkBuffer(request, payload).ok());
    RequestHeader header{
        .service_name = "test.Status", .method_name = "Fail", .correlation_id = id++};
    netpoll::LinkBuffer frame;
    ASSERT_TRUE(EncodeRequest(header, std::move(payload), {}, frame).ok());
    ASSERT_TRUE(client->SendAll(frame.ToString()).ok());
    absl::StatusOr<std::string> head = client->ReadExactly(kBaiduStdHeaderSize);
    ASSERT_TRUE(head.ok()) << head.status();
    const auto* h = reinterpret_cast<const unsigned char*>(head->data());
    uint32_t body = (uint32_t{h[4]} << 24) | (uint32_t{h[5]} << 16) | (uint32_t{h[6]} << 8) | h[7];
    absl::StatusOr<std::string> rest = client->ReadExactly(body);
    ASSERT_TRUE(rest.ok()) << rest.status();
    netpoll::LinkBuffer in;
    in.WriteString(*head + *rest);
    DecodeResult r = FrameDecoder().Decode(in);
    ASSERT_TRUE(r.has_frame()) << r.status();
    DecodedFrame answer = r.TakeFrame();
    EXPECT_EQ(answer.meta.response().error_code(), c.brpc_number);
    const std::string* field = FindUserField(answer.meta, kStatusCodeField);
    EXPECT_EQ(field != nullptr, c.has_field);
    if (field != nullptr) {
      EXPECT_EQ(*field, absl::StrCat(static_cast<int>(c.code)));
    }
  }
}

}  // namespace
}  // namespace nprpc
