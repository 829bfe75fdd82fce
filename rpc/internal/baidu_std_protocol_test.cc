#include "rpc/internal/baidu_std_protocol.h"

#include "gtest/gtest.h"
#include "netpoll/link_buffer.h"
#include "rpc/internal/protocol.h"

namespace nprpc {
namespace {

SniffResult SniffOf(absl::string_view bytes) {
  netpoll::LinkBuffer input;
  input.WriteString(bytes);
  SniffResult r = BaiduStdProtocol::Get()->Sniff(input);
  EXPECT_EQ(input.Len(), bytes.size()) << "sniffing must not consume";
  return r;
}

TEST(BaiduStdProtocolTest, ClaimsConnectionsThatStartWithItsMagic) {
  EXPECT_EQ(SniffOf("PRPC"), SniffResult::kMine);
  EXPECT_EQ(SniffOf("PRPC\x00\x00\x00\x10"), SniffResult::kMine);
}

TEST(BaiduStdProtocolTest, NeedsMoreForAPrefixOfItsMagic) {
  EXPECT_EQ(SniffOf(""), SniffResult::kNeedMore);
  EXPECT_EQ(SniffOf("P"), SniffResult::kNeedMore);
  EXPECT_EQ(SniffOf("PRP"), SniffResult::kNeedMore);
}

TEST(BaiduStdProtocolTest, LeavesOtherProtocolsAlone) {
  EXPECT_EQ(SniffOf("GET / HTTP/1.1\r\n"), SniffResult::kNotMine);
  EXPECT_EQ(SniffOf("PRI * HTTP/2.0"), SniffResult::kNotMine);
  EXPECT_EQ(SniffOf("\x16\x03\x01"), SniffResult::kNotMine);
  EXPECT_EQ(SniffOf("PRPX"), SniffResult::kNotMine);
}

TEST(BaiduStdProtocolTest, IsNamedBaiduStd) {
  EXPECT_EQ(BaiduStdProtocol::Get()->name(), "baidu_std");
}

}  // namespace
}  // namespace nprpc
