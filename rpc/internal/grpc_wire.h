// The gRPC wire format above HTTP/2, as gRPC's PROTOCOL-HTTP2 spec says, for
// both ends (rpc/internal/grpc_protocol, rpc/internal/grpc_client_protocol):
//
//   Length-Prefixed-Message = Compressed-Flag(1 byte) Message-Length(4, big
//                             endian) Message
//   grpc-timeout            = 1*8DIGIT ("H" / "M" / "S" / "m" / "u" / "n")
//   grpc-status             = the canonical code's number (absl::StatusCode
//                             numbers are gRPC's)
//   grpc-message            = percent-encoded UTF-8
//   "*-bin" metadata        = base64 (sent unpadded, read either way)
//   grpc-encoding           = identity / gzip / deflate (zlib format)
//
// Thread safety: free functions are pure; a MessageDeframer belongs to one
// stream and is used by one thread at a time.
#ifndef RPC_INTERNAL_GRPC_WIRE_H_
#define RPC_INTERNAL_GRPC_WIRE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "netpoll/link_buffer.h"
#include "rpc/baidu_std.h"

namespace nprpc {
namespace grpc_wire {

inline constexpr size_t kPrefixSize = 5;
inline constexpr absl::string_view kContentType = "application/grpc";
// The default maximum size of one received message (gRPC's default too).
inline constexpr size_t kDefaultMaxMessageSize = size_t{4} << 20;

// Is `content_type` gRPC's ("application/grpc", "application/grpc+proto",
// "application/grpc;..."; "application/grpc+json" and others are not
// protobuf and answer false)?
bool IsGrpcContentType(absl::string_view content_type);

// Appends the prefix and `message` (moved in, no copy of its bytes).
void AppendMessage(netpoll::LinkBuffer message, bool compressed, netpoll::LinkBuffer& out);

// Cuts length-prefixed messages out of a stream's DATA bytes, which arrive in
// arbitrary pieces.
class MessageDeframer {
 public:
  explicit MessageDeframer(size_t max_message_size = kDefaultMaxMessageSize)
      : max_message_size_(max_message_size) {}

  struct Message {
    bool compressed = false;
    netpoll::LinkBuffer payload;
  };

  // Appends DATA bytes.
  void Append(absl::string_view data) { input_.WriteBinary(data); }
  void Append(netpoll::LinkBuffer data) { input_.Append(std::move(data)); }
  // The next whole message, if one is in. RESOURCE_EXHAUSTED (naming both
  // sizes) when a prefix announces more than the maximum, checked as soon as
  // the prefix is in, before its bytes arrive; INTERNAL for a flag other than
  // 0 or 1. An error is final.
  absl::Status Next(std::optional<Message>& out);
  // Bytes of an unfinished message (at the end of a stream: a truncated
  // message, an error).
  size_t buffered() const { return input_.Len(); }

 private:
  const size_t max_message_size_;
  netpoll::LinkBuffer input_;
  absl::Status error_;
};

// "grpc-timeout" <-> a duration. Parse: nullopt for a malformed value.
// Format: the most precise unit that keeps at most 8 digits; never 0 for a
// positive duration (a past deadline is sent as 1n).
std::optional<absl::Duration> ParseTimeout(absl::string_view value);
std::string FormatTimeout(absl::Duration timeout);

// grpc-status <-> absl::StatusCode (numbers 0..16); unknown numbers are
// UNKNOWN.
absl::StatusCode StatusCodeFromGrpc(absl::string_view grpc_status);
// grpc-message: percent-encodes bytes outside 0x20..0x7E and '%'.
std::string PercentEncode(absl::string_view message);
// Decodes %XX; a malformed escape is kept as is (the spec says so).
std::string PercentDecode(absl::string_view value);

// Metadata whose key ends in "-bin" carries base64 of arbitrary bytes.
bool IsBinaryKey(absl::string_view key);
std::string EncodeBinaryValue(absl::string_view bytes);
// INVALID_ARGUMENT for bad base64.
absl::StatusOr<std::string> DecodeBinaryValue(absl::string_view value);
// Headers the protocol owns (pseudo-headers, grpc-*, content-type, te,
// user-agent, ...); they never become call metadata. A `traceparent` is not
// reserved: it is the call's trace context and its metadata both.
bool IsReservedHeader(absl::string_view lowercase_key);
// Is `key` a valid metadata key (lower-case [0-9a-z-_.], non-empty)?
bool IsValidMetadataKey(absl::string_view key);

// grpc-encoding names <-> CompressType: "identity" kNone, "gzip" kGzip,
// "deflate" kZlib. nullopt for an unknown name (the call then answers
// UNIMPLEMENTED with grpc-accept-encoding).
std::optional<CompressType> EncodingFromName(absl::string_view name);
absl::string_view EncodingName(CompressType type);
// What we accept: "identity,deflate,gzip".
inline constexpr absl::string_view kAcceptEncoding = "identity,deflate,gzip";

}  // namespace grpc_wire
}  // namespace nprpc

#endif  // RPC_INTERNAL_GRPC_WIRE_H_
