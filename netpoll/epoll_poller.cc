#include "netpoll/epoll_poller.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"

namespace netpoll {
namespace {

uint32_t ToEpoll(uint32_t interest) {
  uint32_t events = EPOLLET | EPOLLRDHUP;
  if (interest & kPollReadable) events |= EPOLLIN;
  if (interest & kPollWritable) events |= EPOLLOUT;
  return events;
}

uint32_t FromEpoll(uint32_t events) {
  uint32_t out = 0;
  if (events & (EPOLLIN | EPOLLPRI)) out |= kPollReadable;
  if (events & EPOLLOUT) out |= kPollWritable;
  if (events & (EPOLLRDHUP | EPOLLHUP)) out |= kPollHangUp;
  if (events & EPOLLERR) out |= kPollError;
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<EpollPoller>> EpollPoller::Create() {
  int fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) return absl::InternalError(absl::StrCat("epoll_create1: ", strerror(errno)));
  return std::unique_ptr<EpollPoller>(new EpollPoller(fd));
}

EpollPoller::~EpollPoller() { ::close(epoll_fd_); }

absl::Status EpollPoller::Control(int op, int fd, uint32_t interest, IoHandler* handler) {
  struct epoll_event event = {};
  event.events = ToEpoll(interest);
  event.data.ptr = handler;
  if (::epoll_ctl(epoll_fd_, op, fd, &event) != 0) {
    return absl::InternalError(
        absl::StrCat("epoll_ctl(op=", op, ", fd=", fd, "): ", strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status EpollPoller::Add(int fd, uint32_t interest, IoHandler* handler) {
  return Control(EPOLL_CTL_ADD, fd, interest, handler);
}

absl::Status EpollPoller::Modify(int fd, uint32_t interest, IoHandler* handler) {
  return Control(EPOLL_CTL_MOD, fd, interest, handler);
}

absl::Status EpollPoller::Remove(int fd) {
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr) != 0) {
    return absl::InternalError(absl::StrCat("epoll_ctl(DEL, fd=", fd, "): ", strerror(errno)));
  }
  return absl::OkStatus();
}

absl::StatusOr<int> EpollPoller::Wait(absl::Span<Ready> ready, int timeout_ms) {
  if (events_.size() < ready.size()) events_.resize(ready.size());
  int n = ::epoll_wait(epoll_fd_, events_.data(), static_cast<int>(ready.size()), timeout_ms);
  if (n < 0) {
    if (errno == EINTR) return 0;
    return absl::InternalError(absl::StrCat("epoll_wait: ", strerror(errno)));
  }
  for (int i = 0; i < n; ++i) {
    ready[i].handler = static_cast<IoHandler*>(events_[i].data.ptr);
    ready[i].events = FromEpoll(events_[i].events);
  }
  return n;
}

}  // namespace netpoll
