#include "tests/harness/etcd_cluster.h"

#include <stdlib.h>

#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace nprpc::testing {
namespace {

std::string TempDir() {
  std::string pattern = ::testing::TempDir() + "/etcdXXXXXX";
  char* dir = mkdtemp(pattern.data());
  return dir == nullptr ? ::testing::TempDir() : std::string(dir);
}

TEST(EtcdClusterTest, LocalMemberStoresWhatEtcdctlPuts) {
  if (!EtcdCluster::Available()) GTEST_SKIP() << "etcd-server is not installed";
  auto etcd = EtcdCluster::StartLocal(TempDir());
  ASSERT_TRUE(etcd.ok()) << etcd.status();
  ASSERT_TRUE((*etcd)->Etcdctl({"put", "/nprpc/test/a", "127.0.0.1:1"}).ok());
  absl::StatusOr<std::string> got = (*etcd)->Etcdctl({"get", "--prefix", "/nprpc/test/"});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(absl::StrContains(*got, "127.0.0.1:1")) << *got;

  // A restarted member keeps its store.
  (*etcd)->Stop(0);
  ASSERT_TRUE((*etcd)->Restart(0).ok());
  got = (*etcd)->Etcdctl({"get", "--prefix", "/nprpc/test/"});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(absl::StrContains(*got, "127.0.0.1:1")) << *got;
}

TEST(EtcdClusterTest, ThreeMembersKeepQuorumWhenOneStops) {
  if (!EtcdCluster::Available()) GTEST_SKIP() << "etcd-server is not installed";
  std::vector<EtcdMember> members(3);
  for (int i = 0; i < 3; ++i) {
    members[i].name = "e" + std::to_string(i + 1);
    members[i].ip = "127.0.0.1";
  }
  auto etcd = EtcdCluster::Start(members, TempDir());
  ASSERT_TRUE(etcd.ok()) << etcd.status();
  (*etcd)->Stop(0);
  EXPECT_FALSE((*etcd)->running(0));
  EXPECT_TRUE((*etcd)->Etcdctl({"put", "/k", "v"}, 1).ok());
}

}  // namespace
}  // namespace nprpc::testing
