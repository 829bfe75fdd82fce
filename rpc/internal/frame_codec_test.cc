#include "rpc/internal/frame_codec.h"

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "netpoll/link_buffer.h"
#include "proto/echo.pb.h"
#include "proto/rpc_meta.pb.h"
#include "rpc/baidu_std.h"
#include "rpc/errors.h"

namespace nprpc {
namespace {

constexpr int64_t kCapturedCorrelationId = 4294967298;  // what the brpc client used

const char* const kCases[] = {
    "echo_basic",
    "echo_attachment_logid",
    "echo_user_fields",
    "echo_request_id",
    "echo_gzip",
    "echo_zlib",
    "echo_snappy",
    "echo_gzip_response",
    "echo_large_200k",
    "echo_checksum",
    "echo_timeout_delivered",
    "fail_internal",
    "fail_custom_code",
    "no_method",
    "no_service",
};

// Reads tests/data/baidu_std/<name>/<file> from the test's runfiles.
std::string ReadVector(absl::string_view name, absl::string_view file) {
  const std::string path = absl::StrCat("tests/data/baidu_std/", name, "/", file);
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

netpoll::LinkBuffer BufferOf(absl::string_view bytes) {
  netpoll::LinkBuffer buffer;
  buffer.WriteString(bytes);
  return buffer;
}

// Decodes `bytes`, which must hold exactly one frame.
DecodedFrame DecodeOne(absl::string_view bytes) {
  netpoll::LinkBuffer in = BufferOf(bytes);
  DecodeResult r = FrameDecoder().Decode(in);
  EXPECT_TRUE(r.has_frame()) << r.status();
  EXPECT_TRUE(in.empty());
  return r.TakeFrame();
}

std::vector<UserField> UserFieldsOf(const wire::RpcMeta& meta) {
  std::vector<UserField> fields;
  for (const auto& entry : meta.user_fields()) fields.push_back({entry.key(), entry.value()});
  return fields;
}

// What a client would have to be told to produce this request meta.
RequestHeader RequestHeaderOf(const wire::RpcMeta& meta) {
  const wire::RpcRequestMeta& req = meta.request();
  RequestHeader h;
  h.service_name = req.service_name();
  h.method_name = req.method_name();
  h.correlation_id = meta.correlation_id();
  h.trace = TraceOf(req);
  if (req.has_timeout_ms()) h.timeout_ms = req.timeout_ms();
  if (meta.has_authentication_data()) h.authentication_data = meta.authentication_data();
  h.user_fields = UserFieldsOf(meta);
  h.compress_type = static_cast<CompressType>(meta.compress_type());
  h.checksum_type = static_cast<ChecksumType>(meta.checksum_type());
  h.checksum_with_attachment = meta.checksum_with_attachment();
  return h;
}

ResponseHeader ResponseHeaderOf(const wire::RpcMeta& meta) {
  ResponseHeader h;
  h.correlation_id = meta.correlation_id();
  h.error_code = meta.response().error_code();
  h.error_text = meta.response().error_text();
  h.user_fields = UserFieldsOf(meta);
  h.compress_type = static_cast<CompressType>(meta.compress_type());
  h.checksum_type = static_cast<ChecksumType>(meta.checksum_type());
  h.checksum_with_attachment = meta.checksum_with_attachment();
  if (h.checksum_type == ChecksumType::kNone) h.echoed_checksum_value = meta.checksum_value();
  return h;
}

example::EchoRequest ParseEchoRequest(DecodedFrame& frame) {
  absl::StatusOr<netpoll::LinkBuffer> payload = UncompressPayload(frame);
  EXPECT_TRUE(payload.ok()) << payload.status();
  example::EchoRequest request;
  if (payload.ok()) {
    EXPECT_TRUE(ParseFromLinkBuffer(*payload, request).ok());
  }
  return request;
}

example::EchoResponse ParseEchoResponse(DecodedFrame& frame) {
  absl::StatusOr<netpoll::LinkBuffer> payload = UncompressPayload(frame);
  EXPECT_TRUE(payload.ok()) << payload.status();
  example::EchoResponse response;
  if (payload.ok()) {
    EXPECT_TRUE(ParseFromLinkBuffer(*payload, response).ok());
  }
  return response;
}

// A 12-byte header followed by `body`.
std::string Frame(uint32_t body_size, uint32_t meta_size, absl::string_view body) {
  std::string out = "PRPC";
  for (uint32_t v : {body_size, meta_size}) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
  }
  out.append(body.data(), body.size());
  return out;
}

std::string FrameWithMeta(const wire::RpcMeta& meta, absl::string_view rest = "") {
  const std::string m = meta.SerializePartialAsString();
  return Frame(static_cast<uint32_t>(m.size() + rest.size()), static_cast<uint32_t>(m.size()),
               m + std::string(rest));
}

absl::Status DecodeError(absl::string_view bytes, FrameDecoderOptions options = {}) {
  netpoll::LinkBuffer in = BufferOf(bytes);
  DecodeResult r = FrameDecoder(options).Decode(in);
  EXPECT_TRUE(r.is_error());
  return r.status();
}

// ---------------------------------------------------------------- Decoding

TEST(FrameDecoder, DecodesEveryCapturedRequestAndResponse) {
  for (const char* name : kCases) {
    SCOPED_TRACE(name);
    for (const char* file : {"request.bin", "response.bin"}) {
      const std::string bytes = ReadVector(name, file);
      ASSERT_GE(bytes.size(), kBaiduStdHeaderSize);
      DecodedFrame frame = DecodeOne(bytes);
      const wire::RpcMeta& meta = frame.meta;
      EXPECT_EQ(frame.is_request(), std::string(file) == "request.bin");
      EXPECT_EQ(meta.correlation_id(), kCapturedCorrelationId);
      // brpc writes these in every meta, defaults included.
      EXPECT_TRUE(meta.has_compress_type());
      EXPECT_TRUE(meta.has_content_type());
      EXPECT_EQ(meta.content_type(), 0);
      EXPECT_TRUE(meta.has_checksum_type());
      EXPECT_TRUE(meta.has_checksum_value());
      EXPECT_FALSE(meta.has_checksum_with_attachment());
      EXPECT_EQ(frame.attachment.Len(), static_cast<size_t>(meta.attachment_size()));
      EXPECT_EQ(meta.has_attachment_size(), meta.attachment_size() > 0);
      if (frame.is_request()) {
        EXPECT_EQ(meta.request().method_name().empty(), false);
      } else {
        EXPECT_TRUE(meta.response().has_error_code());
      }
      EXPECT_TRUE(VerifyChecksum(frame).ok());
    }
  }
}

TEST(FrameDecoder, RequestMetasMatchTheVectorTable) {
  for (const char* name : kCases) {
    SCOPED_TRACE(name);
    DecodedFrame frame = DecodeOne(ReadVector(name, "request.bin"));
    const wire::RpcRequestMeta& req = frame.meta.request();
    const std::string n = name;
    EXPECT_EQ(req.service_name(),
              n == "no_service" ? "example.NoSuchService" : "example.EchoService");
    const std::string method = n.rfind("fail_", 0) == 0 ? "Fail"
                               : n == "no_method"       ? "Missing"
                                                        : "Echo";
    EXPECT_EQ(req.method_name(), method);
    EXPECT_EQ(req.has_log_id(), n == "echo_attachment_logid");
    EXPECT_EQ(req.has_request_id(), n == "echo_request_id");
    EXPECT_EQ(req.has_timeout_ms(), n == "echo_timeout_delivered");
    EXPECT_FALSE(req.has_trace_id());
    EXPECT_EQ(frame.meta.user_fields_size(), n == "echo_user_fields" ? 2 : 0);
    EXPECT_EQ(frame.meta.checksum_type(), n == "echo_checksum" ? 1 : 0);
    const int32_t compress = n == "echo_gzip"     ? 2
                             : n == "echo_zlib"   ? 3
                             : n == "echo_snappy" ? 1
                                                  : 0;
    EXPECT_EQ(frame.meta.compress_type(), compress);
  }
  DecodedFrame logid = DecodeOne(ReadVector("echo_attachment_logid", "request.bin"));
  EXPECT_EQ(logid.meta.request().log_id(), 123456789);
  EXPECT_EQ(logid.meta.attachment_size(), 14);
  EXPECT_EQ(logid.attachment.ToString(), "attached-bytes");
  EXPECT_EQ(ParseEchoRequest(logid).message(), "hello");

  DecodedFrame rid = DecodeOne(ReadVector("echo_request_id", "request.bin"));
  EXPECT_EQ(rid.meta.request().request_id(), "req-42");

  DecodedFrame timeout = DecodeOne(ReadVector("echo_timeout_delivered", "request.bin"));
  EXPECT_EQ(timeout.meta.request().timeout_ms(), 1500);

  DecodedFrame fields = DecodeOne(ReadVector("echo_user_fields", "request.bin"));
  ASSERT_NE(FindUserField(fields.meta, "x-tenant"), nullptr);
  EXPECT_EQ(*FindUserField(fields.meta, "x-tenant"), "acme");
  EXPECT_EQ(*FindUserField(fields.meta, "x-trace"), "abc123");
  EXPECT_EQ(FindUserField(fields.meta, "x-none"), nullptr);

  DecodedFrame custom = DecodeOne(ReadVector("fail_custom_code", "request.bin"));
  example::EchoRequest custom_request = ParseEchoRequest(custom);
  EXPECT_EQ(custom_request.message(), "hello");
  EXPECT_EQ(custom_request.code(), 4242);
}

TEST(FrameDecoder, ResponseMetasMatchTheVectorTable) {
  struct Expected {
    const char* name;
    int32_t error_code;
    const char* error_text;
  };
  const Expected errors[] = {
      {"fail_internal", EINTERNAL, "[127.0.0.1:9201][E2001]deliberate failure: hello"},
      {"fail_custom_code", 4242, "[127.0.0.1:9201][E4242]deliberate failure: hello"},
      {"no_method", ENOMETHOD, "[127.0.0.1:9201][E1002]not here"},
      {"no_service", ENOMETHOD,
       "[127.0.0.1:9201][E1002]Fail to find method=example.NoSuchService/Echo"},
  };
  for (const Expected& e : errors) {
    SCOPED_TRACE(e.name);
    const std::string bytes = ReadVector(e.name, "response.bin");
    DecodedFrame frame = DecodeOne(bytes);
    EXPECT_EQ(frame.meta.response().error_code(), e.error_code);
    EXPECT_EQ(frame.meta.response().error_text(), e.error_text);
    // Error responses carry no payload: body_size == meta_size.
    EXPECT_TRUE(frame.payload.empty());
    EXPECT_TRUE(frame.attachment.empty());
    EXPECT_EQ(bytes.substr(4, 4), bytes.substr(8, 4));
    absl::Status status =
        MakeRpcError(frame.meta.response().error_code(), frame.meta.response().error_text());
    EXPECT_EQ(ErrorCodeOf(status), e.error_code);
  }
  for (const char* name : kCases) {
    const std::string n = name;
    if (n.rfind("fail_", 0) == 0 || n.rfind("no_", 0) == 0) continue;
    SCOPED_TRACE(name);
    DecodedFrame frame = DecodeOne(ReadVector(name, "response.bin"));
    EXPECT_EQ(frame.meta.response().error_code(), 0);
    EXPECT_FALSE(frame.meta.response().has_error_text());
    EXPECT_EQ(frame.meta.compress_type(), n == "echo_gzip_response" ? 2 : 0);
  }
  DecodedFrame attach = DecodeOne(ReadVector("echo_attachment_logid", "response.bin"));
  EXPECT_EQ(attach.attachment.ToString(), "attached-bytes");
  EXPECT_EQ(ParseEchoResponse(attach).message(), "hello");

  DecodedFrame fields = DecodeOne(ReadVector("echo_user_fields", "response.bin"));
  ASSERT_EQ(fields.meta.user_fields_size(), 2);
  EXPECT_EQ(*FindUserField(fields.meta, "x-tenant"), "acme");
  EXPECT_EQ(*FindUserField(fields.meta, "x-trace"), "abc123");
}

TEST(FrameDecoder, CompressedVectorsDecompressToTheThreeHundredCharMessages) {
  struct Case {
    const char* name;
    const char* file;
    char fill;
  };
  for (const Case& c :
       {Case{"echo_gzip", "request.bin", 'g'}, Case{"echo_zlib", "request.bin", 'z'},
        Case{"echo_snappy", "request.bin", 's'}, Case{"echo_gzip_response", "response.bin", 'r'}}) {
    SCOPED_TRACE(c.name);
    DecodedFrame frame = DecodeOne(ReadVector(c.name, c.file));
    EXPECT_NE(frame.meta.compress_type(), 0);
    EXPECT_LT(frame.payload.Len(), 300u);
    const std::string message =
        frame.is_request() ? ParseEchoRequest(frame).message() : ParseEchoResponse(frame).message();
    EXPECT_EQ(message, std::string(300, c.fill));
  }
  // The server answered the compressed requests uncompressed.
  for (const char* name : {"echo_gzip", "echo_zlib", "echo_snappy"}) {
    DecodedFrame frame = DecodeOne(ReadVector(name, "response.bin"));
    EXPECT_EQ(frame.meta.compress_type(), 0);
    EXPECT_EQ(ParseEchoResponse(frame).message().size(), 300u);
  }
}

TEST(FrameDecoder, DecompressionLimitApplies) {
  DecodedFrame frame = DecodeOne(ReadVector("echo_gzip", "request.bin"));
  absl::StatusOr<netpoll::LinkBuffer> payload = UncompressPayload(frame, 100);
  EXPECT_EQ(payload.status().code(), absl::StatusCode::kResourceExhausted) << payload.status();
}

TEST(FrameDecoder, LargeVectorKeepsPayloadAndAttachmentApart) {
  DecodedFrame request = DecodeOne(ReadVector("echo_large_200k", "request.bin"));
  EXPECT_EQ(request.attachment.ToString(), std::string(50000, 'A'));
  EXPECT_EQ(ParseEchoRequest(request).message(), std::string(200000, 'L'));
  DecodedFrame response = DecodeOne(ReadVector("echo_large_200k", "response.bin"));
  EXPECT_EQ(response.payload.Len() + response.attachment.Len() + 22, 250026u);
  EXPECT_EQ(response.attachment.ToString(), std::string(50000, 'A'));
  EXPECT_EQ(ParseEchoResponse(response).message(), std::string(200000, 'L'));
}

// True when every chunk of `buffer` lies inside `memory`.
bool ReferencesOnly(const netpoll::LinkBuffer& buffer, absl::string_view memory) {
  bool inside = true;
  buffer.ForEachChunk([&](absl::string_view chunk) {
    inside = inside && chunk.data() >= memory.data() &&
             chunk.data() + chunk.size() <= memory.data() + memory.size();
  });
  return inside;
}

TEST(FrameDecoder, CutsPayloadAndAttachmentWithoutCopying) {
  const std::string bytes = ReadVector("echo_large_200k", "request.bin");
  netpoll::LinkBuffer in;
  in.WriteBinary(bytes, [] {});  // referenced, not copied (>= kCopyThreshold)
  DecodeResult r = FrameDecoder().Decode(in);
  ASSERT_TRUE(r.has_frame()) << r.status();
  DecodedFrame frame = r.TakeFrame();
  EXPECT_EQ(frame.payload.Len(), 200004u);
  EXPECT_TRUE(ReferencesOnly(frame.payload, bytes));
  EXPECT_TRUE(ReferencesOnly(frame.attachment, bytes));

  // Re-encoding appends the same memory.
  const ResponseHeader header{.correlation_id = 1};
  netpoll::LinkBuffer out;
  const size_t payload_size = frame.payload.Len();
  ASSERT_TRUE(
      EncodeResponse(header, std::move(frame.payload), std::move(frame.attachment), out).ok());
  const std::string head = out.ToString().substr(0, out.Len() - payload_size - 50000);
  ASSERT_TRUE(out.Skip(head.size()).ok());
  EXPECT_TRUE(ReferencesOnly(out, bytes));
}

TEST(FrameDecoder, AnswersNeedMoreForEveryTwoChunkSplit) {
  for (const char* name : kCases) {
    for (const char* file : {"request.bin", "response.bin"}) {
      SCOPED_TRACE(absl::StrCat(name, "/", file));
      const std::string bytes = ReadVector(name, file);
      const DecodedFrame whole = DecodeOne(bytes);
      const size_t n = bytes.size();
      // Every split of the small vectors; for the 250 KB one, every split
      // within the header and meta, near the end, and every 997th elsewhere.
      for (size_t split = 0; split < n; ++split) {
        if (n > 4096 && split > 128 && split + 128 < n && split % 997 != 0) continue;
        netpoll::LinkBuffer in = BufferOf(bytes.substr(0, split));
        DecodeResult first = FrameDecoder().Decode(in);
        ASSERT_TRUE(first.need_more()) << split << " " << first.status();
        ASSERT_GT(first.bytes_needed(), 0u);
        if (split >= kBaiduStdHeaderSize) {
          EXPECT_EQ(first.bytes_needed(), n - split);
        } else {
          EXPECT_EQ(first.bytes_needed(), kBaiduStdHeaderSize - split);
        }
        EXPECT_EQ(in.Len(), split) << "need-more consumes nothing";
        in.Append(BufferOf(bytes.substr(split)));
        DecodeResult second = FrameDecoder().Decode(in);
        ASSERT_TRUE(second.has_frame()) << split << " " << second.status();
        EXPECT_TRUE(in.empty());
        EXPECT_EQ(second.frame().meta.SerializeAsString(), whole.meta.SerializeAsString());
        EXPECT_EQ(second.frame().payload.Len(), whole.payload.Len());
        EXPECT_EQ(second.frame().attachment.Len(), whole.attachment.Len());
      }
    }
  }
}

TEST(FrameDecoder, AnswersNeedMoreUntilTheLastOfOneByteChunks) {
  for (const char* name : kCases) {
    for (const char* file : {"request.bin", "response.bin"}) {
      SCOPED_TRACE(absl::StrCat(name, "/", file));
      const std::string bytes = ReadVector(name, file);
      netpoll::LinkBuffer in;
      FrameDecoder decoder;
      for (size_t i = 0; i + 1 < bytes.size(); ++i) {
        in.WriteBinary(absl::string_view(&bytes[i], 1));
        DecodeResult r = decoder.Decode(in);
        ASSERT_TRUE(r.need_more()) << i << " " << r.status();
      }
      in.WriteBinary(absl::string_view(&bytes.back(), 1));
      DecodeResult r = decoder.Decode(in);
      ASSERT_TRUE(r.has_frame()) << r.status();
      EXPECT_TRUE(in.empty());
      DecodedFrame frame = r.TakeFrame();
      const DecodedFrame whole = DecodeOne(bytes);
      EXPECT_EQ(frame.payload.ToString(), whole.payload.ToString());
      EXPECT_EQ(frame.attachment.ToString(), whole.attachment.ToString());
    }
  }
}

TEST(FrameDecoder, DecodesBackToBackFramesOneAtATime) {
  const std::string a = ReadVector("echo_attachment_logid", "request.bin");
  const std::string b = ReadVector("echo_gzip", "request.bin");
  netpoll::LinkBuffer in = BufferOf(a + b + b.substr(0, 5));
  FrameDecoder decoder;
  DecodeResult first = decoder.Decode(in);
  ASSERT_TRUE(first.has_frame());
  EXPECT_EQ(first.frame().attachment.ToString(), "attached-bytes");
  DecodeResult second = decoder.Decode(in);
  ASSERT_TRUE(second.has_frame());
  EXPECT_EQ(second.frame().meta.compress_type(), 2);
  DecodeResult third = decoder.Decode(in);
  EXPECT_TRUE(third.need_more());
  EXPECT_EQ(third.bytes_needed(), kBaiduStdHeaderSize - 5);
}

TEST(FrameDecoder, RejectsBadMagic) {
  absl::Status s = DecodeError(Frame(0, 0, "").replace(0, 4, "HTTP"));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("bad magic"), absl::string_view::npos) << s;
}

TEST(FrameDecoder, RejectsBadMagicFromItsFirstBytes) {
  netpoll::LinkBuffer in = BufferOf("PX");
  DecodeResult r = FrameDecoder().Decode(in);
  ASSERT_TRUE(r.is_error());
  EXPECT_NE(r.status().message().find("bad magic"), absl::string_view::npos) << r.status();
  netpoll::LinkBuffer prefix = BufferOf("PRP");
  EXPECT_TRUE(FrameDecoder().Decode(prefix).need_more());
}

TEST(FrameDecoder, RejectsOversizedBodyFromHeaderAlone) {
  // A 4 GiB body announced by a bare 12-byte header.
  absl::Status s = DecodeError(Frame(0xffffffffu, 10, ""));
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(s.message().find("4294967295"), absl::string_view::npos) << s;
  // The limit is configurable.
  absl::Status small = DecodeError(Frame(1001, 10, ""), {.max_body_size = 1000});
  EXPECT_EQ(small.code(), absl::StatusCode::kResourceExhausted);
  netpoll::LinkBuffer in = BufferOf(Frame(1000, 10, ""));
  EXPECT_TRUE(FrameDecoder({.max_body_size = 1000}).Decode(in).need_more());
}

TEST(FrameDecoder, RejectsMetaSizeBeyondBodySizeFromHeaderAlone) {
  absl::Status s = DecodeError(Frame(10, 11, ""));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("meta_size 11 exceeds body_size 10"), absl::string_view::npos) << s;
}

TEST(FrameDecoder, RejectsGarbageMeta) {
  absl::Status s = DecodeError(Frame(6, 6, "\xff\xff\xff\xff\xff\xff"));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("unparsable RpcMeta"), absl::string_view::npos) << s;
}

TEST(FrameDecoder, RejectsRequestWithoutServiceName) {
  wire::RpcMeta meta;
  meta.mutable_request()->set_method_name("Echo");
  absl::Status s = DecodeError(FrameWithMeta(meta, "payload"));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("service_name"), absl::string_view::npos) << s;

  wire::RpcMeta no_method;
  no_method.mutable_request()->set_service_name("example.EchoService");
  EXPECT_NE(DecodeError(FrameWithMeta(no_method)).message().find("method_name"),
            absl::string_view::npos);
}

TEST(FrameDecoder, RejectsMetaWithNeitherOrBothOfRequestAndResponse) {
  wire::RpcMeta neither;
  neither.set_correlation_id(1);
  EXPECT_NE(DecodeError(FrameWithMeta(neither)).message().find("neither"), absl::string_view::npos);
  wire::RpcMeta both;
  both.mutable_request()->set_service_name("s");
  both.mutable_request()->set_method_name("m");
  both.mutable_response()->set_error_code(0);
  EXPECT_NE(DecodeError(FrameWithMeta(both)).message().find("both"), absl::string_view::npos);
}

TEST(FrameDecoder, RejectsAttachmentSizeBeyondThePayloadRoom) {
  wire::RpcMeta meta;
  meta.mutable_response()->set_error_code(0);
  meta.set_attachment_size(8);
  absl::Status s = DecodeError(FrameWithMeta(meta, "1234567"));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("attachment_size 8"), absl::string_view::npos) << s;
  meta.set_attachment_size(-1);
  EXPECT_NE(DecodeError(FrameWithMeta(meta, "1234567")).message().find("negative"),
            absl::string_view::npos);
  // Exactly the room: everything after the meta is attachment.
  meta.set_attachment_size(7);
  DecodedFrame frame = DecodeOne(FrameWithMeta(meta, "1234567"));
  EXPECT_TRUE(frame.payload.empty());
  EXPECT_EQ(frame.attachment.ToString(), "1234567");
}

// ---------------------------------------------------------------- Checksums

TEST(Checksum, CapturedChecksumVerifiesAndAFlippedByteFails) {
  const std::string bytes = ReadVector("echo_checksum", "request.bin");
  DecodedFrame frame = DecodeOne(bytes);
  EXPECT_EQ(frame.meta.checksum_type(), 1);
  EXPECT_EQ(frame.meta.checksum_value(), std::string("\x61\xf6\x3a\x7e", 4));
  EXPECT_TRUE(VerifyChecksum(frame).ok());

  std::string flipped = bytes;
  flipped.back() ^= 0x01;
  DecodedFrame bad = DecodeOne(flipped);
  absl::Status s = VerifyChecksum(bad);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("61f63a7e"), absl::string_view::npos) << s;
}

TEST(Checksum, BrpcResponseEchoesTheValueWithChecksumTypeNone) {
  DecodedFrame response = DecodeOne(ReadVector("echo_checksum", "response.bin"));
  EXPECT_EQ(response.meta.checksum_type(), 0);
  EXPECT_EQ(response.meta.checksum_value(), std::string("\x61\xf6\x3a\x7e", 4));
  EXPECT_TRUE(VerifyChecksum(response).ok());
}

TEST(Checksum, CoversTheAttachmentWhenAsked) {
  RequestHeader h{.service_name = "s", .method_name = "m", .correlation_id = 7};
  h.checksum_type = ChecksumType::kCrc32c;
  h.checksum_with_attachment = true;
  netpoll::LinkBuffer out;
  ASSERT_TRUE(EncodeRequest(h, BufferOf("payload"), BufferOf("attachment"), out).ok());
  std::string bytes = out.ToString();
  EXPECT_TRUE(VerifyChecksum(DecodeOne(bytes)).ok());
  bytes.back() ^= 0x20;  // in the attachment
  EXPECT_EQ(VerifyChecksum(DecodeOne(bytes)).code(), absl::StatusCode::kDataLoss);

  h.checksum_with_attachment = false;
  netpoll::LinkBuffer out2;
  ASSERT_TRUE(EncodeRequest(h, BufferOf("payload"), BufferOf("attachment"), out2).ok());
  std::string bytes2 = out2.ToString();
  bytes2.back() ^= 0x20;
  EXPECT_TRUE(VerifyChecksum(DecodeOne(bytes2)).ok()) << "attachment not covered";
}

TEST(Checksum, RejectsUnknownTypeAndWrongLength) {
  wire::RpcMeta meta;
  meta.mutable_response()->set_error_code(0);
  meta.set_checksum_type(1);
  meta.set_checksum_value("abc");
  EXPECT_EQ(VerifyChecksum(DecodeOne(FrameWithMeta(meta, "x"))).code(),
            absl::StatusCode::kInvalidArgument);
  meta.set_checksum_type(5);
  EXPECT_EQ(VerifyChecksum(DecodeOne(FrameWithMeta(meta, "x"))).code(),
            absl::StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------- Encoding

TEST(FrameEncoder, ReencodesEveryCapturedRequestByteForByte) {
  for (const char* name : kCases) {
    SCOPED_TRACE(name);
    const std::string bytes = ReadVector(name, "request.bin");
    DecodedFrame frame = DecodeOne(bytes);
    const RequestHeader header = RequestHeaderOf(frame.meta);
    absl::StatusOr<netpoll::LinkBuffer> plain = UncompressPayload(frame);
    ASSERT_TRUE(plain.ok()) << plain.status();
    netpoll::LinkBuffer out;
    ASSERT_TRUE(EncodeRequest(header, *std::move(plain), std::move(frame.attachment), out).ok());
    EXPECT_EQ(out.ToString(), bytes);
  }
}

TEST(FrameEncoder, ReencodesEveryCapturedResponseByteForByte) {
  for (const char* name : kCases) {
    SCOPED_TRACE(name);
    const std::string bytes = ReadVector(name, "response.bin");
    DecodedFrame frame = DecodeOne(bytes);
    const ResponseHeader header = ResponseHeaderOf(frame.meta);
    absl::StatusOr<netpoll::LinkBuffer> plain = UncompressPayload(frame);
    ASSERT_TRUE(plain.ok()) << plain.status();
    netpoll::LinkBuffer out;
    ASSERT_TRUE(EncodeResponse(header, *std::move(plain), std::move(frame.attachment), out).ok());
    EXPECT_EQ(out.ToString(), bytes);
  }
}

TEST(FrameEncoder, BuildsTheBasicRequestFromScratch) {
  example::EchoRequest request;
  request.set_message("hello");
  netpoll::LinkBuffer payload;
  ASSERT_TRUE(SerializeToLinkBuffer(request, payload).ok());
  RequestHeader h{.service_name = "example.EchoService",
                  .method_name = "Echo",
                  .correlation_id = kCapturedCorrelationId};
  netpoll::LinkBuffer out;
  ASSERT_TRUE(EncodeRequest(h, std::move(payload), netpoll::LinkBuffer(), out).ok());
  EXPECT_EQ(out.ToString(), ReadVector("echo_basic", "request.bin"));
}

TEST(FrameEncoder, BuildsTheErrorResponseFromScratch) {
  ResponseHeader h{.correlation_id = kCapturedCorrelationId,
                   .error_code = ENOMETHOD,
                   .error_text = "[127.0.0.1:9201][E1002]not here"};
  netpoll::LinkBuffer out;
  ASSERT_TRUE(EncodeResponse(h, netpoll::LinkBuffer(), netpoll::LinkBuffer(), out).ok());
  EXPECT_EQ(out.ToString(), ReadVector("no_method", "response.bin"));
}

TEST(FrameEncoder, ErrorResponseMustNotCarryPayload) {
  ResponseHeader h{.correlation_id = 1, .error_code = EINTERNAL, .error_text = "boom"};
  netpoll::LinkBuffer out;
  EXPECT_EQ(EncodeResponse(h, BufferOf("x"), netpoll::LinkBuffer(), out).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(out.empty());
}

TEST(FrameEncoder, RejectsAttachmentSizeThatDisagreesWithTheMeta) {
  wire::RpcMeta meta = BuildResponseMeta(ResponseHeader{}, 3, "");
  netpoll::LinkBuffer out;
  EXPECT_EQ(EncodeFrame(meta, netpoll::LinkBuffer(), BufferOf("four"), out).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(FrameEncoder, RoundTripsEveryCompressionWithChecksum) {
  for (CompressType type :
       {CompressType::kNone, CompressType::kSnappy, CompressType::kGzip, CompressType::kZlib}) {
    RequestHeader h{.service_name = "svc", .method_name = "m", .correlation_id = 42};
    h.compress_type = type;
    h.checksum_type = ChecksumType::kCrc32c;
    h.user_fields = {{"b", "2"}, {"a", "1"}};
    example::EchoRequest request;
    request.set_message(std::string(10000, 'q'));
    netpoll::LinkBuffer payload;
    ASSERT_TRUE(SerializeToLinkBuffer(request, payload).ok());
    netpoll::LinkBuffer out;
    ASSERT_TRUE(EncodeRequest(h, std::move(payload), BufferOf("att"), out).ok());
    DecodeResult r = FrameDecoder().Decode(out);
    ASSERT_TRUE(r.has_frame()) << r.status();
    DecodedFrame frame = r.TakeFrame();
    EXPECT_TRUE(VerifyChecksum(frame).ok());
    EXPECT_EQ(frame.meta.user_fields(0).key(), "b") << "order kept";
    EXPECT_EQ(frame.attachment.ToString(), "att");
    EXPECT_EQ(ParseEchoRequest(frame).message(), request.message());
  }
}

TEST(PayloadMessages, SerializeRejectsMissingRequiredFields) {
  example::EchoRequest request;  // message unset
  netpoll::LinkBuffer out;
  absl::Status s = SerializeToLinkBuffer(request, out);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("message"), absl::string_view::npos) << s;
  EXPECT_TRUE(out.empty());
}

TEST(PayloadMessages, ParseReadsAcrossChunksAndRejectsGarbage) {
  example::EchoRequest request;
  request.set_message(std::string(5000, 'm'));
  request.set_code(9);
  const std::string bytes = request.SerializeAsString();
  netpoll::LinkBuffer chunked;
  for (size_t i = 0; i < bytes.size(); i += 777) chunked.Append(BufferOf(bytes.substr(i, 777)));
  example::EchoRequest parsed;
  ASSERT_TRUE(ParseFromLinkBuffer(chunked, parsed).ok());
  EXPECT_EQ(parsed.message(), request.message());
  EXPECT_EQ(parsed.code(), 9);
  EXPECT_EQ(chunked.Len(), bytes.size()) << "not consumed";

  example::EchoRequest bad;
  EXPECT_EQ(ParseFromLinkBuffer(BufferOf("\xff\xff"), bad).code(),
            absl::StatusCode::kInvalidArgument);
  example::EchoRequest missing;
  EXPECT_EQ(ParseFromLinkBuffer(BufferOf(std::string("\x10\x01", 2)), missing).code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace nprpc
