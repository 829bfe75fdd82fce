#include "rpc/trace_context.h"

#include "gtest/gtest.h"

namespace nprpc {
namespace {

TEST(TraceparentTest, ParsesTheSpecExample) {
  auto t = ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(static_cast<uint64_t>(*t->trace_id_high), 0x4bf92f3577b34da6u);
  EXPECT_EQ(static_cast<uint64_t>(*t->trace_id), 0xa3ce929d0e0e4736u);
  EXPECT_EQ(static_cast<uint64_t>(*t->span_id), 0x00f067aa0ba902b7u);
  EXPECT_EQ(t->sampled, true);
}

TEST(TraceparentTest, FormatsWhatItParses) {
  const std::string value = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
  auto t = ParseTraceparent(value);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->sampled, false);
  EXPECT_EQ(FormatTraceparent(*t), value);
}

TEST(TraceparentTest, FormatsA64BitTraceWithZeroHighBits) {
  TraceContext t;
  t.trace_id = 1;
  t.span_id = 2;
  t.sampled = true;
  EXPECT_EQ(FormatTraceparent(t), "00-00000000000000000000000000000001-0000000000000002-01");
  t.span_id.reset();
  EXPECT_EQ(FormatTraceparent(t), "");
}

TEST(TraceparentTest, RejectsMalformedValues) {
  for (const char* bad : {
           "",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",        // no flags
           "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",     // upper case
           "00-00000000000000000000000000000000-00f067aa0ba902b7-01",     // zero trace
           "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",     // zero parent
           "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",     // forbidden version
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xx",  // v00 with extra
           "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
       }) {
    EXPECT_FALSE(ParseTraceparent(bad).has_value()) << bad;
  }
}

TEST(TraceparentTest, ReadsALaterVersionByItsFirstFields) {
  auto t = ParseTraceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->sampled, true);
}

TEST(TraceContextTest, OutgoingCallsCarryTheSamplingDecision) {
  TraceContext incoming;
  incoming.trace_id = 7;
  incoming.trace_id_high = 9;
  incoming.span_id = 8;
  incoming.sampled = false;
  TraceContext out = incoming.ForOutgoing({});
  EXPECT_EQ(out.trace_id, 7);
  EXPECT_EQ(out.trace_id_high, 9);
  EXPECT_EQ(out.parent_span_id, 8);
  EXPECT_EQ(out.sampled, false);
}

TEST(TraceContextTest, NewIdsArePositiveAndDiffer) {
  int64_t a = NewTraceId(), b = NewTraceId();
  EXPECT_GT(a, 0);
  EXPECT_GT(b, 0);
  EXPECT_NE(a, b);
}

}  // namespace
}  // namespace nprpc
