#include "netpoll/internal/block_cache.h"

#include <new>
#include <utility>

#include "netpoll/logging.h"

namespace netpoll {
namespace link_buffer_internal {
namespace {

struct ExternalBlock : Block {
  absl::AnyInvocable<void()> deleter;
};

// Cached and heap blocks: the header and the bytes are one allocation.
Block* AllocateInline(uint32_t capacity, BlockKind kind, int size_class) {
  void* memory = ::operator new(sizeof(Block) + capacity);
  Block* block = new (memory) Block;
  block->capacity = capacity;
  block->kind = kind;
  block->size_class = static_cast<int8_t>(size_class);
  block->data = reinterpret_cast<char*>(block + 1);
  return block;
}

void DeallocateInline(Block* block) {
  block->~Block();
  ::operator delete(static_cast<void*>(block));
}

// One thread's free lists. Constant-initialized, so touching it costs no
// guard; the destructor (run at thread exit) frees what is left.
class ThreadCache {
 public:
  constexpr ThreadCache() = default;
  ThreadCache(const ThreadCache&) = delete;
  ThreadCache& operator=(const ThreadCache&) = delete;
  ~ThreadCache();

  Block* Pop(int size_class) {
    Block* block = heads_[size_class];
    if (block == nullptr) return nullptr;
    heads_[size_class] = block->next_free;
    --counts_[size_class];
    block->next_free = nullptr;
    return block;
  }

  // Returns false (and keeps nothing) when the class's list is full.
  bool Push(Block* block) {
    int c = block->size_class;
    if (counts_[c] >= kMaxCachedBlocks[c]) return false;
    block->next_free = heads_[c];
    heads_[c] = block;
    ++counts_[c];
    return true;
  }

  void Trim();

  std::array<uint32_t, kNumSizeClasses> counts() const { return counts_; }

 private:
  std::array<Block*, kNumSizeClasses> heads_{};
  std::array<uint32_t, kNumSizeClasses> counts_{};
};

thread_local ThreadCache tls_cache;
// Set once tls_cache is destroyed: blocks released later (by other
// thread_local or static destructors) bypass the cache.
thread_local bool tls_cache_gone = false;

void ThreadCache::Trim() {
  for (int c = 0; c < kNumSizeClasses; ++c) {
    while (Block* block = Pop(c)) DeallocateInline(block);
  }
}

ThreadCache::~ThreadCache() {
  Trim();
  tls_cache_gone = true;
}

}  // namespace

int SizeClassFor(size_t n) {
  for (int c = 0; c < kNumSizeClasses; ++c) {
    if (n <= kSizeClasses[c]) return c;
  }
  return -1;
}

Block* NewBlock(size_t min_capacity) {
  NP_CHECK(min_capacity > 0 && min_capacity <= kMaxBlockSize)
      << "block of " << min_capacity << " bytes";
  int c = SizeClassFor(min_capacity);
  if (c < 0) {
    return AllocateInline(static_cast<uint32_t>(min_capacity), BlockKind::kHeap, -1);
  }
  if (!tls_cache_gone) {
    if (Block* block = tls_cache.Pop(c)) {
      // The last Unref (acq_rel) ordered every earlier use before this point.
      block->refs.store(1, std::memory_order_relaxed);
      block->size.store(0, std::memory_order_relaxed);
      return block;
    }
  }
  return AllocateInline(kSizeClasses[c], BlockKind::kCached, c);
}

Block* NewExternalBlock(absl::string_view data, absl::AnyInvocable<void()> deleter) {
  NP_CHECK(data.size() <= kMaxBlockSize) << "external block of " << data.size() << " bytes";
  auto* block = new ExternalBlock;
  block->kind = BlockKind::kExternal;
  block->capacity = static_cast<uint32_t>(data.size());
  block->size.store(block->capacity, std::memory_order_relaxed);
  // Never written through: size == capacity leaves no spare room.
  block->data = const_cast<char*>(data.data());
  block->deleter = std::move(deleter);
  return block;
}

void FreeBlock(Block* block) {
  switch (block->kind) {
    case BlockKind::kExternal: {
      auto* external = static_cast<ExternalBlock*>(block);
      absl::AnyInvocable<void()> deleter = std::move(external->deleter);
      delete external;
      if (deleter) std::move(deleter)();
      return;
    }
    case BlockKind::kHeap:
      DeallocateInline(block);
      return;
    case BlockKind::kCached:
      if (tls_cache_gone || !tls_cache.Push(block)) DeallocateInline(block);
      return;
  }
}

std::array<uint32_t, kNumSizeClasses> ThreadCacheCounts() {
  if (tls_cache_gone) return {};
  return tls_cache.counts();
}

void TrimThreadCache() {
  if (!tls_cache_gone) tls_cache.Trim();
}

}  // namespace link_buffer_internal
}  // namespace netpoll
