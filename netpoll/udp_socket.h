// UdpSocket: one bound datagram socket (IPv4 or IPv6) on one EventLoop.
//
//   auto socket = netpoll::UdpSocket::Bind(
//       loop, *netpoll::SocketAddress::Parse("127.0.0.1:0"), {},
//       [&](const netpoll::SocketAddress& from, absl::string_view data) {
//         (void)socket_ptr->SendTo(from, data);  // echo
//       });
//
// Receiving: datagrams are read in batches with recvmmsg() on the loop thread
// and passed to on_datagram one by one. `data` points into a per-thread
// receive arena and is valid only during the call: copy what must outlive it.
// A datagram larger than max_datagram_bytes is dropped (and counted). A flood
// on one socket yields to the rest of the loop after a bounded number of
// batches per turn.
//
// Sending: SendTo() is one non-blocking sendto(). Nothing is queued in user
// space: when the kernel's send buffer is full it fails with Unavailable at
// once, and the caller decides whether to drop, retry later or slow down.
//
// Several sockets may share one port with reuse_port (SO_REUSEPORT, e.g. one
// per loop of an EventLoopGroup): the kernel spreads datagrams from different
// peers over them.
//
// Thread safety: SendTo(), Close(), local_address(), loop() and Stats() are
// safe from any thread; on_datagram runs on the loop thread. Close() (and the
// destructor) called off the loop thread wait for the loop to unregister the
// socket, so no on_datagram call runs or starts after they return; the loop
// must therefore be running then.
//
// Ownership: the caller owns the UdpSocket; the socket owns its fd. The loop
// is not owned and must outlive the socket.
#ifndef NETPOLL_UDP_SOCKET_H_
#define NETPOLL_UDP_SOCKET_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "netpoll/event_loop.h"
#include "netpoll/socket_address.h"

namespace netpoll {

struct UdpSocketOptions {
  // SO_REUSEPORT: several sockets (every one with this set) on one port.
  bool reuse_port = false;
  // Largest datagram delivered; larger ones are dropped and counted.
  size_t max_datagram_bytes = 65536;
  // Datagrams per recvmmsg() call.
  int batch = 16;
  // SO_RCVBUF / SO_SNDBUF when > 0 (the kernel may round or cap them).
  int receive_buffer_bytes = 0;
  int send_buffer_bytes = 0;
};

struct UdpSocketStats {
  int64_t datagrams_in = 0;
  int64_t bytes_in = 0;
  int64_t datagrams_out = 0;
  int64_t bytes_out = 0;
  int64_t receive_calls = 0;  // recvmmsg() calls that returned datagrams
  int64_t truncated = 0;      // dropped: larger than max_datagram_bytes
  int64_t send_full = 0;      // SendTo() calls refused because the buffer was full
};

class UdpSocket {
 public:
  using DatagramCallback = std::function<void(const SocketAddress& from, absl::string_view data)>;

  // Creates, binds (port 0 picks one; see local_address()) and registers the
  // socket with `loop`. Off the loop thread this waits for the registration.
  static absl::StatusOr<std::unique_ptr<UdpSocket>> Bind(EventLoop* loop,
                                                         const SocketAddress& address,
                                                         const UdpSocketOptions& options,
                                                         DatagramCallback on_datagram);
  // Close()s.
  ~UdpSocket();
  UdpSocket(const UdpSocket&) = delete;
  UdpSocket& operator=(const UdpSocket&) = delete;

  // Sends one datagram. Unavailable when the send buffer is full (or on a
  // network error), InvalidArgument when `data` is too large for one datagram
  // or `to` is of the wrong family, FailedPrecondition after Close().
  absl::Status SendTo(const SocketAddress& to, absl::string_view data);

  // Stops delivery and closes the fd. Idempotent.
  void Close();

  const SocketAddress& local_address() const { return local_; }
  EventLoop* loop() const { return loop_; }
  UdpSocketStats Stats() const;

 private:
  class Impl;  // the IoHandler; outlives the loop turn that closes it
  UdpSocket(EventLoop* loop, const SocketAddress& local, std::shared_ptr<Impl> impl);

  // Constant after construction.
  EventLoop* const loop_;  // not owned
  const SocketAddress local_;
  const std::shared_ptr<Impl> impl_;
  std::atomic<bool> closed_{false};
};

}  // namespace netpoll

#endif  // NETPOLL_UDP_SOCKET_H_
