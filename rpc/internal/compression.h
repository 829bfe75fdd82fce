// Payload compression of baidu_std: snappy, gzip and zlib over LinkBuffers.
//
//   netpoll::LinkBuffer compressed;
//   absl::Status s = nprpc::Compress(CompressType::kGzip, payload, compressed);
//   netpoll::LinkBuffer plain;
//   s = nprpc::Decompress(CompressType::kGzip, compressed, kDefaultMaxDecompressedSize, plain);
//
// The encodings are the ones brpc produces and accepts: gzip is a deflate
// stream with a gzip header (RFC 1952), zlib one with a zlib header
// (RFC 1950), both at zlib's default level; snappy is the raw snappy format
// (not the framed one). Only the payload of a frame is ever compressed; the
// attachment never is.
//
// Neither function consumes `in`. gzip and zlib stream over the chunks of
// `in` and write into fresh blocks of `out`; snappy needs its input
// contiguous, so a multi-chunk input is copied once.
//
// Thread safety: pure functions, safe from any thread on distinct buffers.
#ifndef RPC_INTERNAL_COMPRESSION_H_
#define RPC_INTERNAL_COMPRESSION_H_

#include <cstddef>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "netpoll/link_buffer.h"
#include "rpc/baidu_std.h"

namespace nprpc {

// Appends the `type` encoding of all readable bytes of `in` to `out`.
// kNone appends a copy. InvalidArgument for an unknown type; Internal when the
// library fails.
absl::Status Compress(CompressType type, const netpoll::LinkBuffer& in, netpoll::LinkBuffer& out);

// Appends the decoding of all readable bytes of `in` to `out`. Fails, leaving
// `out` untouched, with:
//   ResourceExhausted when the decoded bytes would exceed max_output (checked
//     while decoding, so a small bomb never expands fully in memory);
//   InvalidArgument for an unknown type, corrupt or truncated data, or bytes
//     after the end of a gzip/zlib stream.
// kNone appends a copy (subject to max_output too).
absl::Status Decompress(CompressType type, const netpoll::LinkBuffer& in, size_t max_output,
                        netpoll::LinkBuffer& out);

// The decoded size `in` announces, when its format carries one: snappy's
// length preamble, gzip's ISIZE trailer (the size modulo 2^32). A peer can
// understate it; passed to Decompress() as max_output it is then enforced
// (ResourceExhausted). nullopt for kNone, zlib and truncated input. Copies
// at most a few bytes.
std::optional<size_t> AnnouncedDecompressedSize(CompressType type, const netpoll::LinkBuffer& in);

// "none", "snappy", "gzip", "zlib", or "unknown(<n>)".
std::string CompressTypeName(CompressType type);

// True for the four types above.
bool IsKnownCompressType(int32_t type);

}  // namespace nprpc

#endif  // RPC_INTERNAL_COMPRESSION_H_
