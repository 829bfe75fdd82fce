// The tutorial's client: a Channel, the generated Stub, and the ways to
// call: blocking, co_await, and a server stream over gRPC.
//
//   greeter_client [address] [name]
//
// `address` may also name a service in etcd: etcd://host:port/prefix.
#include <cstdio>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "examples/tutorial/greeter.nprpc.h"
#include "rpc/channel.h"
#include "rpc/task.h"

namespace {

// A coroutine: co_await the call; no thread waits meanwhile.
nprpc::Task<absl::StatusOr<std::string>> GreetTwice(tutorial::Greeter::Stub& stub,
                                                    const tutorial::HelloRequest& request) {
  auto [first, second] =
      co_await nprpc::WhenAll(stub.SayHelloAsync(request), stub.SayHelloAsync(request));
  if (!first.ok()) co_return first.status();
  if (!second.ok()) co_return second.status();
  co_return first->message() + " " + second->message();
}

}  // namespace

int main(int argc, char** argv) {
  const std::string address = argc > 1 ? argv[1] : "127.0.0.1:50051";
  auto channel = nprpc::Channel::Create(address);
  if (!channel.ok()) {
    std::fprintf(stderr, "%s\n", channel.status().ToString().c_str());
    return 1;
  }
  tutorial::Greeter::Stub stub(channel->get());

  tutorial::HelloRequest request;
  request.set_name(argc > 2 ? argv[2] : "world");
  nprpc::CallOptions options;
  options.timeout = absl::Seconds(1);

  // 1. Blocking.
  absl::StatusOr<tutorial::HelloReply> reply = stub.SayHello(request, options);
  if (!reply.ok()) {
    std::fprintf(stderr, "SayHello failed: %s\n", reply.status().ToString().c_str());
    return 1;
  }
  std::printf("%s\n", reply->message().c_str());

  // 2. Coroutine (BlockOn runs it from main; inside a CoroutineService
  //    handler you would co_await it instead).
  absl::StatusOr<std::string> twice = nprpc::BlockOn(GreetTwice(stub, request));
  if (!twice.ok()) {
    std::fprintf(stderr, "GreetTwice failed: %s\n", twice.status().ToString().c_str());
    return 1;
  }
  std::printf("%s\n", twice->c_str());

  // 3. Streaming, over gRPC (the same port speaks it; streams need it).
  nprpc::ChannelOptions grpc_options;
  grpc_options.protocol = "grpc";
  auto grpc_channel = nprpc::Channel::Create(address, grpc_options);
  if (!grpc_channel.ok()) return 1;
  tutorial::Greeter::Stub grpc_stub(grpc_channel->get());
  auto greetings = grpc_stub.SayHelloStream(request, options);
  tutorial::HelloReply greeting;
  while (greetings->Read(&greeting)) std::printf("%s\n", greeting.message().c_str());
  if (absl::Status status = greetings->Finish(); !status.ok()) {
    std::fprintf(stderr, "SayHelloStream failed: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}
