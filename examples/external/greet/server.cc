// Serves greet.Greeter on the given address until one call has been answered,
// then shuts down and exits 0. Prints "listening on <address>" first.
//
//   server 127.0.0.1:0
#include "rpc/server.h"

#include <atomic>
#include <cstdio>
#include <future>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "greet/greet.nprpc.h"

namespace {

class GreeterImpl final : public greet::Greeter::Service {
 public:
  absl::Status SayHello(nprpc::ServerContext& context, const greet::HelloRequest& request,
                        greet::HelloReply* reply) override {
    reply->set_message("Hello, " + request.person().name() + "!");
    if (!answered_.exchange(true)) one_call_.set_value();
    return absl::OkStatus();
  }

  void WaitForOneCall() { one_call_.get_future().wait(); }

 private:
  std::atomic<bool> answered_{false};
  std::promise<void> one_call_;
};

}  // namespace

int main(int argc, char** argv) {
  const std::string address = argc > 1 ? argv[1] : "127.0.0.1:0";
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
  greeter.WaitForOneCall();
  server.Shutdown(absl::Seconds(5));  // the answer in flight is flushed first
  return 0;
}
