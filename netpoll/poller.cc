#include "netpoll/poller.h"

#include "netpoll/epoll_poller.h"

namespace netpoll {

absl::StatusOr<std::unique_ptr<Poller>> Poller::Create(PollerKind kind) {
  switch (kind) {
    case PollerKind::kEpoll: {
      auto poller = EpollPoller::Create();
      if (!poller.ok()) return poller.status();
      return std::unique_ptr<Poller>(std::move(*poller));
    }
  }
  return absl::InvalidArgumentError("unknown poller kind");
}

}  // namespace netpoll
