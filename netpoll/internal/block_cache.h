// Block and the size-class block cache behind LinkBuffer. Users of the
// library never touch these; LinkBuffer is the public face.
//
// A Block is a reference-counted chunk of bytes:
//
//   +--------------+-------------------------------+-----------------------+
//   | Block header | claimed [0, size)             | spare [size, capacity)|
//   +--------------+-------------------------------+-----------------------+
//                  ^ data (right after the header, or user memory)
//
// Three kinds:
//   - cached:   capacity is one of kSizeClasses; header and bytes are one
//               allocation, recycled through a per-thread free list;
//   - heap:     capacity is exactly what was asked for (above the largest
//               class); one allocation, freed when the last reference goes;
//   - external: data is user memory; the deleter runs when the last reference
//               goes. size == capacity, so nobody ever writes into it.
//
// Free lists are per thread and bounded: NewBlock() pops from the calling
// thread's list, and the thread dropping the last reference pushes the block
// onto *its own* list (or frees it when that list is full), so a block
// allocated on one thread and released on another migrates to the releasing
// thread's cache. No locks, no cross-thread queues. A thread's cache is freed
// when the thread exits; blocks released after that go straight to the heap.
//
// `size` is the write watermark. Bytes below it are claimed by some
// LinkBuffer reference (or a pending Malloc); the spare above it may be claimed
// only by the single buffer whose last reference ends exactly at `size`.
// Buffers on other threads read `size` concurrently (to learn they cannot
// append), hence the atomic; claims and rollbacks use release stores and the
// check uses an acquire load, so a buffer that inherits the spare after a
// rollback also sees the bytes written there before.
//
// Thread safety: NewBlock/NewExternalBlock/Ref/Unref are safe from any thread;
// a block may be referenced from many threads at once.
#ifndef NETPOLL_INTERNAL_BLOCK_CACHE_H_
#define NETPOLL_INTERNAL_BLOCK_CACHE_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "absl/functional/any_invocable.h"
#include "absl/strings/string_view.h"

namespace netpoll {
namespace link_buffer_internal {

// Capacities of cached blocks. Requests above the last class get an
// exact-size heap block.
inline constexpr std::array<uint32_t, 3> kSizeClasses = {4 * 1024, 16 * 1024, 64 * 1024};
inline constexpr int kNumSizeClasses = static_cast<int>(kSizeClasses.size());
inline constexpr uint32_t kMaxClassSize = kSizeClasses.back();

// At most this many free blocks per class per thread (6 MiB in total, held
// only after a thread used that many at once): a loop serving 1,000
// connections reads each turn into up to 1,000 4 KiB blocks, and a smaller
// cache would hand most of them back to malloc at the end of every turn.
inline constexpr std::array<uint32_t, 3> kMaxCachedBlocks = {1024, 64, 16};

// Largest block (and largest external memory) a Ref's uint32_t offsets can
// address.
inline constexpr size_t kMaxBlockSize = UINT32_MAX;

enum class BlockKind : uint8_t { kCached, kHeap, kExternal };

struct Block {
  std::atomic<int32_t> refs{1};
  std::atomic<uint32_t> size{0};  // write watermark, see the file comment
  uint32_t capacity = 0;
  BlockKind kind = BlockKind::kCached;
  int8_t size_class = -1;  // index into kSizeClasses for kCached, else -1
  char* data = nullptr;
  Block* next_free = nullptr;  // link in a thread's free list
};

// Returns a block with capacity >= min_capacity, size 0 and one reference.
// min_capacity must be in [1, kMaxBlockSize].
Block* NewBlock(size_t min_capacity);

// Returns a block referencing `data` (not copied), size == capacity ==
// data.size(), one reference. `deleter` runs once when the last reference is
// dropped, on that thread. data.size() must be <= kMaxBlockSize.
Block* NewExternalBlock(absl::string_view data, absl::AnyInvocable<void()> deleter);

inline void RefBlock(Block* block) { block->refs.fetch_add(1, std::memory_order_relaxed); }

// Recycles, frees or runs the deleter of a block whose last reference went.
void FreeBlock(Block* block);

inline void UnrefBlock(Block* block) {
  if (block->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) FreeBlock(block);
}

// The size class holding n bytes, or -1 when n is above kMaxClassSize.
int SizeClassFor(size_t n);

// Free blocks in the calling thread's cache, per class (for tests and stats).
std::array<uint32_t, kNumSizeClasses> ThreadCacheCounts();

// Frees every block in the calling thread's cache.
void TrimThreadCache();

}  // namespace link_buffer_internal
}  // namespace netpoll

#endif  // NETPOLL_INTERNAL_BLOCK_CACHE_H_
