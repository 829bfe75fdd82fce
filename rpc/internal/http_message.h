// HTTP/1.1 messages of the server's HTTP protocol (rpc/internal/http_protocol.h):
// a decoded request, a response and its serialization, the mapping of a
// call's error to an HTTP status with a JSON body, and HttpPages, the hook
// through which the built-in pages (/health, /metrics, ...) answer.
//
//   HttpResponse response;
//   response.content_type = "text/plain";
//   response.body = "OK\n";
//   SerializeHttpResponse(std::move(response), {.keep_alive = true}, out);
//   // "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n"
//   // "Connection: keep-alive\r\n\r\nOK\n"
//
// An error answer (HttpErrorResponse) carries the HTTP status for the
// error's brpc number or canonical code (HttpStatusForError, table in
// docs/protocol.md) and the JSON body
//   {"code":12,"status":"UNIMPLEMENTED","error_code":1002,"message":"..."}
// with the canonical code, its name, the brpc number (rpc/errors.h) and the text.
//
// Thread safety: plain values and pure functions, safe from any thread.
#ifndef RPC_INTERNAL_HTTP_MESSAGE_H_
#define RPC_INTERNAL_HTTP_MESSAGE_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "netpoll/link_buffer.h"

namespace nprpc {

// Header fields in arrival order; names compare case-insensitively.
class HttpHeaders {
 public:
  struct Field {
    std::string name;
    std::string value;
  };

  void Add(std::string name, std::string value) {
    fields_.push_back({std::move(name), std::move(value)});
  }
  // The value of the first field named `name` (any case); null when absent.
  const std::string* Find(absl::string_view name) const;
  const std::vector<Field>& fields() const { return fields_; }
  std::vector<Field>& mutable_fields() { return fields_; }
  bool empty() const { return fields_.empty(); }

 private:
  std::vector<Field> fields_;
};

// One request as HttpRequestDecoder cut it from a connection.
struct HttpRequest {
  std::string method;  // "GET", "POST", ... (http_parser's names)
  std::string target;  // the request-target as sent: "/a/b?x=1"
  std::string path;    // "/a/b" (not percent-decoded)
  std::string query;   // "x=1" (without '?'; empty when absent)
  int version_major = 1;
  int version_minor = 1;
  HttpHeaders headers;  // trailers of a chunked body are not kept
  std::string body;     // chunked bodies already joined
  // The connection stays open after this request's answer (HTTP/1.1 without
  // "Connection: close", or HTTP/1.0 with "Connection: keep-alive").
  bool keep_alive = true;
};

struct HttpResponse {
  int status = 200;
  std::string content_type;  // no Content-Type header when empty
  // Further header fields. Content-Length and Connection are written by
  // SerializeHttpResponse() and must not be set here.
  HttpHeaders headers;
  std::string body;
};

struct HttpResponseFraming {
  bool keep_alive = true;     // "Connection: keep-alive", else "close"
  bool head_request = false;  // HEAD: Content-Length of the body, no body
};

// Appends the response to `out`: status line (always HTTP/1.1), headers,
// Content-Length, Connection, then the body (moved into `out` without copy
// when large).
void SerializeHttpResponse(HttpResponse response, const HttpResponseFraming& framing,
                           netpoll::LinkBuffer& out);

// "OK", "Not Found", ...; "Unknown" for a status without a phrase here.
absl::string_view HttpReasonPhrase(int status);

// True when `name` is an HTTP token (RFC 9110: visible ASCII but separators).
bool IsHttpToken(absl::string_view name);
// True when `value` may be sent as a header field value (no CR, LF, NUL or
// other control characters but HTAB).
bool IsHttpFieldValue(absl::string_view value);

// The HTTP status of a failed call. The brpc number decides when the error
// carries one (MakeRpcError): ENOSERVICE/ENOMETHOD 404, EREQUEST 400,
// ERPCAUTH 401, ERPCTIMEDOUT 504, ELIMIT/ELOGOFF/EOVERCROWDED/EFAILEDSOCKET
// 503, EINTERNAL/ERESPONSE 500; otherwise the canonical code as gRPC's
// HTTP mapping has it (INVALID_ARGUMENT, FAILED_PRECONDITION, OUT_OF_RANGE
// 400, UNAUTHENTICATED 401, PERMISSION_DENIED 403, NOT_FOUND 404,
// ALREADY_EXISTS and ABORTED 409, RESOURCE_EXHAUSTED 429, CANCELLED 499,
// UNIMPLEMENTED 501, UNAVAILABLE 503, DEADLINE_EXCEEDED 504, else 500).
int HttpStatusForError(const absl::Status& error);

// {"code":<canonical code>,"status":"<its name>","error_code":<brpc number>,
//  "message":"<text>"} for a failed status (the number is
// HandlerErrorCode() of it); text that is not UTF-8 is replaced.
std::string HttpErrorJson(const absl::Status& error);

// An answer with status `http_status`, Content-Type application/json and
// HttpErrorJson(error) as its body.
HttpResponse HttpErrorResponse(int http_status, const absl::Status& error);
// The same with HttpStatusForError(error).
inline HttpResponse HttpErrorResponse(const absl::Status& error) {
  return HttpErrorResponse(HttpStatusForError(error), error);
}

// The built-in pages, as the server renders them (the lead's
// implementation; ServerCore::set_http_pages). Called on the loop thread of
// the request's connection, from every loop at once: must be thread-safe
// and must not block.
class HttpPages {
 public:
  virtual ~HttpPages() = default;
  // True when `request` (a GET or HEAD) names a page; then `response` is
  // filled. False: the server answers 404.
  virtual bool Serve(const HttpRequest& request, HttpResponse& response) const = 0;
};

}  // namespace nprpc

#endif  // RPC_INTERNAL_HTTP_MESSAGE_H_
