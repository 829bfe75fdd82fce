#include "rpc/naming_service.h"

#include "gtest/gtest.h"

namespace nprpc {
namespace {

TEST(ParseServerList, AcceptsOneAddress) {
  auto nodes = ParseServerList("127.0.0.1:8000");
  ASSERT_TRUE(nodes.ok());
  ASSERT_EQ(nodes->size(), 1u);
  EXPECT_EQ((*nodes)[0].address, "127.0.0.1:8000");
  EXPECT_EQ((*nodes)[0].weight, 1);
}

TEST(ParseServerList, AcceptsAListWithWeights) {
  auto nodes = ParseServerList("list://a:1 w=3, b:2,unix:/tmp/x.sock w=2");
  ASSERT_TRUE(nodes.ok()) << nodes.status();
  ASSERT_EQ(nodes->size(), 3u);
  EXPECT_EQ((*nodes)[0], (ServerNode{"a:1", 3}));
  EXPECT_EQ((*nodes)[1], (ServerNode{"b:2", 1}));
  EXPECT_EQ((*nodes)[2], (ServerNode{"unix:/tmp/x.sock", 2}));
}

TEST(ParseServerList, RejectsMissingPortsBadWeightsAndEmptyLists) {
  EXPECT_FALSE(ParseServerList("localhost").ok());
  EXPECT_FALSE(ParseServerList("list://a:1 w=0").ok());
  EXPECT_FALSE(ParseServerList("list://a:1 x=2").ok());
  EXPECT_FALSE(ParseServerList("list://").ok());
  EXPECT_FALSE(ParseServerList("a:1,b:2").ok());  // a list needs list://
}

TEST(StaticNamingService, WatchersSeeTheListNowAndEveryUpdate) {
  StaticNamingService naming({{"a:1", 1}});
  std::vector<std::vector<ServerNode>> seen;
  naming.Watch([&](const std::vector<ServerNode>& nodes) { seen.push_back(nodes); });
  naming.Update({{"a:1", 1}, {"b:2", 1}});
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].size(), 1u);
  EXPECT_EQ(seen[1].size(), 2u);
  EXPECT_EQ(naming.Nodes().size(), 2u);
}

}  // namespace
}  // namespace nprpc
