// baidu_std: the constants of brpc's default binary protocol. The prose spec
// is docs/protocol.md; the meta message is proto/rpc_meta.proto.
//
//   0      4            8            12                            12+body_size
//   +------+------------+------------+---------+---------+------------+
//   | PRPC | body_size  | meta_size  | RpcMeta | payload | attachment |
//   +------+------------+------------+---------+---------+------------+
//           u32 big-endian            meta_size  body_size - meta_size
//                                     bytes      - attachment_size, then
//                                                meta.attachment_size bytes
#ifndef RPC_BAIDU_STD_H_
#define RPC_BAIDU_STD_H_

#include <cstddef>
#include <cstdint>

namespace nprpc {

// The first four bytes of every frame.
inline constexpr char kBaiduStdMagic[4] = {'P', 'R', 'P', 'C'};

// magic + body_size + meta_size.
inline constexpr size_t kBaiduStdHeaderSize = 12;

// Frames whose body_size exceeds this are rejected from the header alone
// (brpc's default --max_body_size is the same 64 MiB).
inline constexpr size_t kDefaultMaxBodySize = size_t{64} << 20;

// A decompressed payload may not grow beyond this (zip-bomb guard).
inline constexpr size_t kDefaultMaxDecompressedSize = size_t{64} << 20;

// RpcMeta.compress_type: how the payload (never the attachment) is encoded.
enum class CompressType : int32_t {
  kNone = 0,
  kSnappy = 1,
  kGzip = 2,
  kZlib = 3,
};

// RpcMeta.content_type: how the payload message is serialized. Only kPb is
// spoken by nprpc; brpc also defines JSON (1), proto-JSON (2) and text (3).
enum class ContentType : int32_t {
  kPb = 0,
};

// RpcMeta.checksum_type.
enum class ChecksumType : int32_t {
  kNone = 0,
  // Masked CRC32C of the payload as sent (then the attachment when
  // checksum_with_attachment), 4 bytes big-endian in checksum_value.
  kCrc32c = 1,
};

// Size of checksum_value for ChecksumType::kCrc32c.
inline constexpr size_t kCrc32cChecksumSize = 4;

}  // namespace nprpc

#endif  // RPC_BAIDU_STD_H_
