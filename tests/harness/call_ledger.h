// CallLedger: issues asynchronous example.EchoService calls on a Channel and
// accounts for their completions, to prove that every call completes exactly
// once (by outcome) whatever faults the test injects.
//
//   CallLedger ledger(channel.get());
//   for (int i = 0; i < 100; ++i) ledger.Issue("Echo");
//   server.Kill();
//   ASSERT_TRUE(ledger.WaitAll(absl::Seconds(10)));
//   ledger.ExpectExactlyOnce();
//   EXPECT_EQ(ledger.Count("UNAVAILABLE") + ledger.Count("OK"), 100);
//
// Thread safety: every method is safe from any thread. The channel must
// outlive the ledger's calls (WaitAll before destroying either).
#ifndef TESTS_HARNESS_CALL_LEDGER_H_
#define TESTS_HARNESS_CALL_LEDGER_H_

#include <map>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "netpoll/mutex.h"
#include "rpc/channel.h"

namespace nprpc::testing {

class CallLedger {
 public:
  explicit CallLedger(Channel* channel) : channel_(channel) {}

  // Issues example.EchoService/`method` with message "call-<n>" and `code`.
  // A successful answer must echo the message (else it counts as a mismatch).
  void Issue(absl::string_view method, const CallOptions& options = CallOptions(), int code = 0);

  // Waits until every issued call completed once; false on timeout.
  bool WaitAll(absl::Duration timeout);
  // Every call completed exactly once and no answer was another call's
  // (gtest expectations). Waits a little first, so a second completion shows.
  void ExpectExactlyOnce();

  // Completions with this outcome: "OK" or an absl::StatusCodeToString name.
  int Count(const std::string& outcome);
  // "OK=398,UNAVAILABLE=2": every outcome seen (for failure messages).
  std::string Outcomes();
  int issued();

 private:
  bool AllDoneLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Channel* const channel_;  // not owned
  netpoll::Mutex mu_;
  netpoll::CondVar cv_;
  std::vector<int> completions_ ABSL_GUARDED_BY(mu_);  // per call
  std::map<std::string, int> outcomes_ ABSL_GUARDED_BY(mu_);
  int mismatches_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace nprpc::testing

#endif  // TESTS_HARNESS_CALL_LEDGER_H_
