// rpc_echo_server: serves example.EchoService (tests/harness/echo_service.h) over
// baidu_std (and HTTP/1.1 and gRPC on the same port), answering like the brpc
// server of tests/data/baidu_std/.
//
//   bazel run //examples:rpc_echo_server -- --listen=127.0.0.1:8000 --threads=4
//
// Every ServerOptions limit is a flag (examples/server_flags.h), e.g.
// --memory_budget_mb=256 --write_timeout_ms=10000. --auth_token=T accepts only
// connections whose first request carries T (examples/token_authenticator.h).
// --register_at=etcd://10.0.0.5:2379/services/echo puts the server's address in
// etcd under a lease (rpc/etcd_registration.h) and takes it out first when
// stopping.
//
// Prints "listening on <address>" once it accepts (port 0 picks one), then
// serves until SIGINT/SIGTERM, and shuts down gracefully.
#include <signal.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "examples/server_flags.h"
#include "examples/token_authenticator.h"
#include "netpoll/tls_context.h"
#include "rpc/etcd_registration.h"
#include "rpc/server.h"
#include "tests/harness/echo_service.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:8000", "address to serve on (ip:port or unix:/path)");
ABSL_FLAG(std::string, register_at, "",
          "etcd://host:port[,...]/prefix: register this server there under a lease "
          "(deregistered first on SIGTERM/SIGINT)");
ABSL_FLAG(std::string, advertise, "",
          "the address to register (default: the bound one; set it when listening on 0.0.0.0)");
ABSL_FLAG(int, register_ttl_s, 3, "--register_at: the lease's time to live in seconds");
ABSL_FLAG(std::string, auth_token, "",
          "when set, the only credential accepted (ERPCAUTH otherwise)");
ABSL_FLAG(std::string, tls_cert, "", "PEM certificate chain: serve TLS beside plaintext");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert");
ABSL_FLAG(std::string, tls_client_ca, "", "PEM CA: require client certificates (mTLS)");
ABSL_FLAG(bool, tls_required, false, "with --tls_cert: refuse plaintext connections");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  // Wait for the stop signals synchronously on this thread.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // inherited by every thread
  signal(SIGPIPE, SIG_IGN);

  nprpc::ServerOptions options = examples::ServerOptionsFromFlags();
  if (const std::string token = absl::GetFlag(FLAGS_auth_token); !token.empty()) {
    options.authenticator = std::make_shared<examples::TokenAuthenticator>(token);
  }
  if (const std::string cert = absl::GetFlag(FLAGS_tls_cert); !cert.empty()) {
    netpoll::TlsServerOptions tls;
    tls.key_pair.cert_chain_file = cert;
    tls.key_pair.private_key_file = absl::GetFlag(FLAGS_tls_key);
    if (const std::string ca = absl::GetFlag(FLAGS_tls_client_ca); !ca.empty()) {
      tls.ca_file = ca;
      tls.client_cert = netpoll::TlsServerOptions::ClientCert::kRequire;
    }
    absl::StatusOr<std::shared_ptr<netpoll::TlsContext>> context =
        netpoll::TlsContext::NewServer(tls);
    if (!context.ok()) {
      std::cerr << "TLS: " << context.status() << "\n";
      return 1;
    }
    options.tls = *std::move(context);
    options.tls_required = absl::GetFlag(FLAGS_tls_required);
  }
  nprpc::Server server(std::move(options));
  if (absl::Status s = server.AddService(nprpc::testing::NewEchoService()); !s.ok()) {
    std::cerr << "AddService: " << s << "\n";
    return 1;
  }
  if (absl::Status s = server.Start(absl::GetFlag(FLAGS_listen)); !s.ok()) {
    std::cerr << "Start: " << s << "\n";
    return 1;
  }
  if (const std::string target = absl::GetFlag(FLAGS_register_at); !target.empty()) {
    std::string address = absl::GetFlag(FLAGS_advertise);
    if (address.empty()) address = server.listen_address().ToString();
    nprpc::EtcdRegistrationOptions registration_options;
    registration_options.ttl = absl::Seconds(absl::GetFlag(FLAGS_register_ttl_s));
    auto registration = nprpc::EtcdRegistration::Start(target, address, registration_options);
    if (!registration.ok()) {
      std::cerr << "register at " << target << ": " << registration.status() << "\n";
      return 1;
    }
    std::cout << "registered " << (*registration)->key() << std::endl;
    (void)server.AddRegistration(*std::move(registration));
  }
  std::cout << "listening on " << server.listen_address().ToString() << std::endl;

  int sig = 0;
  sigwait(&signals, &sig);
  std::cout << "signal " << sig << ": shutting down" << std::endl;
  // Where the handlers ran (ServerOptions::handler_threads).
  const nprpc::ServerStats stats = server.Stats();
  for (const auto& [name, m] : stats.methods) {
    if (m.received == 0) continue;
    std::cout << name << ": " << m.received << " calls, " << m.ran_on_loop << " on the loop, "
              << m.ran_on_pool << " on the pool, " << m.moves_to_pool << " moves to the pool\n";
  }
  std::cout << "loop hand-offs: " << stats.loop_handoffs << std::endl;
  std::cout << "connections refused by the authenticator: " << stats.auth_failures << std::endl;
  server.Shutdown(absl::Seconds(5));
  return 0;
}
