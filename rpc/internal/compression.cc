#include "rpc/internal/compression.h"

#include <snappy.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"

namespace nprpc {
namespace {

// Output is produced into blocks of this size.
constexpr size_t kOutputChunk = 16 * 1024;
// zlib counts in uInt; feed it at most this much per call.
constexpr size_t kMaxZlibInput = size_t{1} << 30;

enum class ZlibFormat { kGzip, kZlib };

int WindowBits(ZlibFormat format) { return format == ZlibFormat::kGzip ? 15 + 16 : 15; }

absl::string_view FormatName(ZlibFormat format) {
  return format == ZlibFormat::kGzip ? "gzip" : "zlib";
}

// Contiguous view of all readable bytes of `in`; copies into *storage only
// when `in` spans several chunks.
absl::string_view Flatten(const netpoll::LinkBuffer& in, std::string* storage) {
  size_t chunks = 0;
  absl::string_view first;
  in.ForEachChunk([&](absl::string_view chunk) {
    if (chunks++ == 0) first = chunk;
  });
  if (chunks <= 1) return first;
  *storage = in.ToString();
  return *storage;
}

void CopyInto(const netpoll::LinkBuffer& in, netpoll::LinkBuffer& out) {
  in.ForEachChunk([&](absl::string_view chunk) { out.WriteBinary(chunk); });
}

absl::Status ZlibCompress(ZlibFormat format, const netpoll::LinkBuffer& in,
                          netpoll::LinkBuffer& out) {
  z_stream zs{};
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, WindowBits(format), 8,
                   Z_DEFAULT_STRATEGY) != Z_OK) {
    return absl::InternalError(absl::StrCat(FormatName(format), ": deflateInit2 failed"));
  }
  netpoll::LinkBuffer result;
  bool failed = false;
  // Runs deflate until it has taken all of avail_in (flush == Z_NO_FLUSH) or
  // finished the stream (flush == Z_FINISH).
  auto pump = [&](int flush) {
    while (!failed) {
      absl::Span<char> space = result.Malloc(kOutputChunk);
      zs.next_out = reinterpret_cast<Bytef*>(space.data());
      zs.avail_out = static_cast<uInt>(space.size());
      const int rc = deflate(&zs, flush);
      result.MallocAck(space.size() - zs.avail_out);
      if (rc == Z_STREAM_ERROR) {
        failed = true;
      } else if (flush == Z_FINISH ? rc == Z_STREAM_END : zs.avail_in == 0) {
        return;
      }
    }
  };
  in.ForEachChunk([&](absl::string_view chunk) {
    while (!chunk.empty() && !failed) {
      const size_t n = std::min(chunk.size(), kMaxZlibInput);
      zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(chunk.data()));
      zs.avail_in = static_cast<uInt>(n);
      pump(Z_NO_FLUSH);
      chunk.remove_prefix(n);
    }
  });
  zs.next_in = nullptr;
  zs.avail_in = 0;
  pump(Z_FINISH);
  deflateEnd(&zs);
  if (failed) return absl::InternalError(absl::StrCat(FormatName(format), ": deflate failed"));
  out.Append(std::move(result));
  return absl::OkStatus();
}

absl::Status ZlibDecompress(ZlibFormat format, const netpoll::LinkBuffer& in, size_t max_output,
                            netpoll::LinkBuffer& out) {
  z_stream zs{};
  if (inflateInit2(&zs, WindowBits(format)) != Z_OK) {
    return absl::InternalError(absl::StrCat(FormatName(format), ": inflateInit2 failed"));
  }
  netpoll::LinkBuffer result;
  absl::Status status;
  bool ended = false;
  size_t produced = 0;
  in.ForEachChunk([&](absl::string_view chunk) {
    while (status.ok() && !chunk.empty()) {
      if (ended) {
        status = absl::InvalidArgumentError(
            absl::StrCat(FormatName(format), ": trailing bytes after the end of the stream"));
        return;
      }
      const size_t n = std::min(chunk.size(), kMaxZlibInput);
      zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(chunk.data()));
      zs.avail_in = static_cast<uInt>(n);
      while (status.ok() && !ended && zs.avail_in > 0) {
        absl::Span<char> space = result.Malloc(kOutputChunk);
        zs.next_out = reinterpret_cast<Bytef*>(space.data());
        zs.avail_out = static_cast<uInt>(space.size());
        const int rc = inflate(&zs, Z_NO_FLUSH);
        const size_t got = space.size() - zs.avail_out;
        result.MallocAck(got);
        produced += got;
        if (produced > max_output) {
          status = absl::ResourceExhaustedError(
              absl::StrCat(FormatName(format), ": decompressed payload exceeds the limit of ",
                           max_output, " bytes"));
        } else if (rc == Z_STREAM_END) {
          ended = true;
        } else if (rc != Z_OK && !(rc == Z_BUF_ERROR && got > 0)) {
          status = absl::InvalidArgumentError(absl::StrCat(FormatName(format), ": corrupt data (",
                                                           zs.msg != nullptr ? zs.msg : "no detail",
                                                           ")"));
        }
      }
      chunk.remove_prefix(n - zs.avail_in);
    }
  });
  inflateEnd(&zs);
  if (!status.ok()) return status;
  if (!ended) {
    return absl::InvalidArgumentError(
        absl::StrCat(FormatName(format), ": truncated data (stream does not end)"));
  }
  out.Append(std::move(result));
  return absl::OkStatus();
}

absl::Status SnappyCompress(const netpoll::LinkBuffer& in, netpoll::LinkBuffer& out) {
  std::string storage;
  const absl::string_view input = Flatten(in, &storage);
  absl::Span<char> space = out.Malloc(snappy::MaxCompressedLength(input.size()));
  size_t written = 0;
  snappy::RawCompress(input.data(), input.size(), space.data(), &written);
  out.MallocAck(written);
  return absl::OkStatus();
}

absl::Status SnappyDecompress(const netpoll::LinkBuffer& in, size_t max_output,
                              netpoll::LinkBuffer& out) {
  std::string storage;
  const absl::string_view input = Flatten(in, &storage);
  size_t length = 0;
  if (!snappy::GetUncompressedLength(input.data(), input.size(), &length)) {
    return absl::InvalidArgumentError("snappy: corrupt data (bad length preamble)");
  }
  if (length > max_output) {
    return absl::ResourceExhaustedError(absl::StrCat("snappy: decompressed payload of ", length,
                                                     " bytes exceeds the limit of ", max_output,
                                                     " bytes"));
  }
  if (length == 0) {
    return snappy::IsValidCompressedBuffer(input.data(), input.size())
               ? absl::OkStatus()
               : absl::InvalidArgumentError("snappy: corrupt data");
  }
  netpoll::LinkBuffer result;
  absl::Span<char> space = result.Malloc(length);
  if (!snappy::RawUncompress(input.data(), input.size(), space.data())) {
    result.MallocAck(0);
    return absl::InvalidArgumentError("snappy: corrupt data");
  }
  result.MallocAck(length);
  out.Append(std::move(result));
  return absl::OkStatus();
}

}  // namespace

absl::Status Compress(CompressType type, const netpoll::LinkBuffer& in, netpoll::LinkBuffer& out) {
  switch (type) {
    case CompressType::kNone:
      CopyInto(in, out);
      return absl::OkStatus();
    case CompressType::kSnappy:
      return SnappyCompress(in, out);
    case CompressType::kGzip:
      return ZlibCompress(ZlibFormat::kGzip, in, out);
    case CompressType::kZlib:
      return ZlibCompress(ZlibFormat::kZlib, in, out);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unsupported compress_type ", static_cast<int32_t>(type)));
}

std::optional<size_t> AnnouncedDecompressedSize(CompressType type, const netpoll::LinkBuffer& in) {
  if (type == CompressType::kSnappy) {
    char preamble[5];  // a varint32
    const size_t n = std::min(in.Len(), sizeof(preamble));
    in.PeekCopy(n, preamble);
    size_t length = 0;
    // GetUncompressedLength reads only the preamble.
    if (n == 0 || !snappy::GetUncompressedLength(preamble, n, &length)) return std::nullopt;
    return length;
  }
  if (type == CompressType::kGzip) {
    constexpr size_t kMinGzip = 18;  // 10-byte header, empty deflate, 8-byte trailer
    if (in.Len() < kMinGzip) return std::nullopt;
    // ISIZE: the last 4 bytes, little-endian.
    unsigned char tail[4];
    size_t skip = in.Len() - sizeof(tail);
    size_t filled = 0;
    in.ForEachChunk([&](absl::string_view chunk) {
      if (skip >= chunk.size()) {
        skip -= chunk.size();
        return;
      }
      chunk.remove_prefix(skip);
      skip = 0;
      const size_t take = std::min(chunk.size(), sizeof(tail) - filled);
      std::memcpy(tail + filled, chunk.data(), take);
      filled += take;
    });
    return static_cast<size_t>(tail[0]) | static_cast<size_t>(tail[1]) << 8 |
           static_cast<size_t>(tail[2]) << 16 | static_cast<size_t>(tail[3]) << 24;
  }
  return std::nullopt;
}

absl::Status Decompress(CompressType type, const netpoll::LinkBuffer& in, size_t max_output,
                        netpoll::LinkBuffer& out) {
  switch (type) {
    case CompressType::kNone:
      if (in.Len() > max_output) {
        return absl::ResourceExhaustedError(absl::StrCat(
            "payload of ", in.Len(), " bytes exceeds the limit of ", max_output, " bytes"));
      }
      CopyInto(in, out);
      return absl::OkStatus();
    case CompressType::kSnappy:
      return SnappyDecompress(in, max_output, out);
    case CompressType::kGzip:
      return ZlibDecompress(ZlibFormat::kGzip, in, max_output, out);
    case CompressType::kZlib:
      return ZlibDecompress(ZlibFormat::kZlib, in, max_output, out);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unsupported compress_type ", static_cast<int32_t>(type)));
}

std::string CompressTypeName(CompressType type) {
  switch (type) {
    case CompressType::kNone:
      return "none";
    case CompressType::kSnappy:
      return "snappy";
    case CompressType::kGzip:
      return "gzip";
    case CompressType::kZlib:
      return "zlib";
  }
  return absl::StrCat("unknown(", static_cast<int32_t>(type), ")");
}

bool IsKnownCompressType(int32_t type) { return type >= 0 && type <= 3; }

}  // namespace nprpc
