#include "codegen/names.h"

#include "codegen/test_protos.h"
#include "gtest/gtest.h"

namespace nprpc {
namespace codegen {
namespace {

TEST(NamesTest, KeywordsAndReservedNamesGetAnUnderscore) {
  EXPECT_TRUE(IsCppKeyword("delete"));
  EXPECT_TRUE(IsCppKeyword("co_await"));
  EXPECT_FALSE(IsCppKeyword("Echo"));
  EXPECT_EQ(Escape("new", {}), "new_");
  EXPECT_EQ(Escape("Stub", {"Stub", "Stub_"}), "Stub__");
  EXPECT_EQ(Escape("Echo", {"Stub"}), "Echo");
}

TEST(NamesTest, FileNames) {
  EXPECT_EQ(StripProto("a/b/foo.proto"), "a/b/foo");
  EXPECT_EQ(HeaderName("a/b/foo.proto"), "a/b/foo.nprpc.h");
  EXPECT_EQ(SourceName("foo.proto"), "foo.nprpc.cc");
  EXPECT_EQ(MockHeaderName("a/foo.proto"), "a/foo_mock.nprpc.h");
  EXPECT_EQ(PbHeaderName("a/foo.proto"), "a/foo.pb.h");
  EXPECT_EQ(HeaderGuard("a/b-c/foo.proto", "NPRPC_H"), "NPRPC_GENERATED_A_B_C_FOO_NPRPC_H_");
}

TEST(NamesTest, NamespacesFollowProtoc) {
  TestProtos protos;
  EXPECT_EQ(QualifiedNamespace(protos.File("a.proto", "syntax = \"proto3\";")), "");
  const auto* deep = protos.File("b.proto", "syntax = \"proto3\"; package a.b2.c;");
  EXPECT_EQ(QualifiedNamespace(deep), "::a::b2::c");
  EXPECT_EQ(NamespaceParts(deep), (std::vector<std::string>{"a", "b2", "c"}));
}

TEST(NamesTest, DescriptorTableNameFollowsProtoc) {
  TestProtos protos;
  EXPECT_EQ(DescriptorTableName(protos.File("proto/echo-v_1.proto", "syntax = \"proto3\";")),
            "descriptor_table_proto_2fecho_2dv_5f1_2eproto");
}

TEST(NamesTest, MessagesAreSpelledAsProtocSpellsThem) {
  TestProtos protos;
  const auto* file = protos.File("m.proto", R"(
    syntax = "proto3"; package p.q;
    message Outer { message Inner {} }
  )");
  EXPECT_EQ(QualifiedMessageName(file->FindMessageTypeByName("Outer")->nested_type(0)),
            "::p::q::Outer_Inner");
}

TEST(NamesTest, ServiceAndMethodCollisions) {
  TestProtos protos;
  const auto* file = protos.File("s.proto", R"(
    syntax = "proto3";
    message M {}
    service Stub { rpc Service(M) returns (M); rpc delete(M) returns (M);
                   rpc Echo(M) returns (M); rpc EchoAsync(M) returns (M);
                   rpc NewStub(M) returns (M); }
    service new { rpc new(M) returns (M); }
  )");
  const auto* stub = file->FindServiceByName("Stub");
  EXPECT_EQ(ServiceClassName(stub), "Stub_");
  EXPECT_EQ(MethodName(stub->FindMethodByName("Service")), "Service_");
  EXPECT_EQ(MethodName(stub->FindMethodByName("delete")), "delete_");
  EXPECT_EQ(AsyncMethodName(stub->FindMethodByName("delete")), "deleteAsync");
  EXPECT_EQ(MethodName(stub->FindMethodByName("NewStub")), "NewStub_");
  // Echo's awaitable form would be named like the method EchoAsync.
  EXPECT_EQ(AsyncMethodName(stub->FindMethodByName("Echo")), "EchoAsync_");
  EXPECT_EQ(AsyncMethodName(stub->FindMethodByName("EchoAsync")), "EchoAsyncAsync");
  EXPECT_EQ(ServiceClassName(file->FindServiceByName("new")), "new_");
  EXPECT_EQ(MockStubName(stub), "MockStubStub");
}

}  // namespace
}  // namespace codegen
}  // namespace nprpc
