// grpc_echo_server: the gRPC C++ baseline of the RPC benchmark. Serves
// example.EchoService/Echo (proto/echo.proto, the same file nprpc serves)
// with gRPC's callback API: the handler echoes `message` and finishes its
// ServerUnaryReactor at once, on the thread gRPC called it on.
//
//   grpc_echo_server --listen=127.0.0.1:0
//
// Prints "listening on 127.0.0.1:PORT" once it accepts (port 0 picks one),
// serves until SIGINT/SIGTERM, then shuts down with a short grace period.
// Fail and Missing are left unimplemented (UNIMPLEMENTED): the benchmark only
// calls Echo.
#include <signal.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "grpcpp/grpcpp.h"
#include "proto/echo.grpc.pb.h"
#include "proto/echo.pb.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:8000", "address to serve on (host:port, port 0: any)");
ABSL_FLAG(std::string, tls_cert, "", "PEM certificate chain: serve TLS (gRPC's SSL credentials)");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert");

namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class EchoService final : public example::EchoService::CallbackService {
  grpc::ServerUnaryReactor* Echo(grpc::CallbackServerContext* context,
                                 const example::EchoRequest* request,
                                 example::EchoResponse* response) override {
    response->set_message(request->message());
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  // Wait for the stop signals synchronously on this thread; blocked before
  // gRPC starts its threads so that they inherit the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  const std::string listen = absl::GetFlag(FLAGS_listen);
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos) {
    std::cerr << "--listen must be host:port\n";
    return 2;
  }
  EchoService service;
  int port = 0;
  grpc::ServerBuilder builder;
  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials();
  if (const std::string cert = absl::GetFlag(FLAGS_tls_cert); !cert.empty()) {
    grpc::SslServerCredentialsOptions ssl;
    ssl.pem_key_cert_pairs.push_back({ReadFile(absl::GetFlag(FLAGS_tls_key)), ReadFile(cert)});
    credentials = grpc::SslServerCredentials(ssl);
  }
  builder.AddListeningPort(listen, credentials, &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::cerr << "cannot serve on " << listen << "\n";
    return 1;
  }
  std::cout << "listening on " << listen.substr(0, colon) << ":" << port << std::endl;

  int sig = 0;
  sigwait(&signals, &sig);
  std::cout << "signal " << sig << ": shutting down" << std::endl;
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  return 0;
}
