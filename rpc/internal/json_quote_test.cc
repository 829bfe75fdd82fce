#include "rpc/internal/json_quote.h"

#include "gtest/gtest.h"

namespace nprpc {
namespace {

TEST(JsonQuoteTest, EscapesControlsAndReplacesInvalidUtf8) {
  EXPECT_EQ(JsonQuote("a\x01"
                      "b"),
            "\"a\\u0001b\"");
  EXPECT_EQ(JsonQuote("\xc3\xa9"), "\"\xc3\xa9\"");                   // é stays
  EXPECT_EQ(JsonQuote("\xff"), "\"\\ufffd\"");                        // not UTF-8
  EXPECT_EQ(JsonQuote("\xc3"), "\"\\ufffd\"");                        // truncated
  EXPECT_EQ(JsonQuote("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\"");  // a surrogate
}

TEST(JsonQuoteTest, EscapesQuotesBackslashesAndLineBreaks) {
  EXPECT_EQ(JsonQuote("quote \" and\nnewline\\"), R"("quote \" and\nnewline\\")");
}

}  // namespace
}  // namespace nprpc
