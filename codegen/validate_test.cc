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

TEST(ValidateTest, StreamingNamesFileServiceAndMethod) {
  TestProtos protos;
  const auto* file = protos.File("dir/chat.proto", R"(
    syntax = "proto3"; package chat; message M {}
    service Room { rpc Ok(M) returns (M); rpc Talk(stream M) returns (stream M); })");
  absl::Status s = CheckSupported(file);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(),
            "dir/chat.proto: service chat.Room, method Talk: bidirectional streaming methods "
            "are not supported by protoc-gen-nprpc yet (unary methods only)");
  const auto* server = protos.File("s.proto", R"(
    syntax = "proto3"; package s; message M {} service S { rpc Watch(M) returns (stream M); })");
  EXPECT_NE(CheckSupported(server).message().find("server streaming"), absl::string_view::npos);
  const auto* client = protos.File("c.proto", R"(
    syntax = "proto3"; package c; message M {} service S { rpc Up(stream M) returns (M); })");
  EXPECT_NE(CheckSupported(client).message().find("client streaming"), absl::string_view::npos);
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
