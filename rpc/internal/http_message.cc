#include "rpc/internal/http_message.h"

#include <algorithm>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "rpc/errors.h"
#include "rpc/internal/json_quote.h"

namespace nprpc {

const std::string* HttpHeaders::Find(absl::string_view name) const {
  for (const Field& field : fields_) {
    if (absl::EqualsIgnoreCase(field.name, name)) return &field.value;
  }
  return nullptr;
}

absl::string_view HttpReasonPhrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 204:
      return "No Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 499:
      return "Client Closed Request";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

bool IsHttpToken(absl::string_view name) {
  return !name.empty() && std::ranges::all_of(name, [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
           absl::string_view("!#$%&'*+-.^_`|~").find(c) != absl::string_view::npos;
  });
}

bool IsHttpFieldValue(absl::string_view value) {
  return std::ranges::all_of(value, [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return (u >= 0x20 || u == '\t') && u != 0x7f;
  });
}

void SerializeHttpResponse(HttpResponse response, const HttpResponseFraming& framing,
                           netpoll::LinkBuffer& out) {
  std::string head =
      absl::StrCat("HTTP/1.1 ", response.status, " ", HttpReasonPhrase(response.status), "\r\n");
  if (!response.content_type.empty()) {
    absl::StrAppend(&head, "Content-Type: ", response.content_type, "\r\n");
  }
  for (const HttpHeaders::Field& field : response.headers.fields()) {
    absl::StrAppend(&head, field.name, ": ", field.value, "\r\n");
  }
  absl::StrAppend(&head, "Content-Length: ", response.body.size(),
                  "\r\nConnection: ", framing.keep_alive ? "keep-alive" : "close", "\r\n\r\n");
  if (framing.head_request || response.body.empty()) {
    out.WriteBinary(head);
    return;
  }
  if (response.body.size() < netpoll::LinkBuffer::kCopyThreshold) {
    head += response.body;
    out.WriteBinary(head);
    return;
  }
  out.WriteBinary(head);
  // A large body is referenced, not copied: the buffer owns it until sent.
  auto body = std::make_unique<std::string>(std::move(response.body));
  const absl::string_view view(*body);
  out.WriteBinary(view, [owned = std::move(body)] {});
}

int HttpStatusForError(const absl::Status& error) {
  if (error.GetPayload(kErrorCodePayloadUrl).has_value()) {
    switch (ErrorCodeOf(error)) {
      case ENOSERVICE:
      case ENOMETHOD:
        return 404;
      case EREQUEST:
        return 400;
      case ERPCAUTH:
        return 401;
      case ERPCTIMEDOUT:
        return 504;
      case ELIMIT:
      case ELOGOFF:
      case EOVERCROWDED:
      case EFAILEDSOCKET:
        return 503;
      case EINTERNAL:
      case ERESPONSE:
        return 500;
      default:
        break;  // a number of the application's: its canonical code decides
    }
  }
  switch (error.code()) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kAborted:
      return 409;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kCancelled:
      return 499;
    case absl::StatusCode::kUnimplemented:
      return 501;
    case absl::StatusCode::kUnavailable:
      return 503;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

std::string HttpErrorJson(const absl::Status& error) {
  int32_t number = ErrorCodeOf(error);
  if (number == 0 && !error.ok()) number = EINTERNAL;  // as HandlerErrorCode()
  return absl::StrCat("{\"code\":", static_cast<int>(error.code()),
                      ",\"status\":", JsonQuote(absl::StatusCodeToString(error.code())),
                      ",\"error_code\":", number, ",\"message\":", JsonQuote(error.message()), "}");
}

HttpResponse HttpErrorResponse(int http_status, const absl::Status& error) {
  HttpResponse response;
  response.status = http_status;
  response.content_type = "application/json";
  response.body = HttpErrorJson(error);
  response.body += '\n';
  return response;
}

}  // namespace nprpc
