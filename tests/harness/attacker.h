// Raw-socket attackers against a baidu_std server, for tests and the soak:
// connections that pipeline requests without reading answers, send large
// frames slowly, or send compressed payloads that inflate to large messages.
// Loopback only; every attack is bounded in time.
//
//   std::string frame = EncodeRawCall(1, std::string(64 << 10, 'x'),
//                                     "example.EchoService", "Echo");
//   AttackResult r = Attack({.port = port, .connections = 50, .stream = frame,
//                            .repeat = true, .duration = absl::Seconds(4)});
//
// Thread safety: Attack() runs on the calling thread (it blocks for the
// attack); separate calls are independent.
#ifndef TESTS_HARNESS_ATTACKER_H_
#define TESTS_HARNESS_ATTACKER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "rpc/baidu_std.h"

namespace nprpc::testing {

// A non-blocking TCP connection to 127.0.0.1:port (connect in progress), or
// -1. `small_receive_buffer`: a 4 KiB SO_RCVBUF, so that the kernel holds few
// answers for a peer that does not read them.
int ConnectLoopback(int port, bool small_receive_buffer = false);

// One baidu_std request frame for service/method with an example.EchoRequest
// {message, code}; EncodeRequest compresses the payload as `compress` says.
std::string EncodeRawCall(int64_t id, const std::string& message, absl::string_view service,
                          absl::string_view method, CompressType compress = CompressType::kNone,
                          int32_t code = 0);

struct AttackOptions {
  int port = 0;  // on 127.0.0.1
  int connections = 1;
  // What each connection sends: `stream` once, or over and over (`repeat`).
  std::string stream;
  bool repeat = false;
  // Per connection; 0: as fast as the socket takes it.
  int64_t bytes_per_second = 0;
  // Read (and count) answers; otherwise never read, with a small receive
  // buffer so that the kernel holds few answers and the server's own
  // backpressure is what the attack meets.
  bool read_answers = false;
  absl::Duration duration = absl::Seconds(1);
  // Checked every 100 ms; true ends the attack early.
  std::function<bool()> done;
};

struct AttackResult {
  int64_t bytes_sent = 0;
  int64_t answers = 0;
  int64_t elimit_answers = 0;
  std::map<int32_t, int64_t> answers_by_code;
  int closed_by_server = 0;
};

// Runs the attack, then closes its connections.
AttackResult Attack(const AttackOptions& options);

}  // namespace nprpc::testing

#endif  // TESTS_HARNESS_ATTACKER_H_
