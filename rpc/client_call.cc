#include "rpc/client_call.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "rpc/errors.h"

namespace nprpc {

bool ClientCall::CompleteWithResponse(DecodedFrame frame, size_t max_body_size) {
  if (completed_) return false;
  const wire::RpcResponseMeta& meta = frame.meta.response();
  if (absl::Status checksum = VerifyChecksum(frame); !checksum.ok()) {
    return Complete(MakeRpcError(ERESPONSE, absl::StrCat("response ", checksum.message())));
  }
  if (info_ != nullptr) {
    info_->response_attachment = std::move(frame.attachment);
    info_->response_metadata.clear();
    for (const auto& field : frame.meta.user_fields()) {
      info_->response_metadata.emplace_back(field.key(), field.value());
    }
  }
  if (meta.error_code() != 0) {
    return Complete(MakeRpcError(meta.error_code(), meta.error_text()));
  }
  absl::StatusOr<netpoll::LinkBuffer> payload = UncompressPayload(frame, max_body_size);
  if (!payload.ok()) {
    return Complete(
        MakeRpcError(ERESPONSE, absl::StrCat("response payload: ", payload.status().message())));
  }
  if (absl::Status parsed = ParseFromLinkBuffer(*payload, *response_); !parsed.ok()) {
    return Complete(MakeRpcError(
        ERESPONSE,
        absl::StrCat("cannot parse response ", response_->GetTypeName(), ": ", parsed.message())));
  }
  return Complete(absl::OkStatus());
}

bool ClientCall::Complete(absl::Status status) {
  if (completed_) return false;
  completed_ = true;
  netpoll::TimerId timer_id = timer.load();
  if (cancel_timer && timer_id != netpoll::kInvalidTimerId) cancel_timer(timer_id);
  if (cancel.has_value()) cancel->Unregister(cancel_registration.load());
  if (info_ != nullptr) {
    info_->error_code = status.ok() ? 0 : ErrorCodeOf(status);
    info_->remote_address = remote_address;
    info_->latency = absl::Now() - start_;
  }
  DoneCallback done = std::move(done_);
  done(std::move(status));
  return true;
}

}  // namespace nprpc
