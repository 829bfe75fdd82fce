#include "codegen/comments.h"

#include "codegen/test_protos.h"
#include "gtest/gtest.h"

namespace nprpc {
namespace codegen {
namespace {

TEST(CommentsTest, FormatsLines) {
  EXPECT_EQ(FormatComment(" One.\n Two.  \n\n", "  "), "  // One.\n  // Two.\n");
  EXPECT_EQ(FormatComment("block\n\n more\n", ""), "// block\n//\n// more\n");
  EXPECT_EQ(FormatComment(" ends in \\\n", ""), "// ends in \\.\n");
  EXPECT_EQ(FormatComment("", ""), "");
  EXPECT_EQ(FormatComment("\n * Block\n", ""), "// * Block\n");
}

TEST(CommentsTest, ServiceAndMethodComments) {
  TestProtos protos;
  const auto* file = protos.File("c.proto", R"(
    syntax = "proto3";
    message M {}
    // Greets people.
    // Politely.
    service Greeter {
      /* Says hello. */
      rpc Hello(M) returns (M);
      rpc Bare(M) returns (M);
    }
  )");
  const auto* service = file->service(0);
  EXPECT_EQ(LeadingComment(service, ""), "// Greets people.\n// Politely.\n");
  EXPECT_EQ(LeadingComment(service->method(0), "  "), "  // Says hello.\n");
  EXPECT_EQ(LeadingComment(service->method(1), "  "), "");
}

}  // namespace
}  // namespace codegen
}  // namespace nprpc
