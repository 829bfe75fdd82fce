#include "rpc/tracing.h"

#include <cstdio>
#include <fstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace nprpc {
namespace {

class TracingTest : public ::testing::Test {
 protected:
  void SetUp() override { SpanStore::Default().Clear(); }
  void TearDown() override {
    ConfigureTracing(TracingOptions());
    SpanStore::Default().Clear();
  }
};

Span MakeSpan(int64_t trace, int64_t id) {
  Span span;
  span.trace_id = trace;
  span.span_id = id;
  span.method = "example.EchoService/Echo";
  span.start = absl::Now();
  return span;
}

TEST_F(TracingTest, RingKeepsTheNewestSpansUpToItsSize) {
  TracingOptions options;
  options.max_spans = 3;
  ConfigureTracing(options);
  for (int i = 1; i <= 5; ++i) SpanStore::Default().Add(MakeSpan(1, i));
  std::vector<Span> recent = SpanStore::Default().Recent(10);
  ASSERT_EQ(recent.size(), 3u);
  EXPECT_EQ(recent[0].span_id, 5);
  EXPECT_EQ(recent[2].span_id, 3);
  EXPECT_EQ(SpanStore::Default().recorded(), 5);
}

TEST_F(TracingTest, RecentFiltersByTrace) {
  SpanStore::Default().Add(MakeSpan(1, 1));
  SpanStore::Default().Add(MakeSpan(2, 2));
  SpanStore::Default().Add(MakeSpan(1, 3));
  std::vector<Span> recent = SpanStore::Default().Recent(10, 1);
  ASSERT_EQ(recent.size(), 2u);
  EXPECT_EQ(recent[0].span_id, 3);
  EXPECT_EQ(recent[1].span_id, 1);
}

TEST_F(TracingTest, EdgeSamplingStopsAtTheRatePerSecond) {
  TracingOptions options;
  options.max_sampled_per_second = 5;
  ConfigureTracing(options);
  // Within one second at most 5 (plus a few at a second's edge) are sampled.
  int sampled = 0;
  for (int i = 0; i < 1000; ++i) sampled += SampleNewTrace() ? 1 : 0;
  EXPECT_GE(sampled, 5);
  EXPECT_LE(sampled, 10);
  options.max_sampled_per_second = 0;
  ConfigureTracing(options);
  EXPECT_FALSE(SampleNewTrace());
}

TEST_F(TracingTest, ActiveSpanKeepsAnnotationsUntilItEnds) {
  ActiveSpan active(MakeSpan(7, 8));
  active.Annotate("cache miss");
  active.End(1008, "too late", 10, 0);
  active.Annotate("dropped");
  active.End(0, "", 0, 0);  // a second end is ignored
  std::vector<Span> recent = SpanStore::Default().Recent(10);
  ASSERT_EQ(recent.size(), 1u);
  EXPECT_EQ(recent[0].error_code, 1008);
  EXPECT_EQ(recent[0].request_bytes, 10u);
  ASSERT_EQ(recent[0].annotations.size(), 1u);
  EXPECT_EQ(recent[0].annotations[0].second, "cache miss");
}

TEST_F(TracingTest, SpansAreWrittenAsJsonLines) {
  const std::string path = ::testing::TempDir() + "/spans.jsonl";
  std::remove(path.c_str());
  TracingOptions options;
  options.json_lines_path = path;
  ConfigureTracing(options);
  Span span = MakeSpan(0x1234, 0x10);
  span.parent_span_id = 0x9;
  span.annotations.emplace_back(span.start, "quote \" and\nnewline");
  SpanStore::Default().Add(span);
  SpanStore::Default().Add(MakeSpan(0x1234, 0x11));
  std::ifstream in(path);
  std::string line1, line2, line3;
  ASSERT_TRUE(std::getline(in, line1));
  ASSERT_TRUE(std::getline(in, line2));
  EXPECT_FALSE(std::getline(in, line3));
  EXPECT_TRUE(absl::StrContains(line1, R"("trace_id":"00000000000000000000000000001234")"))
      << line1;
  EXPECT_TRUE(absl::StrContains(line1, R"("parent_span_id":"0000000000000009")")) << line1;
  EXPECT_TRUE(absl::StrContains(line1, R"("text":"quote \" and\nnewline")")) << line1;
  EXPECT_TRUE(absl::StrContains(line2, R"("span_id":"0000000000000011")")) << line2;
}

}  // namespace
}  // namespace nprpc
