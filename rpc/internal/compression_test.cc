#include "rpc/internal/compression.h"

#include <optional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "netpoll/link_buffer.h"

namespace nprpc {
namespace {

constexpr CompressType kAllTypes[] = {CompressType::kNone, CompressType::kSnappy,
                                      CompressType::kGzip, CompressType::kZlib};

// A buffer holding `data` split into separate chunks of `piece` bytes, so the
// codecs see a multi-chunk input.
netpoll::LinkBuffer Chunked(const std::string& data, size_t piece) {
  netpoll::LinkBuffer out;
  for (size_t i = 0; i < data.size(); i += piece) {
    netpoll::LinkBuffer part;
    part.WriteString(data.substr(i, piece));
    out.Append(std::move(part));
  }
  return out;
}

std::string Sample(size_t n) {
  std::string s;
  s.reserve(n);
  for (size_t i = 0; i < n; ++i) s.push_back(static_cast<char>("abcdefgh"[i % 8] + (i / 997) % 5));
  return s;
}

std::string CompressToString(CompressType type, const std::string& data) {
  netpoll::LinkBuffer in;
  in.WriteString(data);
  netpoll::LinkBuffer out;
  EXPECT_TRUE(Compress(type, in, out).ok());
  return out.ToString();
}

TEST(Compression, RoundTripsEveryTypeAndSizeOverMultiChunkInput) {
  for (CompressType type : kAllTypes) {
    for (size_t size : {size_t{0}, size_t{1}, size_t{300}, size_t{70000}, size_t{1} << 20}) {
      const std::string data = Sample(size);
      netpoll::LinkBuffer in = Chunked(data, 4099);
      netpoll::LinkBuffer compressed;
      ASSERT_TRUE(Compress(type, in, compressed).ok()) << CompressTypeName(type);
      EXPECT_EQ(in.Len(), data.size()) << "input must not be consumed";
      // Decompress from a differently chunked copy of the compressed bytes.
      netpoll::LinkBuffer rechunked = Chunked(compressed.ToString(), 1000);
      netpoll::LinkBuffer plain;
      ASSERT_TRUE(Decompress(type, rechunked, size + 1, plain).ok())
          << CompressTypeName(type) << " " << size;
      EXPECT_EQ(plain.ToString(), data) << CompressTypeName(type) << " " << size;
    }
  }
}

TEST(Compression, SnappyAndGzipAnnounceTheirDecodedSizeZlibDoesNot) {
  const std::string data = Sample(100000);
  for (size_t piece : {size_t{1}, size_t{3}, size_t{100000}}) {
    EXPECT_EQ(
        AnnouncedDecompressedSize(CompressType::kSnappy,
                                  Chunked(CompressToString(CompressType::kSnappy, data), piece)),
        data.size());
    EXPECT_EQ(AnnouncedDecompressedSize(
                  CompressType::kGzip, Chunked(CompressToString(CompressType::kGzip, data), piece)),
              data.size());
  }
  EXPECT_EQ(AnnouncedDecompressedSize(CompressType::kZlib,
                                      Chunked(CompressToString(CompressType::kZlib, data), 7)),
            std::nullopt);
  EXPECT_EQ(AnnouncedDecompressedSize(CompressType::kNone, Chunked(data, 7)), std::nullopt);
  EXPECT_EQ(AnnouncedDecompressedSize(CompressType::kGzip, Chunked("short", 1)), std::nullopt);
}

TEST(Compression, AnUnderstatedGzipSizeIsEnforcedAsTheLimit) {
  std::string gzip = CompressToString(CompressType::kGzip, Sample(100000));
  gzip[gzip.size() - 4] = 10;  // ISIZE now says 10 (+ the upper bytes' value)
  gzip[gzip.size() - 3] = 0;
  gzip[gzip.size() - 2] = 0;
  gzip[gzip.size() - 1] = 0;
  netpoll::LinkBuffer in = Chunked(gzip, 1000);
  const std::optional<size_t> announced = AnnouncedDecompressedSize(CompressType::kGzip, in);
  ASSERT_EQ(announced, 10u);
  netpoll::LinkBuffer out;
  EXPECT_TRUE(absl::IsResourceExhausted(Decompress(CompressType::kGzip, in, *announced, out)));
}

TEST(Compression, GzipAndZlibUseTheirRfcHeaders) {
  const std::string gzip = CompressToString(CompressType::kGzip, std::string(300, 'g'));
  ASSERT_GE(gzip.size(), 10u);
  EXPECT_EQ(gzip.substr(0, 3), std::string("\x1f\x8b\x08", 3));
  const std::string zlib = CompressToString(CompressType::kZlib, std::string(300, 'z'));
  ASSERT_GE(zlib.size(), 2u);
  EXPECT_EQ(zlib.substr(0, 2), std::string("\x78\x9c", 2));
}

TEST(Compression, DecompressionStopsAtTheOutputLimit) {
  const std::string bomb(8 << 20, '\0');
  for (CompressType type : kAllTypes) {
    netpoll::LinkBuffer in;
    in.WriteString(bomb);
    netpoll::LinkBuffer compressed;
    ASSERT_TRUE(Compress(type, in, compressed).ok());
    netpoll::LinkBuffer out;
    out.WriteString("keep");
    absl::Status s = Decompress(type, compressed, 1 << 20, out);
    EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << CompressTypeName(type) << s;
    EXPECT_NE(s.message().find("limit of 1048576 bytes"), absl::string_view::npos) << s;
    EXPECT_EQ(out.ToString(), "keep") << "output untouched on error";
  }
}

TEST(Compression, ExactLimitIsAccepted) {
  for (CompressType type : kAllTypes) {
    netpoll::LinkBuffer in;
    in.WriteString(std::string(5000, 'x'));
    netpoll::LinkBuffer compressed;
    ASSERT_TRUE(Compress(type, in, compressed).ok());
    netpoll::LinkBuffer out;
    EXPECT_TRUE(Decompress(type, compressed, 5000, out).ok()) << CompressTypeName(type);
    EXPECT_EQ(out.Len(), 5000u);
  }
}

TEST(Compression, CorruptDataIsInvalidArgument) {
  for (CompressType type : {CompressType::kSnappy, CompressType::kGzip, CompressType::kZlib}) {
    netpoll::LinkBuffer garbage;
    garbage.WriteString(std::string("\xff\xfe\xfd\xfc garbage garbage garbage", 27));
    netpoll::LinkBuffer out;
    absl::Status s = Decompress(type, garbage, 1 << 20, out);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << CompressTypeName(type) << s;
    EXPECT_TRUE(out.empty());
  }
}

TEST(Compression, TruncatedStreamIsInvalidArgument) {
  for (CompressType type : {CompressType::kSnappy, CompressType::kGzip, CompressType::kZlib}) {
    std::string full = CompressToString(type, Sample(10000));
    netpoll::LinkBuffer truncated;
    truncated.WriteString(full.substr(0, full.size() - 5));
    netpoll::LinkBuffer out;
    absl::Status s = Decompress(type, truncated, 1 << 20, out);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << CompressTypeName(type) << s;
  }
}

TEST(Compression, TrailingBytesAfterGzipOrZlibStreamAreRejected) {
  for (CompressType type : {CompressType::kGzip, CompressType::kZlib}) {
    netpoll::LinkBuffer in;
    in.WriteString(CompressToString(type, "hello") + "junk");
    netpoll::LinkBuffer out;
    absl::Status s = Decompress(type, in, 1 << 20, out);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_NE(s.message().find("trailing"), absl::string_view::npos) << s;
  }
}

TEST(Compression, UnknownTypeIsInvalidArgument) {
  netpoll::LinkBuffer in;
  in.WriteString("x");
  netpoll::LinkBuffer out;
  EXPECT_EQ(Compress(static_cast<CompressType>(9), in, out).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Decompress(static_cast<CompressType>(9), in, 10, out).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(IsKnownCompressType(4));
  EXPECT_TRUE(IsKnownCompressType(3));
  EXPECT_EQ(CompressTypeName(static_cast<CompressType>(9)), "unknown(9)");
}

}  // namespace
}  // namespace nprpc
