// The tutorial's server: derive from the generated base, override the
// method, add the service to a Server.
//
//   greeter_server [address]   (default 127.0.0.1:50051; port 0: any)
#include <unistd.h>

#include <cstdio>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "examples/tutorial/greeter.nprpc.h"
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
    return absl::OkStatus();
  }
};

}  // namespace

int main(int argc, char** argv) {
  const std::string address = argc > 1 ? argv[1] : "127.0.0.1:50051";
  GreeterImpl greeter;
  nprpc::Server server;
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
