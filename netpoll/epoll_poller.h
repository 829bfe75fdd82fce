// EpollPoller: Poller on Linux epoll, edge-triggered.
//
// Edge-triggered registration lets a connection register EPOLLIN|EPOLLOUT
// once for its whole life: no epoll_ctl per write to toggle EPOLLOUT, which
// level-triggered mode would need. Handlers drain reads and writes until
// EAGAIN (see docs/architecture.md).
//
// Thread safety: loop thread only (see Poller).
#ifndef NETPOLL_EPOLL_POLLER_H_
#define NETPOLL_EPOLL_POLLER_H_

#include <sys/epoll.h>

#include <memory>
#include <vector>

#include "netpoll/poller.h"

namespace netpoll {

class EpollPoller : public Poller {
 public:
  static absl::StatusOr<std::unique_ptr<EpollPoller>> Create();
  ~EpollPoller() override;

  absl::Status Add(int fd, uint32_t interest, IoHandler* handler) override;
  absl::Status Modify(int fd, uint32_t interest, IoHandler* handler) override;
  absl::Status Remove(int fd) override;
  absl::StatusOr<int> Wait(absl::Span<Ready> ready, int timeout_ms) override;

 private:
  explicit EpollPoller(int epoll_fd) : epoll_fd_(epoll_fd) {}
  absl::Status Control(int op, int fd, uint32_t interest, IoHandler* handler);

  const int epoll_fd_;                      // owned
  std::vector<struct epoll_event> events_;  // scratch for epoll_wait
};

}  // namespace netpoll

#endif  // NETPOLL_EPOLL_POLLER_H_
