// HttpRequestDecoder: HTTP/1.1 requests cut one by one from a connection's
// input, parsed by Node.js's http_parser (Debian's libhttp-parser-dev).
//
// The decoder feeds the parser the input's bytes it has not fed yet, chunk
// by chunk as they lie in the LinkBuffer (no copy of the buffer), and keeps
// the parser's state between calls. The bytes of a partial request stay in
// the input until the request is whole, so the connection's read timeout
// sees a peer that stalls mid-request (slowloris) and the memory budget
// counts them; a whole request's bytes are consumed. The parser pauses at
// the end of each message, so pipelined requests come out one per Decode().
//
//   HttpRequestDecoder decoder({.max_header_bytes = 64 << 10, .max_body_bytes = 1 << 20});
//   for (;;) {
//     HttpDecodeResult r = decoder.Decode(input);
//     if (r.need_more()) break;                // wait for more input
//     if (r.is_error()) { answer r.http_status(), close; break; }
//     Handle(r.TakeRequest());
//   }
//
// Limits: the request line and headers together at most max_header_bytes
// (431); a body at most max_body_bytes (413), checked from Content-Length
// before the body arrives and while a chunked body grows; a request's raw
// bytes (with chunk framing) at most max_request_bytes() (413). Malformed
// requests are 400, HTTP versions other than 1.x 505. An error is final.
//
// Thread safety: one thread at a time (a connection's loop thread).
#ifndef RPC_INTERNAL_HTTP_REQUEST_DECODER_H_
#define RPC_INTERNAL_HTTP_REQUEST_DECODER_H_

#include <http_parser.h>

#include <cstddef>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "netpoll/link_buffer.h"
#include "rpc/internal/http_message.h"

namespace nprpc {

struct HttpRequestDecoderOptions {
  // The request line and header fields, from the first byte to the empty
  // line.
  size_t max_header_bytes = size_t{64} << 10;
  size_t max_body_bytes = size_t{64} << 20;
};

// What one Decode() found: need more input, a request, or an error.
class HttpDecodeResult {
 public:
  static HttpDecodeResult NeedMore() { return HttpDecodeResult(); }
  static HttpDecodeResult Request(HttpRequest request);
  static HttpDecodeResult Error(int http_status, absl::Status status);

  bool need_more() const { return !request_.has_value() && status_.ok(); }
  bool has_request() const { return request_.has_value(); }
  bool is_error() const { return !status_.ok(); }
  // An error's HTTP status (400, 413, 431, 505) and its text.
  int http_status() const { return http_status_; }
  const absl::Status& status() const { return status_; }
  HttpRequest TakeRequest() { return std::move(*request_); }

 private:
  HttpDecodeResult() = default;

  std::optional<HttpRequest> request_;
  int http_status_ = 0;
  absl::Status status_;
};

class HttpRequestDecoder {
 public:
  explicit HttpRequestDecoder(const HttpRequestDecoderOptions& options);
  HttpRequestDecoder(const HttpRequestDecoder&) = delete;
  HttpRequestDecoder& operator=(const HttpRequestDecoder&) = delete;

  // The next request of `input`. Between calls `input` may only grow at its
  // tail, and only Decode() consumes from its head: it consumes the bytes of
  // each whole request it returns and nothing else (the bytes of a partial
  // request stay). After an error every call returns the same error and
  // consumes nothing. Bytes after a request that does not keep the connection
  // alive are an error (400).
  HttpDecodeResult Decode(netpoll::LinkBuffer& input);

  // Bytes at the head of the input that belong to the partial request
  // (already fed to the parser).
  size_t pending_bytes() const { return fed_; }
  // Memory the partial request holds besides its input bytes: the copies of
  // its target, header fields and body so far.
  size_t held_bytes() const { return held_; }
  // A request's raw bytes (line, headers, body with its chunk framing) at
  // most: max_header_bytes + max_body_bytes + an eighth of max_body_bytes +
  // 4 KiB for chunk framing. The connection's input must be able to hold
  // this much.
  size_t max_request_bytes() const { return max_request_bytes_; }
  static size_t MaxRequestBytes(const HttpRequestDecoderOptions& options);

 private:
  static int OnUrl(http_parser* parser, const char* at, size_t length);
  static int OnHeaderField(http_parser* parser, const char* at, size_t length);
  static int OnHeaderValue(http_parser* parser, const char* at, size_t length);
  static int OnHeadersComplete(http_parser* parser);
  static int OnBody(http_parser* parser, const char* at, size_t length);
  static int OnMessageComplete(http_parser* parser);

  // Feeds `data` (not yet fed) to the parser; returns the bytes it took.
  size_t Feed(const char* data, size_t size);
  void Fail(int http_status, absl::Status status);
  void ResetRequest();

  const HttpRequestDecoderOptions options_;
  const size_t max_request_bytes_;
  http_parser_settings settings_;
  http_parser parser_;

  HttpRequest request_;        // the partial request
  size_t fed_ = 0;             // its bytes fed to the parser (at the input's head)
  size_t held_ = 0;            // see held_bytes()
  bool headers_done_ = false;  // its header section ended
  bool in_value_ = false;      // the last header callback was a value
  bool complete_ = false;      // the parser reached its end
  bool closed_ = false;        // a request that closes the connection was returned
  int error_status_ = 0;       // Fail(): final
  absl::Status error_;
};

}  // namespace nprpc

#endif  // RPC_INTERNAL_HTTP_REQUEST_DECODER_H_
