#include "tests/harness/call_ledger.h"

#include <algorithm>
#include <memory>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "proto/echo.pb.h"

namespace nprpc::testing {

void CallLedger::Issue(absl::string_view method, const CallOptions& options, int code) {
  int index;
  {
    netpoll::MutexLock lock(&mu_);
    index = static_cast<int>(completions_.size());
    completions_.push_back(0);
  }
  auto request = std::make_shared<example::EchoRequest>();
  request->set_message(absl::StrCat("call-", index));
  request->set_code(code);
  auto response = std::make_shared<example::EchoResponse>();
  channel_->CallMethod("example.EchoService", method, *request, response.get(), options,
                       [this, index, request, response](const absl::Status& status) {
                         netpoll::MutexLock lock(&mu_);
                         completions_[index]++;
                         outcomes_[status.ok() ? "OK" : absl::StatusCodeToString(status.code())]++;
                         if (status.ok() && response->message() != request->message()) {
                           mismatches_++;
                         }
                         cv_.SignalAll();
                       });
}

bool CallLedger::WaitAll(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  netpoll::MutexLock lock(&mu_);
  while (!AllDoneLocked()) {
    if (cv_.WaitWithDeadline(&mu_, deadline)) return AllDoneLocked();
  }
  return true;
}

void CallLedger::ExpectExactlyOnce() {
  // A window for a wrong second completion to arrive; correct code passes
  // whatever its length.
  absl::SleepFor(absl::Milliseconds(50));
  netpoll::MutexLock lock(&mu_);
  for (size_t i = 0; i < completions_.size(); ++i) {
    EXPECT_EQ(completions_[i], 1) << "call " << i;
  }
  EXPECT_EQ(mismatches_, 0);
}

int CallLedger::Count(const std::string& outcome) {
  netpoll::MutexLock lock(&mu_);
  auto it = outcomes_.find(outcome);
  return it == outcomes_.end() ? 0 : it->second;
}

std::string CallLedger::Outcomes() {
  netpoll::MutexLock lock(&mu_);
  std::string out;
  for (const auto& [outcome, count] : outcomes_) {
    absl::StrAppend(&out, out.empty() ? "" : ",", outcome, "=", count);
  }
  return out;
}

int CallLedger::issued() {
  netpoll::MutexLock lock(&mu_);
  return static_cast<int>(completions_.size());
}

bool CallLedger::AllDoneLocked() {
  return std::all_of(completions_.begin(), completions_.end(), [](int c) { return c != 0; });
}

}  // namespace nprpc::testing
