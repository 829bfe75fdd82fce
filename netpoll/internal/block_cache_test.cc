#include "netpoll/internal/block_cache.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace netpoll {
namespace link_buffer_internal {
namespace {

class BlockCacheTest : public ::testing::Test {
 protected:
  void SetUp() override { TrimThreadCache(); }
  void TearDown() override { TrimThreadCache(); }
};

TEST_F(BlockCacheTest, RequestsRoundUpToSizeClasses) {
  struct Case {
    size_t request;
    uint32_t capacity;
  };
  for (Case c : {Case{1, 4096}, Case{4096, 4096}, Case{4097, 16384}, Case{16385, 65536},
                 Case{65536, 65536}}) {
    Block* block = NewBlock(c.request);
    EXPECT_EQ(block->capacity, c.capacity) << c.request;
    EXPECT_EQ(block->kind, BlockKind::kCached);
    EXPECT_EQ(block->size.load(), 0u);
    EXPECT_EQ(block->refs.load(), 1);
    UnrefBlock(block);
  }
}

TEST_F(BlockCacheTest, FreedBlockIsReusedWithoutMalloc) {
  Block* first = NewBlock(100);
  first->size.store(40);
  RefBlock(first);
  UnrefBlock(first);
  EXPECT_EQ(ThreadCacheCounts()[0], 0u) << "still referenced";
  UnrefBlock(first);
  EXPECT_EQ(ThreadCacheCounts()[0], 1u);

  Block* second = NewBlock(4000);
  EXPECT_EQ(second, first);
  EXPECT_EQ(second->size.load(), 0u) << "recycled blocks start empty";
  EXPECT_EQ(second->refs.load(), 1);
  EXPECT_EQ(ThreadCacheCounts()[0], 0u);
  UnrefBlock(second);
}

TEST_F(BlockCacheTest, LargeRequestGetsExactSizeHeapBlockThatIsNotCached) {
  Block* block = NewBlock(100000);
  EXPECT_EQ(block->capacity, 100000u);
  EXPECT_EQ(block->kind, BlockKind::kHeap);
  block->data[99999] = 'x';  // the whole capacity is usable
  UnrefBlock(block);
  EXPECT_EQ(ThreadCacheCounts(), (std::array<uint32_t, kNumSizeClasses>{}));
}

TEST_F(BlockCacheTest, FreeListIsBoundedPerClass) {
  std::vector<Block*> blocks;
  for (int i = 0; i < 200; ++i) blocks.push_back(NewBlock(kSizeClasses[1]));
  for (Block* block : blocks) UnrefBlock(block);
  EXPECT_EQ(ThreadCacheCounts()[1], kMaxCachedBlocks[1]);
  EXPECT_EQ(ThreadCacheCounts()[0], 0u);
}

TEST_F(BlockCacheTest, BlockFreedOnAnotherThreadGoesToThatThreadsCache) {
  Block* block = NewBlock(kSizeClasses[2]);
  uint32_t before = 0;
  uint32_t after = 0;
  std::thread other([&] {
    before = ThreadCacheCounts()[2];
    UnrefBlock(block);
    after = ThreadCacheCounts()[2];
  });  // the thread's cache is freed when it exits
  other.join();
  EXPECT_EQ(before, 0u);
  EXPECT_EQ(after, 1u);
  EXPECT_EQ(ThreadCacheCounts()[2], 0u);
}

TEST_F(BlockCacheTest, ExternalBlockRunsDeleterOnceWhenLastReferenceDrops) {
  static const char kData[] = "user memory";
  int deleted = 0;
  Block* block = NewExternalBlock(kData, [&deleted] { ++deleted; });
  EXPECT_EQ(block->kind, BlockKind::kExternal);
  EXPECT_EQ(block->data, kData) << "referenced, not copied";
  EXPECT_EQ(block->capacity, sizeof(kData) - 1);
  EXPECT_EQ(block->size.load(), block->capacity) << "no spare room to write into";
  RefBlock(block);
  UnrefBlock(block);
  EXPECT_EQ(deleted, 0);
  UnrefBlock(block);
  EXPECT_EQ(deleted, 1);
}

TEST_F(BlockCacheTest, ExternalDeleterRunsOnTheThreadDroppingTheLastReference) {
  std::thread::id deleter_thread;
  Block* block = NewExternalBlock("x", [&] { deleter_thread = std::this_thread::get_id(); });
  std::thread::id other_id;
  std::thread other([&] {
    other_id = std::this_thread::get_id();
    UnrefBlock(block);
  });
  other.join();
  EXPECT_EQ(deleter_thread, other_id);
}

TEST_F(BlockCacheTest, ConcurrentRefAndUnrefFreeExactlyOnce) {
  std::atomic<int> deleted{0};
  Block* block = NewExternalBlock("shared", [&] { deleted.fetch_add(1); });
  constexpr int kThreads = 4;
  constexpr int kRounds = 10000;
  for (int t = 0; t < kThreads; ++t) RefBlock(block);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([block] {
      for (int i = 0; i < kRounds; ++i) {
        RefBlock(block);
        UnrefBlock(block);
      }
      UnrefBlock(block);
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(deleted.load(), 0);
  UnrefBlock(block);
  EXPECT_EQ(deleted.load(), 1);
}

}  // namespace
}  // namespace link_buffer_internal
}  // namespace netpoll
