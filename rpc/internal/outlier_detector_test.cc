#include "rpc/internal/outlier_detector.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "rpc/errors.h"
#include "rpc/metrics.h"

namespace nprpc {
namespace {

std::vector<EndpointPtr> MakeEndpoints(int n) {
  std::vector<EndpointPtr> endpoints;
  for (int i = 0; i < n; ++i) {
    endpoints.push_back(
        std::make_shared<Endpoint>(ServerNode{absl::StrCat("10.0.0.", i, ":80")}, nullptr));
  }
  return endpoints;
}

OutlierDetectionOptions Options() {
  OutlierDetectionOptions options;
  options.enabled = true;
  options.min_requests = 10;
  options.error_rate_threshold = 0.5;
  options.base_ejection_time = absl::Seconds(1);
  options.max_ejection_time = absl::Seconds(5);
  return options;
}

// `failures` of `attempts` fail; the others take `latency`.
void Feed(Endpoint& e, int attempts, int failures, absl::Duration latency = absl::Milliseconds(1)) {
  for (int i = 0; i < attempts; ++i) OutlierDetector::Record(e, i < failures, latency);
}

class OutlierDetectorTest : public ::testing::Test {
 protected:
  // One window: every endpoint gets 20 good attempts except those given.
  void Window(const std::vector<int>& failures_of_20) {
    for (size_t i = 0; i < eps_.size(); ++i) Feed(*eps_[i], 20, failures_of_20[i]);
    now_ += absl::Seconds(1);
    detector_.Evaluate(eps_, now_);
  }

  std::vector<EndpointPtr> eps_ = MakeEndpoints(3);
  OutlierDetector detector_{Options()};
  absl::Time now_ = absl::UnixEpoch();
};

TEST(IsEndpointFailure, CountsTheEndpointsFailuresNotTheRequests) {
  EXPECT_FALSE(IsEndpointFailure(absl::OkStatus(), true));
  EXPECT_TRUE(IsEndpointFailure(MakeRpcError(EFAILEDSOCKET, "reset"), false));
  EXPECT_TRUE(IsEndpointFailure(MakeRpcError(ERPCTIMEDOUT, "late"), false));
  EXPECT_TRUE(IsEndpointFailure(MakeRpcError(EINTERNAL, "crash"), true));
  EXPECT_TRUE(IsEndpointFailure(MakeRpcError(ELIMIT, "busy"), true));
  EXPECT_FALSE(IsEndpointFailure(MakeRpcError(EFAILEDSOCKET, "my downstream"), true));
  EXPECT_FALSE(IsEndpointFailure(MakeRpcError(EREQUEST, "bad request"), true));
  EXPECT_FALSE(IsEndpointFailure(MakeRpcError(ENOMETHOD, "no such method"), true));
}

TEST_F(OutlierDetectorTest, AnEndpointFailingWhileItsPeersSucceedIsEjected) {
  Window({15, 0, 1});
  EXPECT_TRUE(eps_[0]->ejected());
  EXPECT_FALSE(eps_[1]->ejected());
  EXPECT_FALSE(eps_[2]->ejected());
  OutlierStats stats = detector_.stats();
  EXPECT_EQ(stats.ejections, 1);
  EXPECT_EQ(stats.ejected_now, 1);
  const std::string text = MetricsRegistry::Default().ExportPrometheus();
  EXPECT_NE(text.find("nprpc_client_outlier_ejections_total "), std::string::npos) << text;
  EXPECT_NE(text.find("nprpc_client_outlier_ejected "), std::string::npos);
}

TEST_F(OutlierDetectorTest, EveryoneFailingEjectsNobody) {
  Window({20, 18, 15});
  for (const auto& e : eps_) EXPECT_FALSE(e->ejected()) << e->node.address;
}

TEST_F(OutlierDetectorTest, TooFewAttemptsAreNotJudged) {
  Feed(*eps_[0], 9, 9);
  Feed(*eps_[1], 20, 0);
  Feed(*eps_[2], 20, 0);
  detector_.Evaluate(eps_, now_ + absl::Seconds(1));
  EXPECT_FALSE(eps_[0]->ejected());
}

TEST_F(OutlierDetectorTest, NeverEjectsMoreThanTheMaximumShare) {
  eps_ = MakeEndpoints(4);
  Window({20, 20, 0, 0});  // two clear outliers, 50% may go
  EXPECT_TRUE(eps_[0]->ejected());
  EXPECT_TRUE(eps_[1]->ejected());
  OutlierDetectionOptions options = Options();
  options.max_ejection_share = 0.25;  // one of four
  OutlierDetector capped(options);
  auto eps = MakeEndpoints(4);
  for (int i = 0; i < 4; ++i) Feed(*eps[i], 20, i < 2 ? 20 : 0);
  capped.Evaluate(eps, now_);
  EXPECT_EQ(capped.stats().ejected_now, 1);
  EXPECT_FALSE(eps[2]->ejected());
  EXPECT_FALSE(eps[3]->ejected());
}

TEST_F(OutlierDetectorTest, ASingleEndpointIsNeverEjected) {
  eps_ = MakeEndpoints(1);
  Window({20});
  EXPECT_FALSE(eps_[0]->ejected());
}

TEST_F(OutlierDetectorTest, EjectionEndsInProbationAndAGoodWindowRestores) {
  Window({20, 0, 0});
  ASSERT_TRUE(eps_[0]->ejected());
  Window({0, 0, 0});  // 1 s later: the ejection (1 s) is over
  EXPECT_FALSE(eps_[0]->ejected());
  EXPECT_TRUE(eps_[0]->on_probation());
  EXPECT_EQ(detector_.stats().on_probation, 1);
  Feed(*eps_[0], 2, 0);  // a little traffic, all good
  now_ += absl::Seconds(1);
  detector_.Evaluate(eps_, now_);
  EXPECT_FALSE(eps_[0]->on_probation());
  EXPECT_FALSE(eps_[0]->ejected());
}

TEST_F(OutlierDetectorTest, RepeatedEjectionsLastLongerUpToTheMaximum) {
  Window({20, 0, 0});
  std::vector<absl::Duration> durations;
  for (int round = 0; round < 5; ++round) {
    ASSERT_TRUE(eps_[0]->ejected()) << round;
    const absl::Time ejected_at = now_;
    while (eps_[0]->ejected()) {  // judged every 100 ms
      now_ += absl::Milliseconds(100);
      detector_.Evaluate(eps_, now_);
    }
    durations.push_back(now_ - ejected_at);
    ASSERT_TRUE(eps_[0]->on_probation());
    Feed(*eps_[0], 3, 3);  // fails again on its little traffic
    now_ += absl::Milliseconds(100);
    detector_.Evaluate(eps_, now_);
  }
  EXPECT_EQ(durations,
            (std::vector<absl::Duration>{absl::Seconds(1), absl::Seconds(2), absl::Seconds(4),
                                         absl::Seconds(5), absl::Seconds(5)}));
  EXPECT_EQ(detector_.stats().ejections, 6);
}

TEST_F(OutlierDetectorTest, ASlowEndpointIsEjectedWhenLatencyCounts) {
  OutlierDetectionOptions options = Options();
  options.latency_factor = 5;
  options.latency_floor = absl::Milliseconds(10);
  OutlierDetector detector(options);
  Feed(*eps_[0], 20, 0, absl::Milliseconds(200));
  Feed(*eps_[1], 20, 0, absl::Milliseconds(10));
  Feed(*eps_[2], 20, 0, absl::Milliseconds(12));
  detector.Evaluate(eps_, now_);
  EXPECT_TRUE(eps_[0]->ejected());
  EXPECT_FALSE(eps_[1]->ejected());
  // Below the floor, a factor alone is noise.
  auto fast = MakeEndpoints(3);
  Feed(*fast[0], 20, 0, absl::Milliseconds(5));
  Feed(*fast[1], 20, 0, absl::Microseconds(100));
  Feed(*fast[2], 20, 0, absl::Microseconds(100));
  detector.Evaluate(fast, now_);
  EXPECT_FALSE(fast[0]->ejected());
}

TEST_F(OutlierDetectorTest, RemovedEndpointsAreForgotten) {
  Window({20, 0, 0});
  eps_.erase(eps_.begin());
  now_ += absl::Seconds(1);
  detector_.Evaluate(eps_, now_);
  EXPECT_EQ(detector_.stats().ejected_now, 0);
}

}  // namespace
}  // namespace nprpc
