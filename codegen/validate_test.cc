#include "codegen/validate.h"

#include "codegen/test_protos.h"
#include "gtest/gtest.h"

namespace nprpc {
namespace codegen {
namespace {

TEST(ValidateTest, UnaryIsSupported) {
  TestProtos protos;
  EXPECT_TRUE(CheckSupported(protos.File("u.proto", R"(
    syntax = "proto3"; message M {} service S { rpc A(M) returns (M); })"))
                  .ok());
}

TEST(ValidateTest, StreamingMethodsAreSupported) {
  TestProtos protos;
  EXPECT_TRUE(CheckSupported(protos.File("dir/chat.proto", R"(
    syntax = "proto3"; package chat; message M {}
    service Room {
      rpc Ok(M) returns (M);
      rpc Talk(stream M) returns (stream M);
      rpc Watch(M) returns (stream M);
      rpc Up(stream M) returns (M);
    })"))
                  .ok());
}

TEST(ValidateTest, GenericServicesCollide) {
  TestProtos protos;
  absl::Status s = CheckSupported(protos.File("g.proto", R"(
    syntax = "proto2"; option cc_generic_services = true;
    message M {} service S { rpc A(M) returns (M); })"));
  EXPECT_NE(s.message().find("cc_generic_services"), absl::string_view::npos);
}

}  // namespace
}  // namespace codegen
}  // namespace nprpc
