#include "rpc/server_options.h"

#include "gtest/gtest.h"

namespace nprpc {
namespace {

TEST(ServerOptionsTest, DefaultsAskForTheMachinesThreadCounts) {
  ServerOptions options;
  EXPECT_EQ(options.num_io_loops, 0);
  EXPECT_EQ(options.num_worker_threads, 0);
}

TEST(ServerOptionsTest, OneIoLoopPerTwoCoresAndAtLeastOne) {
  EXPECT_EQ(DefaultIoLoops(1), 1);
  EXPECT_EQ(DefaultIoLoops(2), 1);
  EXPECT_EQ(DefaultIoLoops(3), 1);
  EXPECT_EQ(DefaultIoLoops(16), 8);
  EXPECT_EQ(DefaultIoLoops(64), 32);
}

TEST(ServerOptionsTest, OneWorkerPerCoreAndAtLeastFour) {
  EXPECT_EQ(DefaultWorkerThreads(1), 4);
  EXPECT_EQ(DefaultWorkerThreads(4), 4);
  EXPECT_EQ(DefaultWorkerThreads(16), 16);
}

}  // namespace
}  // namespace nprpc
