#include "rpc/internal/http_message.h"

#include <algorithm>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "rpc/errors.h"

namespace nprpc {
namespace {

// Length of the well-formed UTF-8 sequence at the start of `s` (1 to 4), or
// 0 when it is not one (overlong forms, surrogates and values beyond
// U+10FFFF included).
size_t Utf8SequenceLength(absl::string_view s) {
  const auto b0 = static_cast<unsigned char>(s[0]);
  if (b0 < 0x80) return 1;
  size_t n;
  unsigned char lo = 0x80;
  unsigned char hi = 0xbf;  // the allowed range of the second byte
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    n = 2;
  } else if (b0 >= 0xe0 && b0 <= 0xef) {
    n = 3;
    if (b0 == 0xe0) lo = 0xa0;
    if (b0 == 0xed) hi = 0x9f;
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    n = 4;
    if (b0 == 0xf0) lo = 0x90;
    if (b0 == 0xf4) hi = 0x8f;
  } else {
    return 0;
  }
  if (s.size() < n) return 0;
  const auto b1 = static_cast<unsigned char>(s[1]);
  if (b1 < lo || b1 > hi) return 0;
  for (size_t i = 2; i < n; ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xc0) != 0x80) return 0;
  }
  return n;
}

}  // namespace

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

std::string JsonQuote(absl::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  out += '"';
  while (!text.empty()) {
    const auto c = static_cast<unsigned char>(text[0]);
    if (c >= 0x80) {
      const size_t n = Utf8SequenceLength(text);
      if (n == 0) {
        out += "\\ufffd";  // not UTF-8: JSON text must be
        text.remove_prefix(1);
      } else {
        out.append(text.data(), n);
        text.remove_prefix(n);
      }
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          absl::StrAppendFormat(&out, "\\u%04x", c);
        } else {
          out += static_cast<char>(c);
        }
    }
    text.remove_prefix(1);
  }
  out += '"';
  return out;
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
