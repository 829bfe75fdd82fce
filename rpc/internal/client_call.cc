#include "rpc/internal/client_call.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "rpc/errors.h"

namespace nprpc {

bool ClientCall::completed() const {
  netpoll::MutexLock lock(&mu_);
  return completed_;
}

bool ClientCall::answered_by_server() const {
  netpoll::MutexLock lock(&mu_);
  return answered_by_server_;
}

void ClientCall::set_remote_address(std::string address) {
  netpoll::MutexLock lock(&mu_);
  remote_address_ = std::move(address);
}

ClientCall::DoneCallback ClientCall::TakeDoneLocked(const absl::Status& status) {
  completed_ = true;
  if (info_ != nullptr) {
    info_->error_code = status.ok() ? 0 : ErrorCodeOf(status);
    info_->remote_address = remote_address_;
    info_->latency = absl::Now() - start_;
  }
  return std::move(done_);
}

bool ClientCall::CompleteWithResponse(DecodedFrame frame, size_t max_body_size) {
  DoneCallback done;
  absl::Status status;
  {
    netpoll::MutexLock lock(&mu_);
    if (completed_) return false;
    answered_by_server_ = true;
    const wire::RpcResponseMeta& meta = frame.meta.response();
    if (absl::Status checksum = VerifyChecksum(frame); !checksum.ok()) {
      status = MakeRpcError(ERESPONSE, absl::StrCat("response ", checksum.message()));
    } else {
      if (info_ != nullptr) {
        info_->response_attachment = std::move(frame.attachment);
        info_->response_metadata.clear();
        for (const auto& field : frame.meta.user_fields()) {
          if (field.key() == kStatusCodeField) continue;  // reserved, read below
          info_->response_metadata.emplace_back(field.key(), field.value());
        }
      }
      if (meta.error_code() != 0) {
        status = MakeRpcError(meta.error_code(), meta.error_text(),
                              FindUserField(frame.meta, kStatusCodeField));
      } else {
        absl::StatusOr<netpoll::LinkBuffer> payload = UncompressPayload(frame, max_body_size);
        if (!payload.ok()) {
          status = MakeRpcError(ERESPONSE,
                                absl::StrCat("response payload: ", payload.status().message()));
        } else if (absl::Status parsed = ParseFromLinkBuffer(*payload, *response_); !parsed.ok()) {
          status = MakeRpcError(
              ERESPONSE, absl::StrCat("cannot parse response ", response_->GetTypeName(), ": ",
                                      parsed.message()));
        }
      }
    }
    done = TakeDoneLocked(status);
  }
  done(std::move(status));
  return true;
}

bool ClientCall::Complete(absl::Status status) {
  DoneCallback done;
  {
    netpoll::MutexLock lock(&mu_);
    if (completed_) return false;
    done = TakeDoneLocked(status);
  }
  done(std::move(status));
  return true;
}

}  // namespace nprpc
