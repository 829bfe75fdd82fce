// Transport security for end-to-end suites that run over plaintext, TLS and
// mutual TLS alike: the TLS contexts of servers, channels and raw test peers
// for each, from one test PKI made at run time (netpoll/testing/test_certs.h,
// no key is checked in): a CA, a server certificate for 127.0.0.1 and
// localhost, and a client certificate "CN=client".
//
//   class MyTest : public ::testing::TestWithParam<testing::Transport> {};
//   INSTANTIATE_TEST_SUITE_P(Transports, MyTest, ::testing::ValuesIn(testing::kEveryTransport),
//                            testing::TransportParamName);
//   server_options.tls = testing::ServerTls(GetParam());       // nprpc::ServerOptions
//   server_options.tls_required = GetParam() != testing::Transport::kPlaintext;
//   channel_options.tls = testing::ClientTls(GetParam());      // nprpc::ChannelOptions
//   auto peer = testing::ConnectPeer(server->listen_address(), GetParam());
//
// Servers of kTls and kMutualTls should require TLS, so that nothing passes
// in plaintext by mistake. Thread safety: every function is safe from any
// thread.
#ifndef TESTS_HARNESS_TRANSPORT_SECURITY_H_
#define TESTS_HARNESS_TRANSPORT_SECURITY_H_

#include <memory>
#include <ostream>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "netpoll/socket_address.h"
#include "netpoll/testing/blocking_client.h"
#include "netpoll/tls_context.h"

namespace nprpc::testing {

enum class Transport { kPlaintext, kTls, kMutualTls };
inline constexpr Transport kEveryTransport[] = {Transport::kPlaintext, Transport::kTls,
                                                Transport::kMutualTls};

// "plain", "tls", "mtls" (test names).
std::string TransportName(Transport transport);
std::string TransportParamName(const ::testing::TestParamInfo<Transport>& info);
// For gtest's messages.
void PrintTo(Transport transport, std::ostream* os);

// The server's TLS: null for kPlaintext; the server certificate; with
// kMutualTls a client certificate is required and verified against the CA.
std::shared_ptr<const netpoll::TlsContext> ServerTls(Transport transport);
// A channel's TLS: null for kPlaintext; verifies the server against the CA
// (by the dialed IP address); with kMutualTls presents the client
// certificate. A new context (and session cache) per call.
std::shared_ptr<const netpoll::TlsContext> ClientTls(Transport transport);
// The same for a raw peer (netpoll::testing::BlockingClient::ConnectTls).
netpoll::testing::BlockingTlsOptions PeerTls(Transport transport);
// A raw peer over `transport` (for TLS, with the handshake done).
absl::StatusOr<netpoll::testing::BlockingClient> ConnectPeer(
    const netpoll::SocketAddress& address, Transport transport,
    absl::Duration timeout = absl::Seconds(5));

// The client certificate's subject as TlsInfo::subject shows it.
inline constexpr char kClientSubject[] = "CN=client,O=netpoll-rpc tests";

}  // namespace nprpc::testing

#endif  // TESTS_HARNESS_TRANSPORT_SECURITY_H_
