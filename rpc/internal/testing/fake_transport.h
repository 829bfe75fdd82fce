// Fakes of the client's protocol seam for tests of the call controller and
// channel core: no sockets, no threads.
//
//   FakeNetwork network(&clock);
//   auto protocol = std::make_unique<FakeClientProtocol>(&network);
//   ... a ChannelCore over it sends attempts ...
//   network.attempt(0).address;        // where the first attempt went
//   network.Answer(0, response);       // the server answers it
//   network.Fail(1, MakeRpcError(EFAILEDSOCKET, "reset"));  // our side fails
//
// FakeNetwork records every attempt any of its transports was sent, in send
// order, and lets the test answer it (as the server), fail it (as our side
// of the connection) or leave it held. Answering an attempt that already
// completed (abandoned by the controller, or shut down) is a no-op that
// returns false, as a late answer is dropped by a real transport. Probes
// answer, on the clock's next Advance(), with the address's reachability
// (SetReachable; reachable by default).
//
// Thread safety: every method is safe from any thread. Completions run on
// the calling thread, without the network's lock held.
#ifndef RPC_INTERNAL_TESTING_FAKE_TRANSPORT_H_
#define RPC_INTERNAL_TESTING_FAKE_TRANSPORT_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "netpoll/mutex.h"
#include "rpc/internal/client_call.h"
#include "rpc/internal/client_protocol.h"
#include "rpc/internal/clock.h"
#include "rpc/internal/transport.h"

namespace nprpc::testing {

// What one attempt sent, and what became of it.
struct FakeAttempt {
  std::string address;
  ClientCallPtr call;
  std::string service;
  std::string method;
  std::string payload;  // the serialized request
  std::string attachment;
  std::vector<std::pair<std::string, std::string>> metadata;
  absl::Time deadline;
  absl::Duration timeout;
  absl::Time sent_at;      // the clock's time at Send()
  bool abandoned = false;  // by the controller, through Transport::Abandon
  absl::Status abandon_status;
};

class FakeNetwork {
 public:
  // `clock` (not owned, must outlive the network) stamps attempts and runs
  // probe answers.
  explicit FakeNetwork(Clock* clock) : clock_(clock) {}

  // Attempts sent so far, in send order.
  size_t attempts() const;
  // A snapshot of attempt `i` (< attempts()).
  FakeAttempt attempt(size_t i) const;
  // Attempts neither completed nor abandoned.
  size_t held() const;

  // The server answers attempt `i` with `response`. False if it had
  // already completed (the answer is dropped).
  bool Answer(size_t i, const google::protobuf::Message& response);
  // The server answers attempt `i` with a brpc error number.
  bool AnswerError(size_t i, int32_t error_code, absl::string_view text = "scripted");
  // The server's answer, decoded by `decode` (e.g. one that leaves fields in
  // the response and fails).
  bool AnswerWith(size_t i, ClientCall::Decoder decode);
  // Our side of attempt `i` fails (connection refused, reset, overcrowded).
  bool Fail(size_t i, absl::Status status);

  // Probes of `address` succeed (default) or fail.
  void SetReachable(const std::string& address, bool reachable);
  // Probes started so far, per address.
  int probes(const std::string& address) const;
  // Transports shut down so far.
  int shutdowns() const;

 private:
  friend class FakeTransport;
  friend class FakeClientProtocol;
  ClientCallPtr CallOf(size_t i) const;

  Clock* const clock_;  // not owned
  mutable netpoll::Mutex mu_;
  std::vector<std::shared_ptr<FakeAttempt>> attempts_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, bool> unreachable_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, int> probes_ ABSL_GUARDED_BY(mu_);
  int shutdowns_ ABSL_GUARDED_BY(mu_) = 0;
};

// The transport of one endpoint on a FakeNetwork.
class FakeTransport final : public Transport {
 public:
  FakeTransport(std::string address, FakeNetwork* network)
      : address_(std::move(address)), network_(network) {}

  void Send(ClientCallPtr call, const ClientRequest& request, absl::Time deadline,
            absl::Duration timeout) override;
  void Abandon(const ClientCallPtr& call, absl::Status status) override;
  void Shutdown() override;
  size_t in_flight() const override;

 private:
  const std::string address_;
  FakeNetwork* const network_;  // not owned
  mutable netpoll::Mutex mu_;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

// A ClientProtocol whose transports are FakeTransports on one network.
class FakeClientProtocol final : public ClientProtocol {
 public:
  explicit FakeClientProtocol(FakeNetwork* network) : network_(network) {}

  absl::string_view name() const override { return "fake"; }
  std::shared_ptr<Transport> NewTransport(const std::string& address) override {
    return std::make_shared<FakeTransport>(address, network_);
  }
  void Probe(const std::string& address, absl::AnyInvocable<void(absl::Status)> done) override;
  void Shutdown() override {}

 private:
  FakeNetwork* const network_;  // not owned
};

}  // namespace nprpc::testing

#endif  // RPC_INTERNAL_TESTING_FAKE_TRANSPORT_H_
