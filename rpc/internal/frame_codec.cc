#include "rpc/internal/frame_codec.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <deque>
#include <memory>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/io/zero_copy_stream_impl.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "rpc/internal/compression.h"
#include "rpc/internal/crc32c.h"

namespace nprpc {
namespace {

uint32_t LoadBe32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | uint32_t{u[3]};
}

void StoreBe32(uint32_t v, char* p) {
  p[0] = static_cast<char>(v >> 24);
  p[1] = static_cast<char>(v >> 16);
  p[2] = static_cast<char>(v >> 8);
  p[3] = static_cast<char>(v);
}

absl::Status Malformed(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("baidu_std: ", what));
}

// The checks that need the parsed meta.
absl::Status ValidateMeta(const wire::RpcMeta& meta, size_t room_after_meta) {
  if (meta.has_request() == meta.has_response()) {
    return Malformed(meta.has_request() ? "meta has both request and response"
                                        : "meta has neither request nor response");
  }
  if (meta.has_request()) {
    if (!meta.request().has_service_name()) {
      return Malformed("request meta lacks required field service_name");
    }
    if (!meta.request().has_method_name()) {
      return Malformed("request meta lacks required field method_name");
    }
  }
  if (meta.attachment_size() < 0) {
    return Malformed(absl::StrCat("negative attachment_size ", meta.attachment_size()));
  }
  if (static_cast<size_t>(meta.attachment_size()) > room_after_meta) {
    return Malformed(absl::StrCat("attachment_size ", meta.attachment_size(), " exceeds the ",
                                  room_after_meta, " bytes after the meta"));
  }
  return absl::OkStatus();
}

void AddUserFields(const std::vector<UserField>& fields, wire::RpcMeta& meta) {
  for (const UserField& field : fields) {
    wire::UserFieldsEntry* entry = meta.add_user_fields();
    entry->set_key(field.key);
    entry->set_value(field.value);
  }
}

std::string ChecksumFor(ChecksumType type, bool with_attachment, const netpoll::LinkBuffer& body,
                        const netpoll::LinkBuffer& attachment) {
  if (type != ChecksumType::kCrc32c) return std::string();
  return Crc32cChecksumValue(body, with_attachment ? &attachment : nullptr);
}

// The payload as it goes on the wire: moved when uncompressed.
absl::StatusOr<netpoll::LinkBuffer> CompressPayload(CompressType type,
                                                    netpoll::LinkBuffer payload) {
  if (type == CompressType::kNone) return payload;
  netpoll::LinkBuffer compressed;
  absl::Status status = Compress(type, payload, compressed);
  if (!status.ok()) return status;
  return compressed;
}

}  // namespace

// ------------------------------------------------------------------ Decoding

DecodeResult DecodeResult::NeedMore(size_t bytes) {
  DecodeResult r(State::kNeedMore);
  r.bytes_needed_ = bytes;
  return r;
}

DecodeResult DecodeResult::Frame(DecodedFrame frame) {
  DecodeResult r(State::kFrame);
  r.frame_ = std::move(frame);
  return r;
}

DecodeResult DecodeResult::Error(absl::Status status) {
  DecodeResult r(State::kError);
  r.status_ = std::move(status);
  return r;
}

DecodeResult FrameDecoder::Decode(netpoll::LinkBuffer& in) const {
  char header[kBaiduStdHeaderSize];
  const size_t available = in.Len();
  if (available < kBaiduStdHeaderSize) {
    // Reject a wrong magic as soon as its first bytes arrive.
    const size_t n = std::min(available, sizeof(kBaiduStdMagic));
    if (n > 0 && in.PeekCopy(n, header) && std::memcmp(header, kBaiduStdMagic, n) != 0) {
      return DecodeResult::Error(Malformed(absl::StrCat(
          "bad magic \"", absl::CHexEscape(absl::string_view(header, n)), "\" (expected PRPC)")));
    }
    return DecodeResult::NeedMore(kBaiduStdHeaderSize - available);
  }
  in.PeekCopy(kBaiduStdHeaderSize, header);
  if (std::memcmp(header, kBaiduStdMagic, sizeof(kBaiduStdMagic)) != 0) {
    return DecodeResult::Error(Malformed(absl::StrCat(
        "bad magic \"", absl::CHexEscape(absl::string_view(header, 4)), "\" (expected PRPC)")));
  }
  const size_t body_size = LoadBe32(header + 4);
  const size_t meta_size = LoadBe32(header + 8);
  if (body_size > options_.max_body_size) {
    return DecodeResult::Error(absl::ResourceExhaustedError(
        absl::StrCat("baidu_std: body_size ", body_size, " exceeds the limit of ",
                     options_.max_body_size, " bytes")));
  }
  if (meta_size > body_size) {
    return DecodeResult::Error(
        Malformed(absl::StrCat("meta_size ", meta_size, " exceeds body_size ", body_size)));
  }
  if (meta_size > static_cast<size_t>(INT_MAX)) {
    return DecodeResult::Error(Malformed(absl::StrCat("meta_size ", meta_size, " too large")));
  }
  const size_t frame_size = kBaiduStdHeaderSize + body_size;
  if (available < frame_size) return DecodeResult::NeedMore(frame_size - available);

  // The whole frame is here: cut it out.
  (void)in.Skip(kBaiduStdHeaderSize);
  absl::StatusOr<netpoll::LinkBuffer> meta_bytes = in.Slice(meta_size);
  if (!meta_bytes.ok()) return DecodeResult::Error(meta_bytes.status());
  absl::StatusOr<netpoll::LinkBuffer> rest = in.Slice(body_size - meta_size);
  if (!rest.ok()) return DecodeResult::Error(rest.status());

  DecodedFrame frame;
  absl::StatusOr<absl::string_view> meta_view = meta_bytes->Next(meta_size);
  if (!meta_view.ok()) return DecodeResult::Error(meta_view.status());
  if (!frame.meta.ParsePartialFromArray(meta_view->data(), static_cast<int>(meta_view->size()))) {
    return DecodeResult::Error(
        Malformed(absl::StrCat("unparsable RpcMeta (", meta_size, " bytes)")));
  }
  absl::Status valid = ValidateMeta(frame.meta, rest->Len());
  if (!valid.ok()) return DecodeResult::Error(std::move(valid));

  const size_t attachment_size = static_cast<size_t>(frame.meta.attachment_size());
  absl::StatusOr<netpoll::LinkBuffer> payload = rest->Slice(rest->Len() - attachment_size);
  if (!payload.ok()) return DecodeResult::Error(payload.status());
  frame.payload = *std::move(payload);
  frame.attachment = *std::move(rest);
  return DecodeResult::Frame(std::move(frame));
}

absl::Status VerifyChecksum(const DecodedFrame& frame) {
  const wire::RpcMeta& meta = frame.meta;
  switch (meta.checksum_type()) {
    case static_cast<int32_t>(ChecksumType::kNone):
      return absl::OkStatus();
    case static_cast<int32_t>(ChecksumType::kCrc32c):
      break;
    default:
      return Malformed(absl::StrCat("unsupported checksum_type ", meta.checksum_type()));
  }
  if (meta.checksum_value().size() != kCrc32cChecksumSize) {
    return Malformed(absl::StrCat("crc32c checksum_value has ", meta.checksum_value().size(),
                                  " bytes (expected 4)"));
  }
  const std::string actual = Crc32cChecksumValue(
      frame.payload, meta.checksum_with_attachment() ? &frame.attachment : nullptr);
  if (actual != meta.checksum_value()) {
    return absl::DataLossError(absl::StrCat("baidu_std: crc32c checksum mismatch: frame says ",
                                            absl::BytesToHexString(meta.checksum_value()),
                                            ", computed ", absl::BytesToHexString(actual)));
  }
  return absl::OkStatus();
}

absl::StatusOr<netpoll::LinkBuffer> UncompressPayload(DecodedFrame& frame, size_t max_size) {
  const int32_t type = frame.meta.compress_type();
  if (!IsKnownCompressType(type)) {
    return Malformed(absl::StrCat("unsupported compress_type ", type));
  }
  if (type == static_cast<int32_t>(CompressType::kNone)) {
    if (frame.payload.Len() > max_size) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "baidu_std: payload of ", frame.payload.Len(), " bytes exceeds the limit of ", max_size));
    }
    return std::move(frame.payload);
  }
  netpoll::LinkBuffer plain;
  absl::Status status = Decompress(static_cast<CompressType>(type), frame.payload, max_size, plain);
  if (!status.ok()) return status;
  frame.payload.Clear();
  return plain;
}

TraceContext TraceOf(const wire::RpcRequestMeta& request) {
  TraceContext trace;
  if (request.has_trace_id()) trace.trace_id = request.trace_id();
  if (request.has_span_id()) trace.span_id = request.span_id();
  if (request.has_parent_span_id()) trace.parent_span_id = request.parent_span_id();
  if (request.has_log_id()) trace.log_id = request.log_id();
  if (request.has_request_id()) trace.request_id = request.request_id();
  return trace;
}

const std::string* FindUserField(const wire::RpcMeta& meta, absl::string_view key) {
  const std::string* found = nullptr;
  for (const wire::UserFieldsEntry& entry : meta.user_fields()) {
    if (entry.key() == key) found = &entry.value();
  }
  return found;
}

// ------------------------------------------------------------------ Encoding

wire::RpcMeta BuildRequestMeta(const RequestHeader& header, size_t attachment_size,
                               std::string checksum_value) {
  wire::RpcMeta meta;
  wire::RpcRequestMeta* request = meta.mutable_request();
  request->set_service_name(header.service_name);
  request->set_method_name(header.method_name);
  const TraceContext& trace = header.trace;
  if (trace.log_id) request->set_log_id(*trace.log_id);
  if (trace.trace_id) request->set_trace_id(*trace.trace_id);
  if (trace.span_id) request->set_span_id(*trace.span_id);
  if (trace.parent_span_id) request->set_parent_span_id(*trace.parent_span_id);
  if (trace.request_id) request->set_request_id(*trace.request_id);
  if (header.timeout_ms) request->set_timeout_ms(*header.timeout_ms);
  meta.set_compress_type(static_cast<int32_t>(header.compress_type));
  meta.set_correlation_id(header.correlation_id);
  if (attachment_size > 0) meta.set_attachment_size(static_cast<int32_t>(attachment_size));
  if (header.authentication_data) meta.set_authentication_data(*header.authentication_data);
  AddUserFields(header.user_fields, meta);
  meta.set_content_type(static_cast<int32_t>(ContentType::kPb));
  meta.set_checksum_type(static_cast<int32_t>(header.checksum_type));
  meta.set_checksum_value(std::move(checksum_value));
  if (header.checksum_with_attachment) meta.set_checksum_with_attachment(true);
  return meta;
}

wire::RpcMeta BuildResponseMeta(const ResponseHeader& header, size_t attachment_size,
                                std::string checksum_value) {
  wire::RpcMeta meta;
  wire::RpcResponseMeta* response = meta.mutable_response();
  response->set_error_code(header.error_code);
  if (!header.error_text.empty()) response->set_error_text(header.error_text);
  meta.set_compress_type(static_cast<int32_t>(header.compress_type));
  meta.set_correlation_id(header.correlation_id);
  if (attachment_size > 0) meta.set_attachment_size(static_cast<int32_t>(attachment_size));
  AddUserFields(header.user_fields, meta);
  meta.set_content_type(static_cast<int32_t>(ContentType::kPb));
  meta.set_checksum_type(static_cast<int32_t>(header.checksum_type));
  meta.set_checksum_value(std::move(checksum_value));
  if (header.checksum_with_attachment) meta.set_checksum_with_attachment(true);
  return meta;
}

std::string Crc32cChecksumValue(const netpoll::LinkBuffer& payload,
                                const netpoll::LinkBuffer* attachment) {
  uint32_t crc = 0;
  payload.ForEachChunk([&](absl::string_view chunk) { crc = crc32c::Extend(crc, chunk); });
  if (attachment != nullptr) {
    attachment->ForEachChunk([&](absl::string_view chunk) { crc = crc32c::Extend(crc, chunk); });
  }
  std::string value(kCrc32cChecksumSize, '\0');
  StoreBe32(crc32c::Mask(crc), value.data());
  return value;
}

absl::Status EncodeFrame(const wire::RpcMeta& meta, netpoll::LinkBuffer payload,
                         netpoll::LinkBuffer attachment, netpoll::LinkBuffer& out) {
  const size_t declared = meta.has_attachment_size() ? meta.attachment_size() : 0;
  if (meta.attachment_size() < 0 || declared != attachment.Len()) {
    return absl::InvalidArgumentError(absl::StrCat("baidu_std: meta.attachment_size ",
                                                   meta.attachment_size(), " but attachment has ",
                                                   attachment.Len(), " bytes"));
  }
  const size_t meta_size = meta.ByteSizeLong();
  const uint64_t body_size =
      uint64_t{meta_size} + uint64_t{payload.Len()} + uint64_t{attachment.Len()};
  if (body_size > UINT32_MAX) {
    return absl::InvalidArgumentError(
        absl::StrCat("baidu_std: body of ", body_size, " bytes does not fit in 32 bits"));
  }
  absl::Span<char> space = out.Malloc(kBaiduStdHeaderSize + meta_size);
  std::memcpy(space.data(), kBaiduStdMagic, sizeof(kBaiduStdMagic));
  StoreBe32(static_cast<uint32_t>(body_size), space.data() + 4);
  StoreBe32(static_cast<uint32_t>(meta_size), space.data() + 8);
  meta.SerializeWithCachedSizesToArray(
      reinterpret_cast<uint8_t*>(space.data() + kBaiduStdHeaderSize));
  out.MallocAck(kBaiduStdHeaderSize + meta_size);
  out.Append(std::move(payload));
  out.Append(std::move(attachment));
  return absl::OkStatus();
}

absl::Status EncodeRequest(const RequestHeader& header, netpoll::LinkBuffer payload,
                           netpoll::LinkBuffer attachment, netpoll::LinkBuffer& out) {
  absl::StatusOr<netpoll::LinkBuffer> body =
      CompressPayload(header.compress_type, std::move(payload));
  if (!body.ok()) return body.status();
  std::string checksum =
      ChecksumFor(header.checksum_type, header.checksum_with_attachment, *body, attachment);
  const wire::RpcMeta meta = BuildRequestMeta(header, attachment.Len(), std::move(checksum));
  return EncodeFrame(meta, *std::move(body), std::move(attachment), out);
}

absl::Status EncodeResponse(const ResponseHeader& header, netpoll::LinkBuffer payload,
                            netpoll::LinkBuffer attachment, netpoll::LinkBuffer& out) {
  if (header.error_code != 0 && (!payload.empty() || !attachment.empty())) {
    return absl::InvalidArgumentError(
        "baidu_std: an error response carries no payload and no attachment");
  }
  absl::StatusOr<netpoll::LinkBuffer> body =
      CompressPayload(header.compress_type, std::move(payload));
  if (!body.ok()) return body.status();
  std::string checksum =
      header.checksum_type == ChecksumType::kNone
          ? header.echoed_checksum_value
          : ChecksumFor(header.checksum_type, header.checksum_with_attachment, *body, attachment);
  const wire::RpcMeta meta = BuildResponseMeta(header, attachment.Len(), std::move(checksum));
  return EncodeFrame(meta, *std::move(body), std::move(attachment), out);
}

// ---------------------------------------------------------- Payload messages

absl::Status SerializeToLinkBuffer(const google::protobuf::MessageLite& message,
                                   netpoll::LinkBuffer& out) {
  if (!message.IsInitialized()) {
    return absl::InvalidArgumentError(absl::StrCat("cannot serialize ", message.GetTypeName(),
                                                   ": missing required fields ",
                                                   message.InitializationErrorString()));
  }
  const size_t size = message.ByteSizeLong();
  if (size > static_cast<size_t>(INT_MAX)) {
    return absl::InvalidArgumentError(absl::StrCat("cannot serialize ", message.GetTypeName(), ": ",
                                                   size, " bytes exceed 2 GiB"));
  }
  if (size == 0) return absl::OkStatus();
  absl::Span<char> space = out.Malloc(size);
  message.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(space.data()));
  out.MallocAck(size);
  return absl::OkStatus();
}

absl::Status ParseFromLinkBuffer(const netpoll::LinkBuffer& in,
                                 google::protobuf::MessageLite& message) {
  // One array stream per chunk, read in place through a concatenation.
  std::deque<google::protobuf::io::ArrayInputStream> chunks;  // not movable
  in.ForEachChunk([&](absl::string_view chunk) {
    if (!chunk.empty()) chunks.emplace_back(chunk.data(), static_cast<int>(chunk.size()));
  });
  std::vector<google::protobuf::io::ZeroCopyInputStream*> streams;
  streams.reserve(chunks.size());
  for (auto& chunk : chunks) streams.push_back(&chunk);
  google::protobuf::io::ConcatenatingInputStream input(streams.data(),
                                                       static_cast<int>(streams.size()));
  if (!message.ParsePartialFromZeroCopyStream(&input)) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot parse ", message.GetTypeName(), " from ", in.Len(), " bytes"));
  }
  if (!message.IsInitialized()) {
    return absl::InvalidArgumentError(absl::StrCat("parsed ", message.GetTypeName(),
                                                   " lacks required fields ",
                                                   message.InitializationErrorString()));
  }
  return absl::OkStatus();
}

}  // namespace nprpc
