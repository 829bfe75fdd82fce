// The tutorial's server: derive from the generated base, override the
// method, add the service to a Server.
//
//   greeter_server [address] [etcd://host:port/prefix]
//
// Address default 127.0.0.1:50051 (port 0: any). With an etcd target it
// registers itself there under a lease and, on shutdown, deregisters first.
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "examples/tutorial/greeter.nprpc.h"
#include "rpc/etcd_registration.h"
#include "rpc/interceptor.h"
#include "rpc/server.h"

namespace {

// Greeter::Service is the sync base: handlers run on the server's worker
// threads. (Greeter::CoroutineService and Greeter::CallbackService are the
// other two styles.)
class GreeterImpl final : public tutorial::Greeter::Service {
 public:
  absl::Status SayHello(nprpc::ServerContext& context, const tutorial::HelloRequest& request,
                        tutorial::HelloReply* reply) override {
    reply->set_message(absl::StrCat("Hello, ", request.name(), "!"));
    context.Annotate("greeting built");  // shown in this call's span at /rpcz
    return absl::OkStatus();
  }

  absl::Status SayHelloStream(nprpc::ServerContext& context, const tutorial::HelloRequest& request,
                              nprpc::ServerWriter<tutorial::HelloReply>* writer) override {
    for (const char* hello : {"Hello", "Bonjour", "Hola"}) {
      tutorial::HelloReply reply;
      reply.set_message(absl::StrCat(hello, ", ", request.name(), "!"));
      // Blocks while the client is slow to read (flow control).
      if (!writer->Write(reply)) return absl::CancelledError("the client went away");
    }
    return absl::OkStatus();
  }
};

// Sees every call without touching the handlers: logs the slow ones.
class SlowCallLog final : public nprpc::ServerInterceptor {
 public:
  void AfterCall(const nprpc::ServerContext& context, const nprpc::CallOutcome& outcome) override {
    if (outcome.latency < absl::Milliseconds(100)) return;
    std::fprintf(stderr, "slow: %s/%s took %s (%s, trace %016" PRIx64 ")\n",
                 context.service_name().c_str(), context.method_name().c_str(),
                 absl::FormatDuration(outcome.latency).c_str(), outcome.status.ToString().c_str(),
                 static_cast<uint64_t>(context.trace().trace_id.value_or(0)));
  }
};

}  // namespace

int main(int argc, char** argv) {
  const std::string address = argc > 1 ? argv[1] : "127.0.0.1:50051";
  GreeterImpl greeter;
  nprpc::ServerOptions options;
  options.interceptors.push_back(std::make_shared<SlowCallLog>());
  nprpc::Server server(options);
  absl::Status status = server.AddService(&greeter);
  if (status.ok()) status = server.Start(address);
  if (status.ok() && argc > 2) {  // e.g. etcd://127.0.0.1:2379/services/greeter
    auto registration = nprpc::EtcdRegistration::Start(argv[2], server.listen_address().ToString());
    status = registration.ok() ? server.AddRegistration(*std::move(registration))
                               : registration.status();
  }
  if (!status.ok()) {
    std::fprintf(stderr, "cannot serve: %s\n", status.ToString().c_str());
    return 1;
  }
  std::printf("listening on %s\n", server.listen_address().ToString().c_str());
  std::fflush(stdout);
  for (;;) pause();  // serve until killed
}
