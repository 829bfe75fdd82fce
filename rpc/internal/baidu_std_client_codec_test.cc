#include "rpc/internal/baidu_std_client_codec.h"

#include <fstream>
#include <sstream>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "netpoll/link_buffer.h"
#include "proto/echo.pb.h"
#include "rpc/errors.h"
#include "rpc/internal/client_call.h"
#include "rpc/internal/frame_codec.h"
#include "rpc/internal/transport.h"

namespace nprpc {
namespace {

DecodedFrame ErrorAnswer(int64_t id, int32_t code, const std::string& text) {
  ResponseHeader header;
  header.correlation_id = id;
  header.error_code = code;
  header.error_text = text;
  netpoll::LinkBuffer bytes;
  EXPECT_TRUE(EncodeResponse(header, {}, {}, bytes).ok());
  DecodeResult r = FrameDecoder().Decode(bytes);
  EXPECT_TRUE(r.has_frame()) << r.status();
  return r.TakeFrame();
}

absl::Status Complete(DecodedFrame frame) {
  example::EchoResponse response;
  absl::Status result;
  ClientCall call(frame.meta.correlation_id(), &response, nullptr,
                  [&](absl::Status s) { result = std::move(s); });
  EXPECT_TRUE(CompleteWithBaiduStdResponse(call, std::move(frame), 1 << 20));
  return result;
}

TEST(BaiduStdClientCodecTest, KeepsAnErrorTextOfUsualSize) {
  absl::Status s = Complete(ErrorAnswer(7, EINTERNAL, "[127.0.0.1:1][E2001]boom"));
  EXPECT_EQ(ErrorCodeOf(s), EINTERNAL);
  EXPECT_EQ(s.message(), "[127.0.0.1:1][E2001]boom");
}

// A peer cannot make the caller hold (or log) a huge status message.
TEST(BaiduStdClientCodecTest, BoundsAHugeErrorText) {
  absl::Status s = Complete(ErrorAnswer(8, 4242, std::string(32 << 20, 'e')));
  EXPECT_EQ(ErrorCodeOf(s), 4242);
  EXPECT_LT(s.message().size(), kMaxErrorText + 64);
  EXPECT_TRUE(absl::EndsWith(s.message(), "...(33554432 bytes)")) << s.message().substr(4090);
}

std::string ReadVector(const std::string& name) {
  const std::string path = "tests/data/baidu_std/" + name + "/request.bin";
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

ClientRequest EchoRequestOf(const std::string& message) {
  ClientRequest request;
  request.service = "example.EchoService";
  request.method = "Echo";
  example::EchoRequest echo;
  echo.set_message(message);
  EXPECT_TRUE(SerializeToLinkBuffer(echo, request.payload).ok());
  return request;
}

// A connection's first request, as our client writes it, is byte for byte
// the one a brpc 1.17 client with an authenticator wrote (the auth_accepted
// capture: correlation_id 4294967298, Echo("hello"), no timeout).
TEST(BaiduStdClientCodecTest, CredentialFrameIsByteIdenticalToBrpcs) {
  netpoll::LinkBuffer frame;
  ASSERT_TRUE(
      EncodeBaiduStdRequest(4294967298, EchoRequestOf("hello"), absl::InfiniteDuration(), frame)
          .ok());
  ASSERT_TRUE(AddBaiduStdCredential("nprpc-test-credential", frame).ok());
  EXPECT_TRUE(frame.ToString() == ReadVector("auth_accepted"));
}

TEST(BaiduStdClientCodecTest, AddingACredentialKeepsAttachmentChecksumAndTimeout) {
  ClientRequest request = EchoRequestOf("payload");
  request.attachment.WriteBinary("attached");
  request.checksum = true;
  request.compress_type = CompressType::kGzip;
  netpoll::LinkBuffer frame;
  ASSERT_TRUE(EncodeBaiduStdRequest(9, request, absl::Milliseconds(250), frame).ok());
  ASSERT_TRUE(AddBaiduStdCredential("token", frame).ok());
  DecodeResult r = FrameDecoder().Decode(frame);
  ASSERT_TRUE(r.has_frame()) << r.status();
  EXPECT_TRUE(frame.empty());
  DecodedFrame decoded = r.TakeFrame();
  EXPECT_EQ(decoded.meta.authentication_data(), "token");
  EXPECT_EQ(decoded.meta.correlation_id(), 9);
  EXPECT_EQ(decoded.meta.request().timeout_ms(), 250);
  EXPECT_TRUE(VerifyChecksum(decoded).ok());
  EXPECT_EQ(decoded.attachment.ToString(), "attached");
  absl::StatusOr<netpoll::LinkBuffer> payload = UncompressPayload(decoded);
  ASSERT_TRUE(payload.ok());
  example::EchoRequest echo;
  ASSERT_TRUE(ParseFromLinkBuffer(*payload, echo).ok());
  EXPECT_EQ(echo.message(), "payload");
}

TEST(BaiduStdClientCodecTest, AddingACredentialToSomethingElseIsARequestError) {
  netpoll::LinkBuffer garbage;
  garbage.WriteBinary("not a frame at all");
  EXPECT_EQ(ErrorCodeOf(AddBaiduStdCredential("token", garbage)), EREQUEST);
}

class FailingAuthenticator final : public Authenticator {
 public:
  absl::StatusOr<std::string> GenerateCredential() const override {
    return absl::UnavailableError("token service down");
  }
  absl::Status VerifyCredential(absl::string_view, const netpoll::SocketAddress&,
                                AuthContext&) const override {
    return absl::OkStatus();
  }
};

TEST(BaiduStdClientCodecTest, AFailedCredentialIsAnErpcauthError) {
  absl::StatusOr<std::string> credential = GenerateBaiduStdCredential(FailingAuthenticator());
  EXPECT_EQ(ErrorCodeOf(credential.status()), ERPCAUTH);
  EXPECT_EQ(credential.status().message(), "Fail to generate credential: token service down");
}

}  // namespace
}  // namespace nprpc
