// The baidu_std frame codec: cuts frames out of a connection's input buffer,
// and writes request and response frames byte-for-byte like brpc 1.17.
// docs/protocol.md is the prose spec; rpc/baidu_std.h holds the constants.
//
// Decoding (one connection's input, on the thread that owns it):
//
//   FrameDecoder decoder({.max_body_size = kDefaultMaxBodySize});
//   for (;;) {
//     DecodeResult r = decoder.Decode(input);
//     if (r.need_more()) break;                 // wait for r.bytes_needed() more
//     if (r.is_error()) return Close(r.status());  // the stream cannot resync
//     DecodedFrame frame = r.TakeFrame();
//     absl::Status ok = VerifyChecksum(frame);
//     absl::StatusOr<netpoll::LinkBuffer> payload = UncompressPayload(frame);
//     ...
//   }
//
// Encoding:
//
//   RequestHeader h{.service_name = "example.EchoService", .method_name = "Echo",
//                   .correlation_id = id};
//   netpoll::LinkBuffer payload;
//   absl::Status s = SerializeToLinkBuffer(request, payload);
//   s = EncodeRequest(h, std::move(payload), std::move(attachment), output);
//
// Payload and attachment bytes are never copied by the codec: the decoder
// cuts them out with LinkBuffer::Slice() and the encoder appends them with
// LinkBuffer::Append(). Only the meta (small) is parsed from a contiguous view
// and serialized straight into the output buffer. Compression, when asked
// for, of course produces new bytes.
//
// Thread safety: FrameDecoder is immutable after construction and may be
// shared; every function here is safe from any thread on distinct buffers.
#ifndef RPC_INTERNAL_FRAME_CODEC_H_
#define RPC_INTERNAL_FRAME_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message_lite.h"
#include "netpoll/link_buffer.h"
#include "proto/rpc_meta.pb.h"
#include "rpc/baidu_std.h"
#include "rpc/trace_context.h"

namespace nprpc {

// ------------------------------------------------------------------ Decoding

// One frame cut out of the input.
struct DecodedFrame {
  // Parsed and validated: exactly one of request/response is present, the
  // request's required fields are set, attachment_size fits the body.
  wire::RpcMeta meta;
  // The payload as sent: still compressed when meta.compress_type() != 0.
  netpoll::LinkBuffer payload;
  // meta.attachment_size() raw bytes (never compressed); empty when none.
  netpoll::LinkBuffer attachment;

  bool is_request() const { return meta.has_request(); }
};

// The three answers of FrameDecoder::Decode().
class DecodeResult {
 public:
  static DecodeResult NeedMore(size_t bytes);
  static DecodeResult Frame(DecodedFrame frame);
  static DecodeResult Error(absl::Status status);

  bool need_more() const { return state_ == State::kNeedMore; }
  bool has_frame() const { return state_ == State::kFrame; }
  bool is_error() const { return state_ == State::kError; }

  // need_more(): at least this many more bytes are needed before Decode()
  // can return a frame (it may answer an error sooner: a bad magic shows
  // after its first wrong byte).
  size_t bytes_needed() const { return bytes_needed_; }
  // is_error(): why; OK otherwise.
  const absl::Status& status() const { return status_; }
  // has_frame(): the frame. TakeFrame() moves it out.
  const DecodedFrame& frame() const { return frame_; }
  DecodedFrame TakeFrame() { return std::move(frame_); }

 private:
  enum class State { kNeedMore, kFrame, kError };
  explicit DecodeResult(State state) : state_(state) {}

  State state_;
  size_t bytes_needed_ = 0;
  absl::Status status_;
  DecodedFrame frame_;
};

struct FrameDecoderOptions {
  // A header announcing a larger body_size is rejected at once, before any
  // of the body is buffered.
  size_t max_body_size = kDefaultMaxBodySize;
};

// Cuts baidu_std frames from the head of a byte stream.
class FrameDecoder {
 public:
  explicit FrameDecoder(FrameDecoderOptions options = {}) : options_(options) {}

  // Looks at the head of `in`:
  //  - need_more(): `in` holds a valid prefix of a frame; nothing consumed.
  //  - has_frame(): the frame's bytes were consumed from `in`.
  //  - is_error(): bad magic, body_size over the limit (decided from the
  //    12-byte header alone), meta_size > body_size, unparsable meta, missing
  //    required fields, neither or both of request/response, attachment_size
  //    negative or larger than the room after the meta. A baidu_std stream
  //    cannot be resynchronized: close the connection. How much of `in` was
  //    consumed is unspecified.
  // Error codes: ResourceExhausted for an oversized body, InvalidArgument for
  // everything else.
  DecodeResult Decode(netpoll::LinkBuffer& in) const;

  const FrameDecoderOptions& options() const { return options_; }

 private:
  const FrameDecoderOptions options_;
};

// Checks frame.meta's checksum against the payload (as sent) and, when
// checksum_with_attachment, the attachment. OK when checksum_type is 0 (a
// checksum_value is then ignored, as brpc does). DataLoss on a mismatch;
// InvalidArgument for an unknown checksum_type or a value that is not 4 bytes.
absl::Status VerifyChecksum(const DecodedFrame& frame);

// Moves frame.payload out, decompressed per frame.meta.compress_type() (no
// copy when it is 0). ResourceExhausted when the result would exceed
// max_size; InvalidArgument for an unknown type or corrupt data.
absl::StatusOr<netpoll::LinkBuffer> UncompressPayload(
    DecodedFrame& frame, size_t max_size = kDefaultMaxDecompressedSize);

// The value of the last user_fields entry with this key, or nullptr.
const std::string* FindUserField(const wire::RpcMeta& meta, absl::string_view key);

// The tracing ids a request meta carries (each only when present).
TraceContext TraceOf(const wire::RpcRequestMeta& request);

// ------------------------------------------------------------------ Encoding

// One user_fields entry. Entries go on the wire in the order given.
struct UserField {
  std::string key;
  std::string value;
};

// What a client says about one call. Optional fields are sent only when set,
// as brpc does.
struct RequestHeader {
  std::string service_name{};  // full name: "example.EchoService"
  std::string method_name{};   // "Echo"
  int64_t correlation_id = 0;
  TraceContext trace{};
  std::optional<int32_t> timeout_ms{};
  std::optional<std::string> authentication_data{};
  std::vector<UserField> user_fields{};
  CompressType compress_type = CompressType::kNone;  // applied to the payload
  ChecksumType checksum_type = ChecksumType::kNone;
  bool checksum_with_attachment = false;  // checksum covers the attachment too
};

// What a server says about one call.
struct ResponseHeader {
  int64_t correlation_id = 0;  // the request's, echoed
  int32_t error_code = 0;      // 0 or a brpc error number (rpc/errors.h)
  std::string error_text{};    // sent only when not empty, as brpc does
  std::vector<UserField> user_fields{};
  CompressType compress_type = CompressType::kNone;
  ChecksumType checksum_type = ChecksumType::kNone;
  bool checksum_with_attachment = false;
  // brpc's server writes the request's checksum_value back into its response
  // even when the response itself has checksum_type 0. Set this to the
  // request's checksum_value to reproduce that; used only when checksum_type
  // is kNone (a real checksum replaces it).
  std::string echoed_checksum_value{};
};

// The metas brpc 1.17 writes. Besides the header's fields, a request meta
// always carries compress_type, correlation_id, content_type (0),
// checksum_type and checksum_value (empty when none) and a response meta also
// error_code; attachment_size only when not 0; checksum_with_attachment only
// when true.
wire::RpcMeta BuildRequestMeta(const RequestHeader& header, size_t attachment_size,
                               std::string checksum_value);
wire::RpcMeta BuildResponseMeta(const ResponseHeader& header, size_t attachment_size,
                                std::string checksum_value);

// The checksum_value of checksum type kCrc32c: the masked CRC32C of payload
// then (when `attachment` is not null) attachment, 4 bytes big-endian.
std::string Crc32cChecksumValue(const netpoll::LinkBuffer& payload,
                                const netpoll::LinkBuffer* attachment);

// Appends one frame: header, meta, payload, attachment. payload and
// attachment are appended without copying. InvalidArgument when
// meta.attachment_size() does not match attachment.Len() or the body does not
// fit in 32 bits.
absl::Status EncodeFrame(const wire::RpcMeta& meta, netpoll::LinkBuffer payload,
                         netpoll::LinkBuffer attachment, netpoll::LinkBuffer& out);

// Compresses `payload` (the serialized request, uncompressed) as the header
// asks, computes the checksum, builds the meta and appends the frame to `out`.
// On error `out` is unchanged.
absl::Status EncodeRequest(const RequestHeader& header, netpoll::LinkBuffer payload,
                           netpoll::LinkBuffer attachment, netpoll::LinkBuffer& out);

// Same for a response. brpc sends no payload and no attachment with an
// error: when header.error_code != 0 both must be empty (InvalidArgument
// otherwise).
absl::Status EncodeResponse(const ResponseHeader& header, netpoll::LinkBuffer payload,
                            netpoll::LinkBuffer attachment, netpoll::LinkBuffer& out);

// ---------------------------------------------------------- Payload messages

// Appends the serialization of `message`, written straight into the tail of
// `out`. InvalidArgument when required fields are missing or it exceeds 2 GiB.
absl::Status SerializeToLinkBuffer(const google::protobuf::MessageLite& message,
                                   netpoll::LinkBuffer& out);

// Parses all readable bytes of `in` (not consumed) into `message`, reading
// the chunks in place. InvalidArgument when they do not parse or required
// fields are missing.
absl::Status ParseFromLinkBuffer(const netpoll::LinkBuffer& in,
                                 google::protobuf::MessageLite& message);

}  // namespace nprpc

#endif  // RPC_INTERNAL_FRAME_CODEC_H_
