#include "rpc/internal/baidu_std_client_codec.h"

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

}  // namespace
}  // namespace nprpc
