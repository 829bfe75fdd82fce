// Poller: the I/O multiplexing interface under an EventLoop.
//
// A Poller watches file descriptors and reports which are ready. Each fd is
// registered with an IoHandler that receives its events; the handler is not
// owned and must stay alive until Remove() returns (EventLoop defers handler
// destruction to the end of its turn for this reason).
//
// Implementations: EpollPoller (epoll_poller.h). io_uring can come later behind
// the same interface. Create() is the one factory that picks one.
//
// Thread safety: a Poller belongs to one EventLoop and is used only on that
// loop's thread.
#ifndef NETPOLL_POLLER_H_
#define NETPOLL_POLLER_H_

#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace netpoll {

// Readiness bits, independent of the implementation's own flags.
enum PollEvent : uint32_t {
  kPollReadable = 1u << 0,
  kPollWritable = 1u << 1,
  kPollHangUp = 1u << 2,  // peer closed its write side (or both)
  kPollError = 1u << 3,   // error on the fd (read SO_ERROR / the next I/O call)
};

// Receives the events of one fd. Called on the loop thread.
class IoHandler {
 public:
  virtual ~IoHandler() = default;
  virtual void HandleEvents(uint32_t events) = 0;
};

enum class PollerKind { kEpoll };

class Poller {
 public:
  struct Ready {
    IoHandler* handler;
    uint32_t events;  // PollEvent bits
  };

  // The one factory: returns the implementation for `kind`.
  static absl::StatusOr<std::unique_ptr<Poller>> Create(PollerKind kind);

  virtual ~Poller() = default;

  // `interest` is PollEvent bits (kPollReadable and/or kPollWritable).
  // Edge-triggered: an event is reported when readiness changes, so the
  // handler must read/write until the call would block.
  virtual absl::Status Add(int fd, uint32_t interest, IoHandler* handler) = 0;
  virtual absl::Status Modify(int fd, uint32_t interest, IoHandler* handler) = 0;
  virtual absl::Status Remove(int fd) = 0;

  // Waits up to timeout_ms (-1: forever) and fills `ready`. Returns how many
  // entries were filled (0 on timeout or EINTR).
  virtual absl::StatusOr<int> Wait(absl::Span<Ready> ready, int timeout_ms) = 0;
};

}  // namespace netpoll

#endif  // NETPOLL_POLLER_H_
