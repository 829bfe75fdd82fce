// Fuzz target: the transport's TLS sniffing and record path, through a real
// netpoll::Server with a TLS context (plaintext allowed beside it) on a Unix
// socket, as tests/fuzz/server_dispatch_fuzz.cc does for the rpc layer.
//
// Per input: connect; when the first byte is 0xFF, finish a real TLS 1.3
// handshake first (an in-process client TlsSession) and send the rest of the
// input raw after it (garbage records on an established session); else send
// the input as it is (sniffing, ClientHello parsing, partial or bad records,
// plaintext). Then shut down the write side and read until the server
// closes. Invariants:
//   - the server closes the connection within 10 seconds (no hang);
//   - an input not starting with 0x16 (nor 0xFF) is plaintext: the echo
//     server sends it back byte for byte;
//   - otherwise everything the server sends is well-formed TLS records
//     (content type 20..23, version 3.x, length at most 2^14 + 2048, the
//     last one complete);
//   - the server keeps serving: the next input connects again.
//
// One process-wide server (made on the first input, never destroyed) with
// a certificate made at startup (netpoll/testing/test_certs.h).
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "netpoll/link_buffer.h"
#include "netpoll/logging.h"
#include "netpoll/server.h"
#include "netpoll/socket_address.h"
#include "netpoll/testing/test_certs.h"
#include "netpoll/tls_context.h"
#include "netpoll/tls_session.h"
#include "tests/fuzz/fuzz_check.h"

namespace nprpc::fuzz {
namespace {

constexpr char kHandshakeFirst = static_cast<char>(0xFF);
constexpr char kTlsHandshakeRecord = 0x16;
constexpr absl::Duration kDeadline = absl::Seconds(10);

struct FuzzServer {
  std::string path;
  std::shared_ptr<netpoll::TlsContext> client_tls;
  std::unique_ptr<netpoll::Server> server;
};

FuzzServer& GetServer() {
  static FuzzServer* const fuzz_server = [] {
    // Bad peers are what this target sends: their close reasons are noise.
    netpoll::SetMinLogSeverity(netpoll::LogSeverity::kError);
    auto* fs = new FuzzServer;
    auto ca = netpoll::testing::TestCa::Create("fuzz CA");
    FUZZ_CHECK(ca.ok());
    netpoll::testing::TestCert cert =
        (*ca)->Issue({.common_name = "fuzz", .dns_names = {"localhost"}, .ip_addresses = {}});
    netpoll::TlsServerOptions server_tls;
    server_tls.key_pair = cert.key_pair();
    netpoll::TlsClientOptions client_tls;
    client_tls.verify_server = false;
    client_tls.max_version = netpoll::TlsVersion::kTls13;
    client_tls.session_resumption = false;
    fs->client_tls = *netpoll::TlsContext::NewClient(client_tls);
    netpoll::ServerOptions options;
    options.num_loops = 1;
    options.connection.tls = *netpoll::TlsContext::NewServer(server_tls);
    options.callbacks->on_request = [](const netpoll::ConnectionPtr& conn,
                                       netpoll::LinkBuffer& in) {
      (void)conn->Write(std::move(*in.Slice(in.Len())));
    };
    fs->server = std::move(*netpoll::Server::Create(options));
    char dir[] = "/tmp/tls_fuzz_XXXXXX";
    FUZZ_CHECK(mkdtemp(dir) != nullptr);
    fs->path = absl::StrCat(dir, "/s");
    absl::StatusOr<netpoll::SocketAddress> address =
        netpoll::SocketAddress::Parse(absl::StrCat("unix:", fs->path));
    FUZZ_CHECK(address.ok());
    FUZZ_CHECK(fs->server->Start(*address).ok());
    return fs;
  }();
  return *fuzz_server;
}

int ConnectUnix(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  FUZZ_CHECK(fd >= 0) << strerror(errno);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  FUZZ_CHECK(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0)
      << "the server stopped accepting: " << strerror(errno);
  return fd;
}

// Sends `data` while reading what comes back into `received` (the echo may
// fill the socket buffers). Returns false when the server closed first.
bool SendAll(int fd, const std::string& data, std::string& received, absl::Time deadline) {
  size_t sent = 0;
  while (sent < data.size()) {
    pollfd p{fd, POLLIN | POLLOUT, 0};
    FUZZ_CHECK(absl::Now() < deadline) << "server stopped reading";
    if (::poll(&p, 1, 100) <= 0) continue;
    if (p.revents & POLLIN) {
      char buf[65536];
      ssize_t n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
      if (n == 0) return false;
      if (n > 0) received.append(buf, static_cast<size_t>(n));
      if (n < 0 && errno != EAGAIN) return false;
    }
    if (p.revents & POLLOUT) {
      ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0 && errno != EAGAIN) return false;
      if (n > 0) sent += static_cast<size_t>(n);
    }
    if (p.revents & (POLLERR | POLLHUP)) return false;
  }
  return true;
}

// Reads until EOF (or a reset), within the deadline.
void ReadToEnd(int fd, std::string& received, absl::Time deadline) {
  while (true) {
    FUZZ_CHECK(absl::Now() < deadline) << "server did not close the connection";
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    char buf[65536];
    ssize_t n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n > 0) {
      received.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n == 0 || errno != EAGAIN) return;
  }
}

// Every byte of `wire` belongs to a well-formed TLS record.
void CheckRecords(const std::string& wire) {
  size_t at = 0;
  while (at < wire.size()) {
    FUZZ_CHECK(wire.size() - at >= 5) << "partial record header at " << at;
    const auto type = static_cast<unsigned char>(wire[at]);
    const auto major = static_cast<unsigned char>(wire[at + 1]);
    const size_t length =
        (static_cast<unsigned char>(wire[at + 3]) << 8) | static_cast<unsigned char>(wire[at + 4]);
    FUZZ_CHECK(type >= 20 && type <= 23) << "record type " << int{type};
    FUZZ_CHECK(major == 3) << "record version " << int{major};
    FUZZ_CHECK(length <= 16384 + 2048) << "record length " << length;
    FUZZ_CHECK(wire.size() - at - 5 >= length) << "partial record at " << at;
    at += 5 + length;
  }
}

// A real handshake over `fd` with the client session; what the server sent
// beyond it goes to `received`. False when the server closed first.
bool Handshake(int fd, netpoll::TlsSession& client, absl::Time deadline) {
  netpoll::LinkBuffer wire;
  FUZZ_CHECK(client.Start(wire).ok());
  std::string ignored;
  if (!SendAll(fd, wire.ToString(), ignored, deadline)) return false;
  while (!client.handshake_done()) {
    FUZZ_CHECK(absl::Now() < deadline) << "handshake did not finish";
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    char buf[65536];
    ssize_t n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n <= 0) return false;
    netpoll::LinkBuffer in;
    in.WriteBinary(absl::string_view(buf, static_cast<size_t>(n)));
    netpoll::LinkBuffer plain;
    netpoll::LinkBuffer out;
    FUZZ_CHECK(client.Receive(in, plain, out).ok());
    if (!out.empty() && !SendAll(fd, out.ToString(), ignored, deadline)) return false;
  }
  return true;
}

}  // namespace
}  // namespace nprpc::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace nprpc::fuzz;  // NOLINT(google-build-using-namespace): the entry point
  FuzzServer& fs = GetServer();
  std::string input(reinterpret_cast<const char*>(data), size);
  const absl::Time deadline = absl::Now() + kDeadline;
  const int fd = ConnectUnix(fs.path);
  std::string received;
  bool open = true;
  const bool after_handshake = !input.empty() && input[0] == kHandshakeFirst;
  if (after_handshake) {
    auto client = netpoll::TlsSession::Create(fs.client_tls);
    FUZZ_CHECK(client.ok());
    open = Handshake(fd, **client, deadline);
    FUZZ_CHECK(open) << "the server closed during a valid handshake";
    input.erase(0, 1);
  }
  if (open) open = SendAll(fd, input, received, deadline);
  ::shutdown(fd, SHUT_WR);
  ReadToEnd(fd, received, deadline);
  ::close(fd);
  if (!after_handshake && (input.empty() || input[0] != kTlsHandshakeRecord)) {
    FUZZ_CHECK(received == input) << "plaintext echo differs: " << received.size() << " of "
                                  << input.size() << " bytes";
  } else {
    CheckRecords(received);
  }
  return 0;
}
