#include "tests/harness/transport_security.h"

#include <cstdlib>
#include <iostream>
#include <utility>

#include "netpoll/testing/test_certs.h"

namespace nprpc::testing {
namespace {

using netpoll::testing::TestCa;
using netpoll::testing::TestCert;

struct Pki {
  std::unique_ptr<TestCa> ca;
  TestCert server;
  TestCert client;
};

const Pki& GetPki() {
  static const Pki* const pki = [] {
    auto* made = new Pki;
    made->ca = std::move(*TestCa::Create("transport security test CA"));
    made->server = made->ca->Issue(
        {.common_name = "server", .dns_names = {"localhost"}, .ip_addresses = {"127.0.0.1"}});
    made->client = made->ca->Issue(
        {.common_name = "client", .dns_names = {"client.example"}, .ip_addresses = {}});
    return made;
  }();
  return *pki;
}

template <typename T>
std::shared_ptr<const netpoll::TlsContext> OrDie(absl::StatusOr<T> context) {
  if (!context.ok()) {
    std::cerr << "test TLS context: " << context.status() << "\n";
    std::abort();
  }
  return *std::move(context);
}

}  // namespace

std::string TransportName(Transport transport) {
  switch (transport) {
    case Transport::kPlaintext:
      return "plain";
    case Transport::kTls:
      return "tls";
    case Transport::kMutualTls:
      return "mtls";
  }
  return "unknown";
}

std::string TransportParamName(const ::testing::TestParamInfo<Transport>& info) {
  return TransportName(info.param);
}

void PrintTo(Transport transport, std::ostream* os) { *os << TransportName(transport); }

std::shared_ptr<const netpoll::TlsContext> ServerTls(Transport transport) {
  if (transport == Transport::kPlaintext) return nullptr;
  const Pki& pki = GetPki();
  netpoll::TlsServerOptions options;
  options.key_pair = pki.server.key_pair();
  if (transport == Transport::kMutualTls) {
    options.ca_pem = pki.ca->cert_pem();
    options.client_cert = netpoll::TlsServerOptions::ClientCert::kRequire;
  }
  return OrDie(netpoll::TlsContext::NewServer(options));
}

std::shared_ptr<const netpoll::TlsContext> ClientTls(Transport transport) {
  if (transport == Transport::kPlaintext) return nullptr;
  const Pki& pki = GetPki();
  netpoll::TlsClientOptions options;
  options.ca_pem = pki.ca->cert_pem();
  if (transport == Transport::kMutualTls) options.key_pair = pki.client.key_pair();
  return OrDie(netpoll::TlsContext::NewClient(options));
}

netpoll::testing::BlockingTlsOptions PeerTls(Transport transport) {
  const Pki& pki = GetPki();
  netpoll::testing::BlockingTlsOptions options;
  options.ca_pem = pki.ca->cert_pem();
  if (transport == Transport::kMutualTls) {
    options.cert_pem = pki.client.cert_pem;
    options.key_pem = pki.client.key_pem;
  }
  return options;
}

absl::StatusOr<netpoll::testing::BlockingClient> ConnectPeer(const netpoll::SocketAddress& address,
                                                             Transport transport,
                                                             absl::Duration timeout) {
  if (transport == Transport::kPlaintext) {
    return netpoll::testing::BlockingClient::Connect(address, timeout);
  }
  return netpoll::testing::BlockingClient::ConnectTls(address, PeerTls(transport), timeout);
}

}  // namespace nprpc::testing
