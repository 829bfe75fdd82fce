#include "rpc/internal/transport.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "netpoll/logging.h"

namespace nprpc {

std::shared_ptr<ClientStreamCore> Transport::NewStream(const ClientRequest& request,
                                                       ClientStreamStart start) {
  NP_CHECK(start.loop != nullptr) << "a stream needs a loop for its callbacks";
  absl::Status status = absl::FailedPreconditionError(
      absl::StrCat(request.service, "/", request.method,
                   ": streaming calls need a protocol with streams (\"grpc\")"));
  if (start.on_end) start.on_end(status);
  netpoll::EventLoop* loop = start.loop;
  return MakeFailedClientStream(std::move(status), [loop](absl::AnyInvocable<void()> task) {
    loop->QueueInLoop(std::move(task));
  });
}

}  // namespace nprpc
