// Channel: the client side of baidu_std calls to one server address.
//
//   nprpc::ChannelOptions options;
//   options.timeout = absl::Seconds(1);
//   auto channel = nprpc::Channel::Create("127.0.0.1:8000", options);
//   example::EchoRequest request;
//   request.set_message("hello");
//   example::EchoResponse response;
//   absl::Status s = (*channel)->CallMethod("example.EchoService", "Echo",
//                                           request, &response, {});
//
// Connection type "single" (the default): every call is multiplexed on one
// connection and matched by correlation_id; writes from many threads coalesce
// into one writev per loop turn. When the connection breaks, its in-flight
// calls fail with UNAVAILABLE (EFAILEDSOCKET) and the next call dials again
// (with a short backoff after failed dials), so a restarted server is picked
// up without help.
//
// Exactly once: every call completes once, with the response, an error
// response, DEADLINE_EXCEEDED (ERPCTIMEDOUT), CANCELLED, or UNAVAILABLE. A
// response arriving after its call completed is dropped.
//
// Completion runs on the channel's I/O loop thread (for timeouts, responses,
// cancellation and failures alike), so callbacks must not block; the sync
// CallMethod blocks its caller instead and must not run on a loop thread.
//
// Thread safety: every method is safe from any thread. The response message
// and CallOptions::info must stay alive until the call completes.
#ifndef RPC_CHANNEL_H_
#define RPC_CHANNEL_H_

#include <memory>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "netpoll/event_loop_group.h"
#include "rpc/baidu_std.h"
#include "rpc/call_options.h"

namespace nprpc {

class SingleConnectionTransport;

enum class ConnectionType {
  kSingle,  // one multiplexed connection (the only type so far)
};

struct ChannelOptions {
  ConnectionType connection_type = ConnectionType::kSingle;
  // Applies when a call sets neither timeout nor deadline.
  absl::Duration timeout = absl::Seconds(5);
  absl::Duration connect_timeout = absl::Seconds(1);
  // After a failed dial, calls fail fast for this long (doubling up to
  // max_reconnect_backoff) instead of dialing again at once.
  absl::Duration reconnect_backoff = absl::Milliseconds(10);
  absl::Duration max_reconnect_backoff = absl::Seconds(1);
  size_t max_body_size = kDefaultMaxBodySize;
  // I/O loops; not owned, must outlive the channel. Null: a process-wide
  // group with one loop per core (DefaultClientLoops()).
  netpoll::EventLoopGroup* loops = nullptr;
};

// The process-wide client loops (created on first use, never destroyed).
netpoll::EventLoopGroup* DefaultClientLoops();

class Channel {
 public:
  using DoneCallback = absl::AnyInvocable<void(absl::Status)>;

  // `address`: "host:port", "[v6]:port" or "unix:/path". Does not connect yet.
  static absl::StatusOr<std::unique_ptr<Channel>> Create(absl::string_view address,
                                                         const ChannelOptions& options = {});
  // In-flight calls complete with CANCELLED; returns after they have.
  ~Channel();
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  // Async: `done` runs exactly once on the channel's loop thread. `response`
  // (and options.info) must outlive the call.
  void CallMethod(absl::string_view service, absl::string_view method,
                  const google::protobuf::Message& request, google::protobuf::Message* response,
                  const CallOptions& options, DoneCallback done);

  // Sync: blocks until the call completes. Not on a loop thread.
  absl::Status CallMethod(absl::string_view service, absl::string_view method,
                          const google::protobuf::Message& request,
                          google::protobuf::Message* response, const CallOptions& options = {});

  const std::string& address() const { return address_; }
  // Calls sent and not yet completed.
  size_t in_flight() const;

 private:
  Channel(std::string address, const ChannelOptions& options,
          std::shared_ptr<SingleConnectionTransport> transport);

  const std::string address_;
  const ChannelOptions options_;
  const std::shared_ptr<SingleConnectionTransport> transport_;
};

}  // namespace nprpc

#endif  // RPC_CHANNEL_H_
