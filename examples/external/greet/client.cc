// Calls greet.Greeter.SayHello once and prints the answer.
//
//   client 127.0.0.1:<port> <name>
#include <cstdio>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "greet/greet.nprpc.h"
#include "rpc/channel.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: client <address> <name>\n");
    return 2;
  }
  auto channel = nprpc::Channel::Create(argv[1]);
  if (!channel.ok()) {
    std::fprintf(stderr, "%s\n", channel.status().ToString().c_str());
    return 1;
  }
  greet::Greeter::Stub stub(channel->get());
  greet::HelloRequest request;
  request.mutable_person()->set_name(argv[2]);
  nprpc::CallOptions options;
  options.timeout = absl::Seconds(5);
  absl::StatusOr<greet::HelloReply> reply = stub.SayHello(request, options);
  if (!reply.ok()) {
    std::fprintf(stderr, "SayHello failed: %s\n", reply.status().ToString().c_str());
    return 1;
  }
  std::printf("%s\n", reply->message().c_str());
  return 0;
}
