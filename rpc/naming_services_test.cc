#include "rpc/naming_services.h"

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace nprpc {
namespace {

TEST(CreateNamingService, AddressesAndListsAreStatic) {
  auto one = CreateNamingService("127.0.0.1:80");
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ((*one)->Nodes().size(), 1u);
  auto list = CreateNamingService("list://a:1,b:2 w=2");
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ((*list)->Nodes().size(), 2u);
}

TEST(CreateNamingService, UnknownSchemesAndBadTargetsAreErrors) {
  auto unknown = CreateNamingService("zookeeper://zk:2181/x");
  ASSERT_FALSE(unknown.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(unknown.status()));
  EXPECT_FALSE(CreateNamingService("dns://noport").ok());
  EXPECT_FALSE(CreateNamingService("file:///nonexistent/servers").ok());
  EXPECT_FALSE(CreateNamingService("").ok());
}

TEST(CreateNamingService, DnsTargetMakesADnsService) {
  auto dns = CreateNamingService("dns://localhost:80");
  ASSERT_TRUE(dns.ok()) << dns.status();
  EXPECT_NE(dynamic_cast<DnsNamingService*>(dns->get()), nullptr);
}

TEST(RegisterNamingScheme, ARegisteredSchemeGetsTheRestOfTheTarget) {
  std::string seen;
  ASSERT_TRUE(RegisterNamingScheme("test-scheme", [&](absl::string_view rest) {
                seen = std::string(rest);
                return absl::StatusOr<std::shared_ptr<NamingService>>(
                    std::make_shared<StaticNamingService>(
                        std::vector<ServerNode>{ServerNode{"10.0.0.1:80"}}));
              }).ok());
  auto naming = CreateNamingService("test-scheme://h1:2379,h2:2379/services/echo");
  ASSERT_TRUE(naming.ok()) << naming.status();
  EXPECT_EQ(seen, "h1:2379,h2:2379/services/echo");
  EXPECT_EQ((*naming)->Nodes().size(), 1u);
  EXPECT_TRUE(absl::IsAlreadyExists(RegisterNamingScheme("test-scheme", nullptr)));
  EXPECT_TRUE(absl::IsAlreadyExists(RegisterNamingScheme("dns", nullptr)));
}

}  // namespace
}  // namespace nprpc
