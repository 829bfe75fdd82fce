#include "rpc/internal/baidu_std_client_codec.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "netpoll/logging.h"
#include "rpc/errors.h"

namespace nprpc {
namespace {

std::atomic<int64_t> g_unexpected_responses{0};

absl::Status DecodeResponse(DecodedFrame& frame, size_t max_body_size,
                            google::protobuf::Message& response, CallInfo* info) {
  const wire::RpcResponseMeta& meta = frame.meta.response();
  if (absl::Status checksum = VerifyChecksum(frame); !checksum.ok()) {
    return MakeRpcError(ERESPONSE, absl::StrCat("response ", checksum.message()));
  }
  if (info != nullptr) {
    info->response_attachment = std::move(frame.attachment);
    info->response_metadata.clear();
    for (const auto& field : frame.meta.user_fields()) {
      if (field.key() == kStatusCodeField) continue;  // reserved, read below
      info->response_metadata.emplace_back(field.key(), field.value());
    }
  }
  if (meta.error_code() != 0) {
    return MakeRpcError(meta.error_code(), BoundedQuote(meta.error_text(), kMaxErrorText),
                        FindUserField(frame.meta, kStatusCodeField));
  }
  absl::StatusOr<netpoll::LinkBuffer> payload = UncompressPayload(frame, max_body_size);
  if (!payload.ok()) {
    return MakeRpcError(ERESPONSE, absl::StrCat("response payload: ", payload.status().message()));
  }
  if (absl::Status parsed = ParseFromLinkBuffer(*payload, response); !parsed.ok()) {
    return MakeRpcError(ERESPONSE, absl::StrCat("cannot parse response ", response.GetTypeName(),
                                                ": ", parsed.message()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status EncodeBaiduStdRequest(int64_t correlation_id, const ClientRequest& request,
                                   absl::Duration timeout, netpoll::LinkBuffer& out) {
  RequestHeader header;
  header.service_name = request.service;
  header.method_name = request.method;
  header.correlation_id = correlation_id;
  header.trace = request.trace;
  header.user_fields.reserve(request.metadata.size());
  for (const auto& [key, value] : request.metadata) header.user_fields.push_back({key, value});
  header.compress_type = request.compress_type;
  header.checksum_type = request.checksum ? ChecksumType::kCrc32c : ChecksumType::kNone;
  if (timeout != absl::InfiniteDuration()) {
    int64_t ms = absl::ToInt64Milliseconds(absl::Ceil(timeout, absl::Milliseconds(1)));
    header.timeout_ms = static_cast<int32_t>(std::clamp<int64_t>(ms, 1, INT32_MAX));
  }
  absl::Status encoded =
      EncodeRequest(header, request.payload.Clone(), request.attachment.Clone(), out);
  if (!encoded.ok()) {
    return MakeRpcError(EREQUEST, absl::StrCat("cannot send request: ", encoded.message()));
  }
  return absl::OkStatus();
}

absl::Status AddBaiduStdCredential(std::string credential, netpoll::LinkBuffer& frame) {
  // Our own frame: no body limit applies to decoding it again.
  const FrameDecoder decoder(FrameDecoderOptions{.max_body_size = UINT32_MAX});
  DecodeResult decoded = decoder.Decode(frame);
  if (!decoded.has_frame() || !decoded.frame().is_request() || !frame.empty()) {
    return MakeRpcError(EREQUEST, "cannot add the credential: not one whole request frame");
  }
  DecodedFrame request = decoded.TakeFrame();
  request.meta.set_authentication_data(std::move(credential));
  netpoll::LinkBuffer out;
  if (absl::Status s =
          EncodeFrame(request.meta, std::move(request.payload), std::move(request.attachment), out);
      !s.ok()) {
    return MakeRpcError(EREQUEST, absl::StrCat("cannot add the credential: ", s.message()));
  }
  frame = std::move(out);
  return absl::OkStatus();
}

absl::StatusOr<std::string> GenerateBaiduStdCredential(const Authenticator& authenticator) {
  absl::StatusOr<std::string> credential = authenticator.GenerateCredential();
  if (!credential.ok()) {
    return MakeRpcError(
        ERPCAUTH, absl::StrCat("Fail to generate credential: ", credential.status().message()));
  }
  return credential;
}

bool CompleteWithBaiduStdResponse(ClientCall& call, DecodedFrame frame, size_t max_body_size) {
  return call.CompleteWithAnswer([&](google::protobuf::Message& response, CallInfo* info) {
    return DecodeResponse(frame, max_body_size, response, info);
  });
}

void LogUnexpectedResponse(absl::string_view address, int64_t correlation_id) {
  g_unexpected_responses.fetch_add(1, std::memory_order_relaxed);
  static netpoll::LogRateLimiter limiter(absl::Seconds(1));
  if (int64_t skipped = 0; limiter.Allow(&skipped)) {
    NP_LOG(WARNING) << "dropped a response from " << address << " for correlation_id "
                    << correlation_id
                    << " that no call on the connection is waiting for (a late answer to an "
                       "abandoned attempt, or a duplicate; "
                    << skipped << " more dropped since the last report)";
  }
}

int64_t UnexpectedResponses() { return g_unexpected_responses.load(std::memory_order_relaxed); }

}  // namespace nprpc
