#include "rpc/internal/grpc_wire.h"

#include <optional>
#include <string>

#include "gtest/gtest.h"
#include "netpoll/link_buffer.h"

namespace nprpc {
namespace grpc_wire {
namespace {

netpoll::LinkBuffer Buffer(absl::string_view bytes) {
  netpoll::LinkBuffer b;
  b.WriteBinary(bytes);
  return b;
}

TEST(GrpcWireTest, ContentTypesOfProtobufAreGrpc) {
  EXPECT_TRUE(IsGrpcContentType("application/grpc"));
  EXPECT_TRUE(IsGrpcContentType("application/grpc+proto"));
  EXPECT_TRUE(IsGrpcContentType("application/grpc;charset=utf-8"));
  EXPECT_FALSE(IsGrpcContentType("application/grpc+json"));
  EXPECT_FALSE(IsGrpcContentType("application/grpcx"));
  EXPECT_FALSE(IsGrpcContentType("application/json"));
}

TEST(GrpcWireTest, MessagesCutFromOneByteAtATime) {
  netpoll::LinkBuffer wire;
  AppendMessage(Buffer("hello"), false, wire);
  AppendMessage(Buffer(""), false, wire);
  AppendMessage(Buffer("zz"), true, wire);
  const std::string bytes = wire.ToString();
  ASSERT_EQ(bytes.size(), 3 * kPrefixSize + 7);
  MessageDeframer deframer;
  std::vector<std::pair<bool, std::string>> got;
  for (char c : bytes) {
    deframer.Append(absl::string_view(&c, 1));
    std::optional<MessageDeframer::Message> m;
    ASSERT_TRUE(deframer.Next(m).ok());
    if (m) got.emplace_back(m->compressed, m->payload.ToString());
  }
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0], std::make_pair(false, std::string("hello")));
  EXPECT_EQ(got[1], std::make_pair(false, std::string()));
  EXPECT_EQ(got[2], std::make_pair(true, std::string("zz")));
  EXPECT_EQ(deframer.buffered(), 0u);
}

TEST(GrpcWireTest, OversizedPrefixIsRefusedBeforeItsBytesArrive) {
  MessageDeframer deframer(1024);
  deframer.Append(absl::string_view("\x00\xff\xff\xff\xff", 5));  // 4 GiB - 1
  std::optional<MessageDeframer::Message> m;
  const absl::Status s = deframer.Next(m);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(s.message().find("4294967295"), absl::string_view::npos) << s;
  EXPECT_FALSE(m.has_value());
  EXPECT_EQ(deframer.Next(m).code(), absl::StatusCode::kResourceExhausted);  // final
}

TEST(GrpcWireTest, UnknownCompressedFlagIsAnError) {
  MessageDeframer deframer;
  deframer.Append(absl::string_view("\x02\x00\x00\x00\x00", 5));
  std::optional<MessageDeframer::Message> m;
  EXPECT_EQ(deframer.Next(m).code(), absl::StatusCode::kInternal);
}

TEST(GrpcWireTest, TimeoutsParseEveryUnitAndRefuseJunk) {
  EXPECT_EQ(ParseTimeout("1H"), absl::Hours(1));
  EXPECT_EQ(ParseTimeout("2M"), absl::Minutes(2));
  EXPECT_EQ(ParseTimeout("3S"), absl::Seconds(3));
  EXPECT_EQ(ParseTimeout("100m"), absl::Milliseconds(100));
  EXPECT_EQ(ParseTimeout("5u"), absl::Microseconds(5));
  EXPECT_EQ(ParseTimeout("99999999n"), absl::Nanoseconds(99999999));
  EXPECT_EQ(ParseTimeout("123456789n"), std::nullopt);  // 9 digits
  EXPECT_EQ(ParseTimeout("m"), std::nullopt);
  EXPECT_EQ(ParseTimeout("-1S"), std::nullopt);
  EXPECT_EQ(ParseTimeout("10x"), std::nullopt);
}

TEST(GrpcWireTest, TimeoutsFormatInAtMostEightDigitsRoundedUp) {
  EXPECT_EQ(FormatTimeout(absl::Milliseconds(200)), "200000u");  // 2e8 ns is 9 digits
  EXPECT_EQ(FormatTimeout(absl::Nanoseconds(1500)), "1500n");
  EXPECT_EQ(FormatTimeout(absl::Nanoseconds(100000001)), "100001u");  // rounded up
  EXPECT_EQ(FormatTimeout(absl::Hours(30000)), "1800000M");
  EXPECT_EQ(FormatTimeout(absl::ZeroDuration()), "1n");
  EXPECT_EQ(FormatTimeout(-absl::Seconds(1)), "1n");
  for (absl::Duration d : {absl::Milliseconds(1), absl::Seconds(7), absl::Minutes(90)}) {
    EXPECT_EQ(ParseTimeout(FormatTimeout(d)), d);
  }
}

TEST(GrpcWireTest, StatusCodesMapByNumber) {
  EXPECT_EQ(StatusCodeFromGrpc("0"), absl::StatusCode::kOk);
  EXPECT_EQ(StatusCodeFromGrpc("5"), absl::StatusCode::kNotFound);
  EXPECT_EQ(StatusCodeFromGrpc("16"), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(StatusCodeFromGrpc("17"), absl::StatusCode::kUnknown);
  EXPECT_EQ(StatusCodeFromGrpc("x"), absl::StatusCode::kUnknown);
}

TEST(GrpcWireTest, MessagesPercentEncodeAndDecodeUnicode) {
  const std::string text = "caf\xc3\xa9 100% \xe2\x9c\x93\n";
  const std::string encoded = PercentEncode(text);
  EXPECT_EQ(encoded, "caf%C3%A9 100%25 %E2%9C%93%0A");
  EXPECT_EQ(PercentDecode(encoded), text);
  EXPECT_EQ(PercentDecode("bad %zz and %4"), "bad %zz and %4");
}

TEST(GrpcWireTest, BinaryMetadataIsUnpaddedBase64ReadEitherWay) {
  const std::string bytes("\x00\x01\xfe\xff", 4);
  EXPECT_TRUE(IsBinaryKey("trace-bin"));
  EXPECT_FALSE(IsBinaryKey("trace"));
  EXPECT_EQ(EncodeBinaryValue(bytes), "AAH+/w");
  EXPECT_EQ(*DecodeBinaryValue("AAH+/w"), bytes);
  EXPECT_EQ(*DecodeBinaryValue("AAH+/w=="), bytes);
  EXPECT_EQ(DecodeBinaryValue("!!").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(GrpcWireTest, ProtocolHeadersAreReservedAndKeysValidated) {
  EXPECT_TRUE(IsReservedHeader(":path"));
  EXPECT_TRUE(IsReservedHeader("grpc-timeout"));
  EXPECT_TRUE(IsReservedHeader("content-type"));
  EXPECT_TRUE(IsReservedHeader("te"));
  EXPECT_FALSE(IsReservedHeader("x-tenant"));
  EXPECT_FALSE(IsReservedHeader("traceparent"));
  EXPECT_TRUE(IsValidMetadataKey("x-user_id.1"));
  EXPECT_FALSE(IsValidMetadataKey("X-Upper"));
  EXPECT_FALSE(IsValidMetadataKey(""));
}

TEST(GrpcWireTest, EncodingsMapToCompressTypes) {
  EXPECT_EQ(EncodingFromName("gzip"), CompressType::kGzip);
  EXPECT_EQ(EncodingFromName("deflate"), CompressType::kZlib);
  EXPECT_EQ(EncodingFromName("identity"), CompressType::kNone);
  EXPECT_EQ(EncodingFromName("snappy"), std::nullopt);
  EXPECT_EQ(EncodingName(CompressType::kZlib), "deflate");
}

}  // namespace
}  // namespace grpc_wire
}  // namespace nprpc
