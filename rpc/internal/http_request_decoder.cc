#include "rpc/internal/http_request_decoder.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace nprpc {
namespace {

// Chunk framing allowed beyond max_body_bytes: an eighth of it (a chunk of
// 64 bytes or more needs less) plus this.
constexpr size_t kChunkFramingSlack = 4096;

HttpRequestDecoder* DecoderOf(http_parser* parser) {
  return static_cast<HttpRequestDecoder*>(parser->data);
}

}  // namespace

HttpDecodeResult HttpDecodeResult::Request(HttpRequest request) {
  HttpDecodeResult r;
  r.request_.emplace(std::move(request));
  return r;
}

HttpDecodeResult HttpDecodeResult::Error(int http_status, absl::Status status) {
  HttpDecodeResult r;
  r.http_status_ = http_status;
  r.status_ = std::move(status);
  return r;
}

size_t HttpRequestDecoder::MaxRequestBytes(const HttpRequestDecoderOptions& options) {
  return options.max_header_bytes + options.max_body_bytes + options.max_body_bytes / 8 +
         kChunkFramingSlack;
}

HttpRequestDecoder::HttpRequestDecoder(const HttpRequestDecoderOptions& options)
    : options_(options), max_request_bytes_(MaxRequestBytes(options)) {
  http_parser_settings_init(&settings_);
  settings_.on_url = &OnUrl;
  settings_.on_header_field = &OnHeaderField;
  settings_.on_header_value = &OnHeaderValue;
  settings_.on_headers_complete = &OnHeadersComplete;
  settings_.on_body = &OnBody;
  settings_.on_message_complete = &OnMessageComplete;
  http_parser_init(&parser_, HTTP_REQUEST);
  parser_.data = this;
}

void HttpRequestDecoder::Fail(int http_status, absl::Status status) {
  if (error_status_ != 0) return;
  error_status_ = http_status;
  error_ = std::move(status);
}

void HttpRequestDecoder::ResetRequest() {
  request_ = HttpRequest();
  fed_ = 0;
  held_ = 0;
  headers_done_ = false;
  in_value_ = false;
  complete_ = false;
}

int HttpRequestDecoder::OnUrl(http_parser* parser, const char* at, size_t length) {
  HttpRequestDecoder* self = DecoderOf(parser);
  self->request_.target.append(at, length);
  self->held_ += length;
  return 0;
}

int HttpRequestDecoder::OnHeaderField(http_parser* parser, const char* at, size_t length) {
  HttpRequestDecoder* self = DecoderOf(parser);
  if (self->headers_done_) return 0;  // a trailer: not kept
  auto& fields = self->request_.headers.mutable_fields();
  if (fields.empty() || self->in_value_) {
    self->request_.headers.Add(std::string(at, length), std::string());
    self->in_value_ = false;
  } else {
    fields.back().name.append(at, length);
  }
  self->held_ += length;
  return 0;
}

int HttpRequestDecoder::OnHeaderValue(http_parser* parser, const char* at, size_t length) {
  HttpRequestDecoder* self = DecoderOf(parser);
  if (self->headers_done_) return 0;
  auto& fields = self->request_.headers.mutable_fields();
  if (fields.empty()) return 0;  // the parser never calls a value first
  fields.back().value.append(at, length);
  self->in_value_ = true;
  self->held_ += length;
  return 0;
}

int HttpRequestDecoder::OnHeadersComplete(http_parser* parser) {
  HttpRequestDecoder* self = DecoderOf(parser);
  HttpRequest& request = self->request_;
  self->headers_done_ = true;
  if (parser->http_major != 1) {
    self->Fail(505,
               absl::InvalidArgumentError(absl::StrCat("HTTP/", parser->http_major, ".",
                                                       parser->http_minor, " is not supported")));
    return -1;
  }
  if ((parser->flags & F_CONTENTLENGTH) != 0 &&
      parser->content_length > self->options_.max_body_bytes) {
    self->Fail(413, absl::ResourceExhaustedError(absl::StrCat(
                        "request body of ", parser->content_length, " bytes is over the limit of ",
                        self->options_.max_body_bytes)));
    return -1;
  }
  request.method = http_method_str(static_cast<http_method>(parser->method));
  request.version_major = parser->http_major;
  request.version_minor = parser->http_minor;
  request.keep_alive = http_should_keep_alive(parser) != 0;
  auto& fields = request.headers.mutable_fields();
  for (HttpHeaders::Field& field : fields) {
    // The parser skips the whitespace before a value, not after it.
    absl::StripTrailingAsciiWhitespace(&field.value);
  }
  if (request.target == "*") {
    request.path = request.target;  // "*": OPTIONS * HTTP/1.1
  } else {
    http_parser_url url;
    http_parser_url_init(&url);
    if (http_parser_parse_url(request.target.data(), request.target.size(),
                              parser->method == HTTP_CONNECT, &url) != 0) {
      self->Fail(400, absl::InvalidArgumentError("malformed request target"));
      return -1;
    }
    if ((url.field_set & (1 << UF_PATH)) != 0) {
      request.path =
          request.target.substr(url.field_data[UF_PATH].off, url.field_data[UF_PATH].len);
    }
    if ((url.field_set & (1 << UF_QUERY)) != 0) {
      request.query =
          request.target.substr(url.field_data[UF_QUERY].off, url.field_data[UF_QUERY].len);
    }
  }
  return 0;
}

int HttpRequestDecoder::OnBody(http_parser* parser, const char* at, size_t length) {
  HttpRequestDecoder* self = DecoderOf(parser);
  if (self->request_.body.size() + length > self->options_.max_body_bytes) {
    self->Fail(413,
               absl::ResourceExhaustedError(absl::StrCat("chunked request body over the limit of ",
                                                         self->options_.max_body_bytes, " bytes")));
    return -1;
  }
  if (self->request_.body.empty() && (parser->flags & F_CONTENTLENGTH) != 0) {
    self->request_.body.reserve(parser->content_length);
  }
  self->request_.body.append(at, length);
  self->held_ += length;
  return 0;
}

int HttpRequestDecoder::OnMessageComplete(http_parser* parser) {
  HttpRequestDecoder* self = DecoderOf(parser);
  self->complete_ = true;
  // One request per Decode(): the parser returns right after this message.
  http_parser_pause(parser, 1);
  return 0;
}

size_t HttpRequestDecoder::Feed(const char* data, size_t size) {
  size_t taken = 0;
  while (taken < size && !complete_ && error_status_ == 0) {
    size_t n = size - taken;
    if (!headers_done_) {
      if (fed_ >= options_.max_header_bytes) {
        Fail(431, absl::ResourceExhaustedError(
                      absl::StrCat("request line and header fields over the limit of ",
                                   options_.max_header_bytes, " bytes")));
        break;
      }
      n = std::min(n, options_.max_header_bytes - fed_);
    } else if (fed_ + n > max_request_bytes_) {
      n = max_request_bytes_ - fed_;
      if (n == 0) {
        Fail(413,
             absl::ResourceExhaustedError(absl::StrCat("request of more than ", max_request_bytes_,
                                                       " bytes with its chunk framing")));
        break;
      }
    }
    const size_t parsed = http_parser_execute(&parser_, &settings_, data + taken, n);
    taken += parsed;
    fed_ += parsed;
    const http_errno err = HTTP_PARSER_ERRNO(&parser_);
    if (err == HPE_PAUSED) break;  // complete_
    if (err != HPE_OK) {
      if (err == HPE_HEADER_OVERFLOW) {
        Fail(431, absl::ResourceExhaustedError("header fields too large"));
      } else if (err == HPE_CLOSED_CONNECTION) {
        Fail(400, absl::InvalidArgumentError("data after a request that closes the connection"));
      } else {
        Fail(400, absl::InvalidArgumentError(
                      absl::StrCat("malformed request: ", http_errno_description(err))));
      }
      break;
    }
    if (parsed < n) {
      // The parser stops short only on an error or a pause.
      Fail(400, absl::InvalidArgumentError("malformed request"));
      break;
    }
  }
  return taken;
}

HttpDecodeResult HttpRequestDecoder::Decode(netpoll::LinkBuffer& input) {
  if (closed_ && !input.empty()) {
    Fail(400, absl::InvalidArgumentError("data after a request that closes the connection"));
  }
  if (error_status_ == 0 && !complete_) {
    parser_.data = this;
    http_parser_pause(&parser_, 0);
    size_t skip = fed_;  // fed already: the partial request's bytes
    input.ForEachChunk([&](absl::string_view chunk) {
      if (complete_ || error_status_ != 0) return;
      if (skip >= chunk.size()) {
        skip -= chunk.size();
        return;
      }
      chunk.remove_prefix(skip);
      skip = 0;
      Feed(chunk.data(), chunk.size());
    });
  }
  if (error_status_ != 0) return HttpDecodeResult::Error(error_status_, error_);
  if (!complete_) return HttpDecodeResult::NeedMore();
  (void)input.Skip(fed_);
  HttpRequest request = std::move(request_);
  closed_ = !request.keep_alive;
  ResetRequest();
  return HttpDecodeResult::Request(std::move(request));
}

}  // namespace nprpc
