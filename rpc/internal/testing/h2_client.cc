#include "rpc/internal/testing/h2_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace nprpc::testing {
namespace {

nghttp2_nv Nv(const std::string& name, const std::string& value) {
  return {reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
          reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(), value.size(),
          NGHTTP2_NV_FLAG_NONE};
}

bool WriteAll(int fd, absl::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        pollfd p = {fd, POLLOUT, 0};
        ::poll(&p, 1, 1000);
        continue;
      }
      return false;
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

}  // namespace

std::optional<std::string> H2Client::Stream::Find(absl::string_view name) const {
  for (const Metadata* md : {&trailers, &headers}) {
    for (const auto& [key, value] : *md) {
      if (key == name) return value;
    }
  }
  return std::nullopt;
}

std::string H2Client::Stream::Status() const { return Find("grpc-status").value_or(""); }

std::vector<std::string> H2Client::Stream::Messages() const {
  std::vector<std::string> out;
  size_t at = 0;
  while (data.size() - at >= 5) {
    const auto* p = reinterpret_cast<const uint8_t*>(data.data() + at);
    const size_t size = (size_t{p[1]} << 24) | (size_t{p[2]} << 16) | (size_t{p[3]} << 8) | p[4];
    if (data.size() - at - 5 < size) break;
    out.push_back(data.substr(at + 5, size));
    at += 5 + size;
  }
  return out;
}

absl::StatusOr<std::unique_ptr<H2Client>> H2Client::Connect(const netpoll::SocketAddress& address,
                                                            Options options) {
  const int fd = ::socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  if (::connect(fd, address.sockaddr(), address.length()) != 0) {
    const int err = errno;
    ::close(fd);
    return absl::UnavailableError(absl::StrCat("connect: ", std::strerror(err)));
  }
  std::unique_ptr<H2Client> client(new H2Client(fd, options));
  if (!client->Init()) return absl::InternalError("nghttp2 client session");
  return client;
}

H2Client::H2Client(int fd, Options options) : fd_(fd), options_(options) {}

H2Client::~H2Client() {
  if (h2_ != nullptr) nghttp2_session_del(h2_);
  ::close(fd_);
}

bool H2Client::Init() {
  nghttp2_session_callbacks* callbacks = nullptr;
  nghttp2_session_callbacks_new(&callbacks);
  nghttp2_session_callbacks_set_on_header_callback(callbacks, &OnHeader);
  nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, &OnFrameRecv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, &OnDataChunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, &OnStreamClose);
  nghttp2_option* option = nullptr;
  nghttp2_option_new(&option);
  nghttp2_option_set_no_auto_window_update(option, 1);
  const int rv = nghttp2_session_client_new2(&h2_, callbacks, this, option);
  nghttp2_option_del(option);
  nghttp2_session_callbacks_del(callbacks);
  if (rv != 0) return false;
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, options_.initial_window},
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
  };
  nghttp2_submit_settings(h2_, NGHTTP2_FLAG_NONE, settings, 2);
  FlushOut();
  return true;
}

int32_t H2Client::Submit(std::vector<nghttp2_nv> nva, bool end_stream) {
  auto out = std::make_unique<Outgoing>();
  out->end = end_stream;
  nghttp2_data_provider provider;
  provider.source.ptr = out.get();
  provider.read_callback = &ReadData;
  const int32_t id = nghttp2_submit_request(h2_, nullptr, nva.data(), nva.size(),
                                            end_stream ? nullptr : &provider, nullptr);
  if (id > 0) {
    streams_[id];
    if (!end_stream) outgoing_[id] = std::move(out);
  }
  FlushOut();
  return id;
}

int32_t H2Client::StartCall(absl::string_view path, const Metadata& metadata,
                            absl::string_view content_type) {
  Metadata headers = {{":method", "POST"},
                      {":scheme", "http"},
                      {":authority", "localhost"},
                      {":path", std::string(path)},
                      {"content-type", std::string(content_type)},
                      {"te", "trailers"}};
  for (const auto& field : metadata) headers.push_back(field);
  return StartRaw(headers);
}

int32_t H2Client::StartRaw(const Metadata& headers, bool end_stream) {
  std::vector<nghttp2_nv> nva;
  for (const auto& [name, value] : headers) nva.push_back(Nv(name, value));
  return Submit(std::move(nva), end_stream);
}

void H2Client::SendData(int32_t id, absl::string_view bytes, bool end_stream) {
  auto it = outgoing_.find(id);
  if (it == outgoing_.end()) return;
  it->second->bytes.append(bytes.data(), bytes.size());
  it->second->end = it->second->end || end_stream;
  if (it->second->deferred) {
    it->second->deferred = false;
    nghttp2_session_resume_data(h2_, id);
  }
  FlushOut();
}

void H2Client::SendMessage(int32_t id, absl::string_view message, bool end_stream,
                           bool compressed) {
  const size_t n = message.size();
  const char prefix[5] = {static_cast<char>(compressed ? 1 : 0), static_cast<char>(n >> 24),
                          static_cast<char>(n >> 16), static_cast<char>(n >> 8),
                          static_cast<char>(n)};
  SendData(id, absl::StrCat(absl::string_view(prefix, 5), message), end_stream);
}

void H2Client::Reset(int32_t id, uint32_t error_code) {
  nghttp2_submit_rst_stream(h2_, NGHTTP2_FLAG_NONE, id, error_code);
  FlushOut();
}

void H2Client::Ping() {
  nghttp2_submit_ping(h2_, NGHTTP2_FLAG_NONE, nullptr);
  FlushOut();
}

void H2Client::SendRaw(absl::string_view bytes) {
  FlushOut();
  if (!WriteAll(fd_, bytes)) disconnected_ = true;
}

void H2Client::Acknowledge(int32_t id, size_t bytes) {
  nghttp2_session_consume(h2_, id, bytes);
  unacked_[id] -= std::min(unacked_[id], bytes);
  FlushOut();
}

void H2Client::FlushOut() {
  while (!disconnected_) {
    const uint8_t* data = nullptr;
    const ssize_t n = nghttp2_session_mem_send(h2_, &data);
    if (n <= 0) break;
    if (!WriteAll(fd_,
                  absl::string_view(reinterpret_cast<const char*>(data), static_cast<size_t>(n)))) {
      disconnected_ = true;
    }
  }
}

bool H2Client::Pump(const std::function<bool()>& done, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  char buf[16384];
  while (!done()) {
    FlushOut();
    if (disconnected_) return done();
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return false;
    pollfd p = {fd_, POLLIN, 0};
    const int ready =
        ::poll(&p, 1, static_cast<int>(std::max<int64_t>(1, absl::ToInt64Milliseconds(left))));
    if (ready <= 0) continue;
    const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      disconnected_ = true;
      for (auto& [id, stream] : streams_) stream.closed = true;
      return done();
    }
    if (nghttp2_session_mem_recv(h2_, reinterpret_cast<const uint8_t*>(buf),
                                 static_cast<size_t>(n)) < 0) {
      disconnected_ = true;
      return done();
    }
  }
  FlushOut();
  return true;
}

int H2Client::OnHeader(nghttp2_session* /*h2*/, const nghttp2_frame* frame, const uint8_t* name,
                       size_t namelen, const uint8_t* value, size_t valuelen, uint8_t /*flags*/,
                       void* user) {
  auto* self = static_cast<H2Client*>(user);
  Stream& stream = self->streams_[frame->hd.stream_id];
  Metadata& md = frame->headers.cat == NGHTTP2_HCAT_HEADERS ? stream.trailers : stream.headers;
  md.emplace_back(std::string(reinterpret_cast<const char*>(name), namelen),
                  std::string(reinterpret_cast<const char*>(value), valuelen));
  return 0;
}

int H2Client::OnFrameRecv(nghttp2_session* /*h2*/, const nghttp2_frame* frame, void* user) {
  auto* self = static_cast<H2Client*>(user);
  if (frame->hd.type == NGHTTP2_GOAWAY) {
    ++self->goaway_count_;
    self->goaway_error_ = frame->goaway.error_code;
    self->goaway_last_stream_ = frame->goaway.last_stream_id;
  } else if (frame->hd.type == NGHTTP2_RST_STREAM) {
    self->streams_[frame->hd.stream_id].reset_by_server = true;
  } else if (frame->hd.type == NGHTTP2_SETTINGS && (frame->hd.flags & NGHTTP2_FLAG_ACK) == 0) {
    for (size_t i = 0; i < frame->settings.niv; ++i) {
      self->server_settings_[frame->settings.iv[i].settings_id] = frame->settings.iv[i].value;
    }
  }
  return 0;
}

int H2Client::OnDataChunk(nghttp2_session* h2, uint8_t /*flags*/, int32_t stream_id,
                          const uint8_t* data, size_t len, void* user) {
  auto* self = static_cast<H2Client*>(user);
  self->streams_[stream_id].data.append(reinterpret_cast<const char*>(data), len);
  if (self->options_.acknowledge_data) {
    nghttp2_session_consume(h2, stream_id, len);
  } else {
    self->unacked_[stream_id] += len;
  }
  return 0;
}

int H2Client::OnStreamClose(nghttp2_session* /*h2*/, int32_t stream_id, uint32_t error_code,
                            void* user) {
  auto* self = static_cast<H2Client*>(user);
  Stream& stream = self->streams_[stream_id];
  stream.closed = true;
  stream.close_error = error_code;
  self->outgoing_.erase(stream_id);
  return 0;
}

ssize_t H2Client::ReadData(nghttp2_session* /*h2*/, int32_t /*stream_id*/, uint8_t* buf,
                           size_t length, uint32_t* data_flags, nghttp2_data_source* source,
                           void* /*user*/) {
  auto* out = static_cast<Outgoing*>(source->ptr);
  const size_t n = std::min(length, out->bytes.size());
  std::copy_n(out->bytes.data(), n, reinterpret_cast<char*>(buf));
  out->bytes.erase(0, n);
  if (out->bytes.empty()) {
    if (out->end) {
      *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    } else if (n == 0) {
      out->deferred = true;
      return NGHTTP2_ERR_DEFERRED;
    }
  }
  return static_cast<ssize_t>(n);
}

}  // namespace nprpc::testing
