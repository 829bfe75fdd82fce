#include "rpc/errors.h"

#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace nprpc {

absl::StatusCode StatusCodeForErrorCode(int32_t error_code) {
  switch (error_code) {
    case 0:
      return absl::StatusCode::kOk;
    case ENOSERVICE:
    case ENOMETHOD:
      return absl::StatusCode::kUnimplemented;
    case EREQUEST:
      return absl::StatusCode::kInvalidArgument;
    case ERPCAUTH:
      return absl::StatusCode::kUnauthenticated;
    case ERPCTIMEDOUT:
      return absl::StatusCode::kDeadlineExceeded;
    case EFAILEDSOCKET:
    case EOVERCROWDED:
    case ELOGOFF:
      return absl::StatusCode::kUnavailable;
    case ELIMIT:
      return absl::StatusCode::kResourceExhausted;
    case EINTERNAL:
    case ERESPONSE:
      return absl::StatusCode::kInternal;
    default:
      return absl::StatusCode::kUnknown;
  }
}

absl::Status MakeRpcError(int32_t error_code, absl::string_view text) {
  if (error_code == 0) return absl::OkStatus();
  absl::Status status(StatusCodeForErrorCode(error_code), text);
  status.SetPayload(kErrorCodePayloadUrl, absl::Cord(absl::StrCat(error_code)));
  return status;
}

absl::Status MakeRpcError(int32_t error_code, absl::string_view text,
                          const std::string* status_code_field) {
  absl::Status status = MakeRpcError(error_code, text);
  int code = 0;
  if (status.ok() || status_code_field == nullptr || !absl::SimpleAtoi(*status_code_field, &code) ||
      code <= static_cast<int>(absl::StatusCode::kOk) ||
      code > static_cast<int>(absl::StatusCode::kUnauthenticated) ||
      code == static_cast<int>(status.code())) {
    return status;
  }
  absl::Status restored(static_cast<absl::StatusCode>(code), text);
  restored.SetPayload(kErrorCodePayloadUrl, absl::Cord(absl::StrCat(error_code)));
  return restored;
}

std::optional<std::string> StatusCodeFieldFor(int32_t error_code, absl::StatusCode code) {
  if (error_code == 0 || code == absl::StatusCode::kOk ||
      StatusCodeForErrorCode(error_code) == code) {
    return std::nullopt;
  }
  return absl::StrCat(static_cast<int>(code));
}

namespace {

int32_t ErrorCodeForStatusCode(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return 0;
    case absl::StatusCode::kUnimplemented:
      return ENOMETHOD;
    case absl::StatusCode::kInvalidArgument:
      return EREQUEST;
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kPermissionDenied:
      return ERPCAUTH;
    case absl::StatusCode::kDeadlineExceeded:
      return ERPCTIMEDOUT;
    case absl::StatusCode::kUnavailable:
      return EFAILEDSOCKET;
    case absl::StatusCode::kResourceExhausted:
      return ELIMIT;
    default:
      return EINTERNAL;
  }
}

}  // namespace

int32_t ErrorCodeOf(const absl::Status& status) {
  if (status.ok()) return 0;
  const auto payload = status.GetPayload(kErrorCodePayloadUrl);
  int32_t number = 0;
  if (payload.has_value() && absl::SimpleAtoi(std::string(*payload), &number) && number != 0) {
    return number;
  }
  return ErrorCodeForStatusCode(status.code());
}

std::string BoundedQuote(absl::string_view text, size_t max) {
  if (text.size() <= max) return std::string(text);
  return absl::StrCat(text.substr(0, max), "...(", text.size(), " bytes)");
}

std::string ErrorCodeName(int32_t error_code) {
  switch (error_code) {
    case 0:
      return "OK";
    case ENOSERVICE:
      return "ENOSERVICE";
    case ENOMETHOD:
      return "ENOMETHOD";
    case EREQUEST:
      return "EREQUEST";
    case ERPCAUTH:
      return "ERPCAUTH";
    case ERPCTIMEDOUT:
      return "ERPCTIMEDOUT";
    case EFAILEDSOCKET:
      return "EFAILEDSOCKET";
    case EOVERCROWDED:
      return "EOVERCROWDED";
    case EINTERNAL:
      return "EINTERNAL";
    case ERESPONSE:
      return "ERESPONSE";
    case ELOGOFF:
      return "ELOGOFF";
    case ELIMIT:
      return "ELIMIT";
    default:
      return absl::StrCat("E", error_code);
  }
}

}  // namespace nprpc
