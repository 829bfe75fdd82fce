#include "rpc/channel_async.h"

#include <utility>

namespace nprpc {

bool CallMethodAwaitable::Start(const ServerContext* context, std::coroutine_handle<> awaiting) {
  if (context != nullptr) options_ = PropagateContext(*context, std::move(options_));
  channel_->CallMethod(service_, method_, *request_, response_, options_,
                       [this, awaiting](absl::Status status) {
                         status_ = std::move(status);
                         // Second to arrive: Start() has returned true, the
                         // coroutine is suspended and ours to resume.
                         if (rendezvous_.exchange(true, std::memory_order_acq_rel)) {
                           awaiting.resume();
                         }
                       });
  // First to arrive: the callback resumes later. Second: it already ran, go on.
  return !rendezvous_.exchange(true, std::memory_order_acq_rel);
}

}  // namespace nprpc
