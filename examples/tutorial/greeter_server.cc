// The tutorial's server: derive from the generated base, override the
// method, add the service to a Server.
//
//   greeter_server [address]   (default 127.0.0.1:50051; port 0: any)
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "examples/tutorial/greeter.nprpc.h"
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
  if (!status.ok()) {
    std::fprintf(stderr, "cannot serve: %s\n", status.ToString().c_str());
    return 1;
  }
  std::printf("listening on %s\n", server.listen_address().ToString().c_str());
  std::fflush(stdout);
  for (;;) pause();  // serve until killed
}
