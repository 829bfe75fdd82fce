#include "netpoll/link_buffer.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <deque>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "netpoll/logging.h"
#include "netpoll/mutex.h"

namespace netpoll {
namespace {

// Deterministic, non-repeating-looking bytes.
std::string Pattern(size_t n, uint32_t seed = 1) {
  std::string out(n, '\0');
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<char>('a' + (seed * 31 + i * 7) % 26);
  return out;
}

std::vector<absl::string_view> Chunks(const LinkBuffer& buffer) {
  std::vector<absl::string_view> chunks;
  buffer.ForEachChunk([&](absl::string_view chunk) { chunks.push_back(chunk); });
  return chunks;
}

// A buffer of several blocks: each part is written into its own buffer (so its
// own block) and appended.
LinkBuffer MultiBlock(const std::vector<std::string>& parts) {
  LinkBuffer out;
  for (const std::string& part : parts) {
    LinkBuffer piece;
    piece.WriteString(part);
    out.Append(std::move(piece));
  }
  return out;
}

// Heap memory handed to WriteBinary() with a deleter that counts.
struct External {
  explicit External(std::string bytes) : data(std::move(bytes)) {}
  std::string data;
};

absl::AnyInvocable<void()> CountingDeleter(std::unique_ptr<External> owned, int* deleted) {
  return [owned = std::move(owned), deleted]() mutable {
    owned.reset();
    ++*deleted;
  };
}

// ------------------------------------------------------------------- Reader

TEST(LinkBuffer, NewBufferIsEmpty) {
  LinkBuffer buffer;
  EXPECT_TRUE(buffer.empty());
  EXPECT_EQ(buffer.Len(), 0u);
  EXPECT_EQ(buffer.MallocLen(), 0u);
  EXPECT_EQ(buffer.ToString(), "");
  EXPECT_TRUE(Chunks(buffer).empty());
}

TEST(LinkBuffer, BlockBytesCountsWholeBlocksNotPayload) {
  LinkBuffer buffer;
  buffer.WriteString(std::string(37, 'a'));
  EXPECT_EQ(buffer.BlockBytes(), 4096u);  // 37 bytes hold a whole 4 KiB block
  buffer.WriteString(std::string(37, 'b'));
  EXPECT_EQ(buffer.BlockBytes(), 4096u);  // the second shares it

  // 100 small buffers appended: each brings its own block.
  LinkBuffer answers;
  for (int i = 0; i < 100; ++i) {
    LinkBuffer one;
    one.WriteString(std::string(37, 'c'));
    answers.Append(std::move(one));
  }
  EXPECT_EQ(answers.Len(), 3700u);
  EXPECT_EQ(answers.BlockBytes(), 100u * 4096u);
  ASSERT_TRUE(answers.Skip(37 * 60).ok());
  EXPECT_EQ(answers.BlockBytes(), 40u * 4096u);
  answers.Clear();
  EXPECT_EQ(answers.BlockBytes(), 0u);
}

TEST(LinkBuffer, BlockBytesFollowsSlicesOfOneBlock) {
  LinkBuffer buffer;
  buffer.WriteString(std::string(300, 'x'));
  absl::StatusOr<LinkBuffer> first = buffer.Slice(100);
  ASSERT_TRUE(first.ok());
  // Both reference the block: each counts it.
  EXPECT_EQ(first->BlockBytes(), 4096u);
  EXPECT_EQ(buffer.BlockBytes(), 4096u);
  // A buffer holding two non-adjacent pieces of one block around another
  // block's piece counts the block once per run.
  LinkBuffer mixed;
  mixed.Append(std::move(*first));
  LinkBuffer other;
  other.WriteString("y");
  mixed.Append(std::move(other));
  absl::StatusOr<LinkBuffer> second = buffer.Slice(100);
  ASSERT_TRUE(second.ok());
  mixed.Append(std::move(*second));
  EXPECT_EQ(mixed.BlockBytes(), 3u * 4096u);
  ASSERT_TRUE(mixed.Skip(101).ok());
  EXPECT_EQ(mixed.BlockBytes(), 4096u);
  LinkBuffer moved(std::move(mixed));
  EXPECT_EQ(moved.BlockBytes(), 4096u);
  EXPECT_EQ(mixed.BlockBytes(), 0u);  // NOLINT(bugprone-use-after-move): moved-from is empty
  ASSERT_TRUE(moved.Skip(100).ok());
  EXPECT_EQ(moved.BlockBytes(), 0u);
}

TEST(LinkBuffer, WriteStringThenReadStringRoundTrips) {
  LinkBuffer buffer;
  buffer.WriteString("hello ");
  buffer.WriteString("world");
  EXPECT_EQ(buffer.Len(), 11u);
  EXPECT_EQ(Chunks(buffer).size(), 1u) << "small writes share the tail block";
  EXPECT_EQ(*buffer.ReadString(6), "hello ");
  EXPECT_EQ(*buffer.ReadString(5), "world");
  EXPECT_TRUE(buffer.empty());
}

TEST(LinkBuffer, LargeCopiedWriteSpansSeveralBlocks) {
  LinkBuffer buffer;
  std::string data = Pattern(200 * 1024);
  buffer.WriteString(data);
  EXPECT_GT(Chunks(buffer).size(), 1u);
  EXPECT_EQ(buffer.ToString(), data);
}

TEST(LinkBuffer, NextWithinOneBlockIsZeroCopy) {
  LinkBuffer buffer;
  buffer.WriteString("abcdef");
  const char* block_bytes = Chunks(buffer)[0].data();
  absl::StatusOr<absl::string_view> view = buffer.Next(4);
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(*view, "abcd");
  EXPECT_EQ(view->data(), block_bytes);
  EXPECT_EQ(buffer.ToString(), "ef");
}

TEST(LinkBuffer, NextAcrossBlocksCopiesOnce) {
  LinkBuffer buffer = MultiBlock({"abc", "defg", "hi"});
  ASSERT_EQ(Chunks(buffer).size(), 3u);
  absl::StatusOr<absl::string_view> view = buffer.Next(8);
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(*view, "abcdefgh");
  EXPECT_EQ(buffer.ToString(), "i");
}

TEST(LinkBuffer, NextZeroBytesIsEmpty) {
  LinkBuffer buffer;
  EXPECT_EQ(*buffer.Next(0), "");
  buffer.WriteString("x");
  EXPECT_EQ(*buffer.Next(0), "");
  EXPECT_EQ(buffer.Len(), 1u);
}

TEST(LinkBuffer, NextViewsStayValidUntilRelease) {
  int deleted = 0;
  std::string big = Pattern(LinkBuffer::kCopyThreshold);
  auto owned = std::make_unique<External>(big);
  const char* memory = owned->data.data();

  LinkBuffer buffer = MultiBlock({"first-", "second-"});
  buffer.WriteBinary(absl::string_view(memory, big.size()),
                     CountingDeleter(std::move(owned), &deleted));
  absl::string_view a = *buffer.Next(3);  // zero-copy
  absl::string_view b = *buffer.Next(6);  // across blocks: scratch
  EXPECT_EQ(*buffer.Next(4), "ond-");
  absl::string_view c = *buffer.Next(100);      // within the external block
  ASSERT_TRUE(buffer.Skip(buffer.Len()).ok());  // consume the rest
  buffer.WriteString(Pattern(10000));           // churn fresh blocks
  ASSERT_TRUE(buffer.Skip(buffer.Len()).ok());

  EXPECT_EQ(a, "fir");
  EXPECT_EQ(b, "st-sec");
  EXPECT_EQ(c, big.substr(0, 100));
  EXPECT_EQ(c.data(), memory);
  EXPECT_EQ(deleted, 0) << "consumed blocks are kept until Release()";
  buffer.Release();
  EXPECT_EQ(deleted, 1);
}

TEST(LinkBuffer, ConsumingWithoutViewsFreesBlocksAtOnce) {
  int deleted = 0;
  auto owned = std::make_unique<External>(Pattern(8192));
  absl::string_view data = owned->data;
  LinkBuffer buffer;
  buffer.WriteBinary(data, CountingDeleter(std::move(owned), &deleted));
  ASSERT_TRUE(buffer.Skip(8192).ok());
  EXPECT_EQ(deleted, 1);
}

TEST(LinkBuffer, PeekViewSurvivesItsBytesBeingSlicedAwayUntilRelease) {
  int deleted = 0;
  auto owned = std::make_unique<External>(Pattern(5000));
  absl::string_view data = owned->data;
  LinkBuffer buffer;
  buffer.WriteBinary(data, CountingDeleter(std::move(owned), &deleted));
  absl::string_view view = *buffer.Peek(10);
  { LinkBuffer slice = *buffer.Slice(5000); }
  EXPECT_EQ(deleted, 0);
  EXPECT_EQ(view, data.substr(0, 10));
  buffer.Release();
  EXPECT_EQ(deleted, 1);
}

TEST(LinkBuffer, PeekDoesNotConsume) {
  LinkBuffer buffer = MultiBlock({"ab", "cd"});
  EXPECT_EQ(*buffer.Peek(1), "a");
  EXPECT_EQ(*buffer.Peek(3), "abc");
  EXPECT_EQ(buffer.Len(), 4u);
  EXPECT_EQ(buffer.ToString(), "abcd");
}

TEST(LinkBuffer, PeekCopyCopiesWithoutConsuming) {
  LinkBuffer buffer = MultiBlock({"ab", "cd"});
  char out[4] = {};
  EXPECT_TRUE(buffer.PeekCopy(3, out));
  EXPECT_EQ(absl::string_view(out, 3), "abc");
  EXPECT_EQ(buffer.Len(), 4u);
  char untouched[8] = "xxxxxxx";
  EXPECT_FALSE(buffer.PeekCopy(5, untouched));
  EXPECT_EQ(absl::string_view(untouched), "xxxxxxx");
}

TEST(LinkBuffer, SkipConsumesAcrossBlocks) {
  LinkBuffer buffer = MultiBlock({"ab", "cd", "ef"});
  EXPECT_TRUE(buffer.Skip(3).ok());
  EXPECT_EQ(buffer.ToString(), "def");
  EXPECT_TRUE(buffer.Skip(0).ok());
  EXPECT_EQ(buffer.Len(), 3u);
}

TEST(LinkBuffer, ReadingPastTheEndIsOutOfRangeAndConsumesNothing) {
  LinkBuffer buffer;
  buffer.WriteString("abc");
  EXPECT_EQ(buffer.Next(4).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(buffer.Peek(4).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(buffer.Skip(4).code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(buffer.ReadString(4).status().code(), absl::StatusCode::kOutOfRange);
  char out[4];
  EXPECT_EQ(buffer.ReadBinary(absl::MakeSpan(out, 4)).code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(buffer.Slice(4).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(buffer.ToString(), "abc");
}

TEST(LinkBuffer, UntilReturnsThroughTheDelimiterAcrossBlocks) {
  LinkBuffer buffer = MultiBlock({"GET / HT", "TP/1.1\r", "\nHost: x\r\n"});
  EXPECT_EQ(*buffer.Until('\n'), "GET / HTTP/1.1\r\n");
  EXPECT_EQ(*buffer.Until('\n'), "Host: x\r\n");
  EXPECT_TRUE(buffer.empty());
}

TEST(LinkBuffer, UntilWithoutDelimiterIsNotFoundAndConsumesNothing) {
  LinkBuffer buffer = MultiBlock({"abc", "def"});
  EXPECT_EQ(buffer.Until('\n').status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(buffer.ToString(), "abcdef");
}

TEST(LinkBuffer, ReadBinaryCopiesAndConsumes) {
  LinkBuffer buffer = MultiBlock({"ab", "cdef"});
  char out[3];
  ASSERT_TRUE(buffer.ReadBinary(absl::MakeSpan(out)).ok());
  EXPECT_EQ(absl::string_view(out, 3), "abc");
  EXPECT_EQ(buffer.ToString(), "def");
}

TEST(LinkBuffer, SliceSharesBlocksWithoutCopy) {
  LinkBuffer buffer;
  buffer.WriteString("header:payload");
  const char* bytes = Chunks(buffer)[0].data();
  LinkBuffer slice = *buffer.Slice(7);
  EXPECT_EQ(slice.ToString(), "header:");
  EXPECT_EQ(buffer.ToString(), "payload");
  EXPECT_EQ(Chunks(slice)[0].data(), bytes);
  EXPECT_EQ(Chunks(buffer)[0].data(), bytes + 7);
}

TEST(LinkBuffer, SliceOutlivesItsParent) {
  LinkBuffer slice;
  {
    LinkBuffer parent = MultiBlock({"abc", "def", "ghi"});
    slice = *parent.Slice(5);
    EXPECT_EQ(parent.ToString(), "fghi");
  }
  EXPECT_EQ(slice.ToString(), "abcde");
  EXPECT_EQ(*slice.Next(4), "abcd");
}

TEST(LinkBuffer, SliceAndParentAppendWithoutOverwritingEachOther) {
  LinkBuffer parent;
  parent.WriteString("abc");
  LinkBuffer head = *parent.Slice(1);  // shares the tail block
  head.WriteString("XY");
  parent.WriteString("de");
  EXPECT_EQ(head.ToString(), "aXY");
  EXPECT_EQ(parent.ToString(), "bcde");

  LinkBuffer all = *parent.Slice(parent.Len());  // takes the tail reference
  all.WriteString("f");
  parent.WriteString("g");
  EXPECT_EQ(all.ToString(), "bcdef");
  EXPECT_EQ(parent.ToString(), "g");
  EXPECT_EQ(head.ToString(), "aXY");
}

TEST(LinkBuffer, AppendMovesReferencesWithoutCopy) {
  LinkBuffer a;
  a.WriteString("front-");
  LinkBuffer b = MultiBlock({"mid", "dle"});
  std::vector<absl::string_view> b_chunks = Chunks(b);
  a.Append(std::move(b));
  EXPECT_TRUE(b.empty());  // NOLINT(bugprone-use-after-move): documented state
  EXPECT_EQ(a.ToString(), "front-middle");
  std::vector<absl::string_view> a_chunks = Chunks(a);
  ASSERT_EQ(a_chunks.size(), 3u);
  EXPECT_EQ(a_chunks[1].data(), b_chunks[0].data());
  EXPECT_EQ(a_chunks[2].data(), b_chunks[1].data());
}

TEST(LinkBuffer, AppendingASliceBackMergesContiguousReferences) {
  LinkBuffer buffer;
  buffer.WriteString("abcdef");
  LinkBuffer head = *buffer.Slice(3);
  head.Append(std::move(buffer));
  EXPECT_EQ(head.ToString(), "abcdef");
  EXPECT_EQ(Chunks(head).size(), 1u);
}

TEST(LinkBuffer, AppendToItselfChangesNothing) {
  LinkBuffer buffer;
  buffer.WriteString("abc");
  // NOLINTBEGIN(bugprone-use-after-move): appending a buffer to itself is the case under test.
  buffer.Append(std::move(buffer));
  EXPECT_EQ(buffer.ToString(), "abc");
  // NOLINTEND(bugprone-use-after-move)
}

TEST(LinkBuffer, LargeWriteBinaryIsReferencedNotCopied) {
  int deleted = 0;
  auto owned = std::make_unique<External>(Pattern(LinkBuffer::kCopyThreshold + 100));
  absl::string_view data = owned->data;
  LinkBuffer buffer;
  buffer.WriteString("hdr");
  buffer.WriteBinary(data, CountingDeleter(std::move(owned), &deleted));
  std::vector<absl::string_view> chunks = Chunks(buffer);
  ASSERT_EQ(chunks.size(), 2u);
  EXPECT_EQ(chunks[1].data(), data.data());
  EXPECT_EQ(buffer.Peek(buffer.Len())->substr(3), data);
  EXPECT_EQ(deleted, 0);
}

TEST(LinkBuffer, ExternalDeleterRunsOnceWhenTheLastSliceDies) {
  int deleted = 0;
  auto owned = std::make_unique<External>(Pattern(3 * LinkBuffer::kCopyThreshold));
  absl::string_view data = owned->data;
  auto buffer = std::make_unique<LinkBuffer>();
  buffer->WriteBinary(data, CountingDeleter(std::move(owned), &deleted));
  LinkBuffer s1 = *buffer->Slice(100);
  LinkBuffer s2 = *buffer->Slice(5000);
  EXPECT_EQ(Chunks(s2)[0].data(), data.data() + 100);
  buffer.reset();
  EXPECT_EQ(deleted, 0);
  s1.Clear();
  EXPECT_EQ(deleted, 0);
  EXPECT_EQ(s2.ToString(), data.substr(100, 5000));
  s2 = LinkBuffer();
  EXPECT_EQ(deleted, 1);
}

TEST(LinkBuffer, SmallWriteBinaryCopiesAndRunsDeleterImmediately) {
  int deleted = 0;
  auto owned = std::make_unique<External>(Pattern(LinkBuffer::kCopyThreshold - 1));
  std::string expected = owned->data;
  absl::string_view data = owned->data;
  LinkBuffer buffer;
  buffer.WriteBinary(data, CountingDeleter(std::move(owned), &deleted));
  EXPECT_EQ(deleted, 1);
  EXPECT_EQ(buffer.ToString(), expected);
  EXPECT_NE(Chunks(buffer)[0].data(), data.data());
}

TEST(LinkBuffer, WriteBinaryWithoutDeleterCopies) {
  std::string data = Pattern(2 * LinkBuffer::kCopyThreshold);
  LinkBuffer buffer;
  buffer.WriteBinary(data, nullptr);
  buffer.WriteBinary(data);
  for (absl::string_view chunk : Chunks(buffer)) {
    EXPECT_FALSE(chunk.data() >= data.data() && chunk.data() < data.data() + data.size());
  }
  EXPECT_EQ(buffer.ToString(), data + data);
}

// ------------------------------------------------------------------- Writer

TEST(LinkBuffer, MallocBytesAreReadableOnlyAfterMallocAck) {
  LinkBuffer buffer;
  absl::Span<char> span = buffer.Malloc(5);
  ASSERT_EQ(span.size(), 5u);
  std::memcpy(span.data(), "hello", 5);
  EXPECT_EQ(buffer.Len(), 0u);
  EXPECT_EQ(buffer.MallocLen(), 5u);
  buffer.MallocAck(5);
  EXPECT_EQ(buffer.MallocLen(), 0u);
  EXPECT_EQ(buffer.ToString(), "hello");
}

TEST(LinkBuffer, SeveralMallocsThenOneAckKeepsThePrefix) {
  LinkBuffer buffer;
  buffer.WriteString(">");
  absl::Span<char> a = buffer.Malloc(3);
  absl::Span<char> b = buffer.Malloc(10000);  // does not fit the first block
  absl::Span<char> c = buffer.Malloc(2);
  std::memcpy(a.data(), "abc", 3);
  std::memset(b.data(), 'b', b.size());
  std::memcpy(c.data(), "cc", 2);
  EXPECT_EQ(buffer.MallocLen(), 10005u);
  buffer.MallocAck(3 + 10000 + 1);
  EXPECT_EQ(buffer.MallocLen(), 0u);
  EXPECT_EQ(buffer.ToString(), ">abc" + std::string(10000, 'b') + "c");
}

TEST(LinkBuffer, MallocAckReturnsDroppedBytesToTheBlock) {
  LinkBuffer buffer;
  buffer.WriteString("x");
  absl::Span<char> first = buffer.Malloc(100);
  buffer.MallocAck(10);
  absl::Span<char> second = buffer.Malloc(1);
  EXPECT_EQ(second.data(), first.data() + 10);
  buffer.MallocAck(0);
  EXPECT_EQ(buffer.Len(), 11u);
  EXPECT_EQ(Chunks(buffer).size(), 1u);
}

TEST(LinkBuffer, SliceInheritsTheSpareRoomWhenPendingMallocIsDropped) {
  LinkBuffer buffer;
  buffer.WriteString("abc");
  const char* block = Chunks(buffer)[0].data();
  (void)buffer.Malloc(10);
  LinkBuffer slice = *buffer.Slice(3);
  buffer.MallocAck(0);  // gives the 10 bytes back: the slice now ends at the watermark
  slice.WriteString("d");
  EXPECT_EQ(Chunks(slice).size(), 1u);
  EXPECT_EQ(Chunks(slice)[0].data(), block);
  EXPECT_EQ(slice.ToString(), "abcd");
  buffer.WriteString("e");  // must not write over "d"
  EXPECT_EQ(buffer.ToString(), "e");
  EXPECT_EQ(slice.ToString(), "abcd");
}

TEST(LinkBuffer, WritesWhileMallocIsPendingAreReadableFirst) {
  LinkBuffer buffer;
  absl::Span<char> span = buffer.Malloc(3);
  std::memcpy(span.data(), "MMM", 3);
  buffer.WriteString("w");
  EXPECT_EQ(buffer.ToString(), "w");
  buffer.MallocAck(3);
  EXPECT_EQ(buffer.ToString(), "wMMM");
}

TEST(LinkBuffer, MallocLargerThanTheLargestBlockClassIsContiguous) {
  LinkBuffer buffer;
  absl::Span<char> span = buffer.Malloc(300 * 1024);
  std::string data = Pattern(span.size());
  std::memcpy(span.data(), data.data(), data.size());
  buffer.MallocAck(span.size());
  EXPECT_EQ(Chunks(buffer).size(), 1u);
  EXPECT_EQ(buffer.ToString(), data);
}

TEST(LinkBuffer, ClearDropsReadableAndMallocedBytes) {
  int deleted = 0;
  auto owned = std::make_unique<External>(Pattern(5000));
  absl::string_view data = owned->data;
  LinkBuffer buffer;
  buffer.WriteBinary(data, CountingDeleter(std::move(owned), &deleted));
  (void)buffer.Malloc(10);
  (void)buffer.Next(1);
  buffer.Clear();
  EXPECT_EQ(deleted, 1);
  EXPECT_TRUE(buffer.empty());
  EXPECT_EQ(buffer.MallocLen(), 0u);
  buffer.WriteString("again");
  EXPECT_EQ(buffer.ToString(), "again");
}

TEST(LinkBuffer, MoveTransfersBytesAndViews) {
  LinkBuffer a = MultiBlock({"ab", "cd"});
  absl::string_view view = *a.Next(3);
  LinkBuffer b(std::move(a));
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(b.ToString(), "d");
  EXPECT_EQ(view, "abc");
  LinkBuffer c;
  c.WriteString("old");
  c = std::move(b);
  EXPECT_EQ(c.ToString(), "d");
  EXPECT_EQ(view, "abc");
}

TEST(LinkBuffer, GetReadableIovecsDescribesChunksInOrder) {
  LinkBuffer buffer = MultiBlock({"ab", "cde", "f"});
  struct iovec iov[8];
  ASSERT_EQ(buffer.GetReadableIovecs(iov, 8), 3u);
  EXPECT_EQ(absl::string_view(static_cast<char*>(iov[1].iov_base), iov[1].iov_len), "cde");
  EXPECT_EQ(buffer.GetReadableIovecs(iov, 2), 2u);
  EXPECT_EQ(buffer.Len(), 6u);
}

// ---------------------------------------------------------------------- I/O

class LinkBufferIoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds_), 0);
  }
  void TearDown() override {
    for (int fd : fds_) {
      if (fd >= 0) ::close(fd);
    }
  }
  void ClosePeer() {
    ::close(fds_[1]);
    fds_[1] = -1;
  }
  void WriteAll(int fd, absl::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::write(fd, data.data(), data.size());
      ASSERT_GT(n, 0) << std::strerror(errno);
      data.remove_prefix(n);
    }
  }
  std::string ReadAvailable(int fd) {
    std::string out;
    char buf[65536];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof(buf))) > 0) out.append(buf, n);
    return out;
  }

  int fds_[2] = {-1, -1};
};

TEST_F(LinkBufferIoTest, ReadFromFdAppendsWhatIsAvailable) {
  LinkBuffer buffer;
  buffer.WriteString("prefix:");
  WriteAll(fds_[1], "hello");
  absl::StatusOr<size_t> n = buffer.ReadFromFd(fds_[0], 1 << 20);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 5u);
  EXPECT_EQ(buffer.ToString(), "prefix:hello");
  EXPECT_EQ(Chunks(buffer).size(), 1u) << "read into the tail block's spare room";
}

TEST_F(LinkBufferIoTest, ReadFromFdFillsTailSpareThenAFreshBlock) {
  LinkBuffer buffer;
  buffer.WriteString(Pattern(4000));  // 96 bytes of spare in a 4 KiB block
  std::string data = Pattern(50000, 7);
  std::thread writer([&] {
    int flags = ::fcntl(fds_[1], F_GETFL);
    ::fcntl(fds_[1], F_SETFL, flags & ~O_NONBLOCK);
    WriteAll(fds_[1], data);
  });
  std::string expected = Pattern(4000) + data;
  while (buffer.Len() < expected.size()) {
    absl::StatusOr<size_t> n = buffer.ReadFromFd(fds_[0], 1 << 20);
    ASSERT_TRUE(n.ok()) << n.status();
  }
  writer.join();
  EXPECT_EQ(buffer.ToString(), expected);
}

TEST_F(LinkBufferIoTest, ReadFromFdHonoursMaxBytes) {
  WriteAll(fds_[1], "0123456789");
  LinkBuffer buffer;
  EXPECT_EQ(*buffer.ReadFromFd(fds_[0], 4), 4u);
  EXPECT_EQ(*buffer.ReadFromFd(fds_[0], 0), 0u);
  EXPECT_EQ(*buffer.ReadFromFd(fds_[0], 100), 6u);
  EXPECT_EQ(buffer.ToString(), "0123456789");
}

TEST_F(LinkBufferIoTest, ReadFromFdReturnsZeroWhenItWouldBlock) {
  LinkBuffer buffer;
  absl::StatusOr<size_t> n = buffer.ReadFromFd(fds_[0], 1024);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 0u);
  EXPECT_TRUE(buffer.empty());
}

TEST_F(LinkBufferIoTest, ReadFromFdReportsEndOfStream) {
  WriteAll(fds_[1], "bye");
  ClosePeer();
  LinkBuffer buffer;
  EXPECT_EQ(*buffer.ReadFromFd(fds_[0], 1024), 3u);
  absl::StatusOr<size_t> n = buffer.ReadFromFd(fds_[0], 1024);
  EXPECT_EQ(n.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(n.status().message(), "end of stream");
  EXPECT_EQ(buffer.ToString(), "bye");
}

TEST_F(LinkBufferIoTest, ReadFromFdErrorIsUnavailable) {
  LinkBuffer buffer;
  int bad = ::dup(fds_[0]);
  ::close(bad);
  absl::StatusOr<size_t> n = buffer.ReadFromFd(bad, 1024);
  EXPECT_EQ(n.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(n.status().message().find("Bad file descriptor"), absl::string_view::npos)
      << n.status();
}

TEST_F(LinkBufferIoTest, WriteToFdWritesAndConsumes) {
  LinkBuffer buffer = MultiBlock({"abc", "def"});
  absl::StatusOr<size_t> n = buffer.WriteToFd(fds_[0]);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 6u);
  EXPECT_TRUE(buffer.empty());
  EXPECT_EQ(ReadAvailable(fds_[1]), "abcdef");
  EXPECT_EQ(*buffer.WriteToFd(fds_[0]), 0u) << "empty buffer";
}

TEST_F(LinkBufferIoTest, WriteToFdFallsBackToWritevForPipes) {
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  LinkBuffer buffer = MultiBlock({"pi", "pe"});
  absl::StatusOr<size_t> n = buffer.WriteToFd(pipe_fds[1]);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 4u);
  char out[4];
  ASSERT_EQ(::read(pipe_fds[0], out, 4), 4);
  EXPECT_EQ(absl::string_view(out, 4), "pipe");
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
}

TEST_F(LinkBufferIoTest, WriteToFdReturnsZeroWhenItWouldBlock) {
  LinkBuffer buffer;
  buffer.WriteString(Pattern(1 << 20));
  size_t written = 0;
  for (;;) {
    absl::StatusOr<size_t> n = buffer.WriteToFd(fds_[0]);
    ASSERT_TRUE(n.ok()) << n.status();
    if (*n == 0) break;
    written += *n;
  }
  EXPECT_GT(written, 0u);
  EXPECT_EQ(buffer.Len(), (1u << 20) - written);
  EXPECT_EQ(ReadAvailable(fds_[1]), Pattern(1 << 20).substr(0, written));
}

TEST_F(LinkBufferIoTest, WriteToFdToAClosedPeerIsUnavailableWithoutSigpipe) {
  ClosePeer();
  LinkBuffer buffer;
  buffer.WriteString("lost");
  absl::StatusOr<size_t> n = buffer.WriteToFd(fds_[0]);
  EXPECT_EQ(n.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(n.status().message().find("Broken pipe"), absl::string_view::npos) << n.status();
  EXPECT_EQ(buffer.ToString(), "lost");
}

TEST_F(LinkBufferIoTest, WriteToFdSendsAtMostIovMaxChunksPerCall) {
  LinkBuffer buffer;
  constexpr int kChunks = IOV_MAX + 10;
  for (int i = 0; i < kChunks; ++i) {
    LinkBuffer piece;
    piece.WriteString("x");
    buffer.Append(std::move(piece));
  }
  ASSERT_EQ(Chunks(buffer).size(), static_cast<size_t>(kChunks));
  EXPECT_EQ(*buffer.WriteToFd(fds_[0]), static_cast<size_t>(IOV_MAX));
  EXPECT_EQ(*buffer.WriteToFd(fds_[0]), 10u);
  EXPECT_EQ(ReadAvailable(fds_[1]), std::string(kChunks, 'x'));
}

// ------------------------------------------------------- Randomized vs model

// Applies random operations to a LinkBuffer and to a std::string model and
// compares them after every step, including slices and views kept alive.
class RandomizedModel {
 public:
  explicit RandomizedModel(uint32_t seed) : rng_(seed) {
    int fds[2];
    NP_CHECK(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds) == 0);
    out_fd_ = fds[0];
    in_fd_ = fds[1];
  }
  ~RandomizedModel() {
    ::close(out_fd_);
    ::close(in_fd_);
  }

  void Run(int steps) {
    for (int step = 0; step < steps; ++step) {
      int op = Uniform(0, 18);
      SCOPED_TRACE(absl::StrCat("step ", step, " op ", op));
      Apply(op);
      if (model_.size() > 128 * 1024) Trim(64 * 1024);  // bounds the cost of Check()
      Check();
      if (HasFatalFailure() || HasFailure()) return;
    }
    buffer_.Clear();
    views_.clear();
    slices_.clear();
    EXPECT_EQ(external_deleted_, external_created_);
  }

 private:
  static bool HasFatalFailure() { return ::testing::Test::HasFatalFailure(); }
  static bool HasFailure() { return ::testing::Test::HasFailure(); }

  size_t Uniform(size_t lo, size_t hi) {
    return std::uniform_int_distribution<size_t>(lo, hi)(rng_);
  }
  // Mostly small sizes, sometimes block-sized ones.
  size_t RandomSize() {
    switch (Uniform(0, 3)) {
      case 0:
        return Uniform(0, 16);
      case 1:
        return Uniform(0, 300);
      case 2:
        return Uniform(0, 5000);
      default:
        return Uniform(0, 70000);
    }
  }
  std::string RandomBytes(size_t n) {
    std::string out(n, '\0');
    for (char& c : out) c = static_cast<char>('a' + Uniform(0, 9));  // delimiters exist
    return out;
  }
  size_t RandomReadSize() { return std::min(RandomSize(), model_.size() + Uniform(0, 1) * 2); }

  void Apply(int op) {
    switch (op) {
      case 0:
      case 1: {  // copied write
        std::string data = RandomBytes(RandomSize());
        buffer_.WriteString(data);
        model_ += data;
        break;
      }
      case 2: {  // referenced write
        auto owned = std::make_unique<External>(RandomBytes(Uniform(0, 9000)));
        std::string copy = owned->data;
        absl::string_view data = owned->data;
        ++external_created_;
        buffer_.WriteBinary(data, [this, owned = std::move(owned)]() mutable {
          owned.reset();
          ++external_deleted_;
        });
        model_ += copy;
        break;
      }
      case 3: {  // Malloc, maybe several
        std::string data = RandomBytes(RandomSize());
        absl::Span<char> span = buffer_.Malloc(data.size());
        ASSERT_EQ(span.size(), data.size());
        if (!data.empty()) std::memcpy(span.data(), data.data(), data.size());
        pending_ += data;
        break;
      }
      case 4: {  // MallocAck
        size_t n = Uniform(0, pending_.size());
        if (Uniform(0, 1)) n = pending_.size();
        buffer_.MallocAck(n);
        model_ += pending_.substr(0, n);
        pending_.clear();
        break;
      }
      case 5:
      case 6: {  // Next, view kept until Release
        size_t n = RandomReadSize();
        absl::StatusOr<absl::string_view> view = buffer_.Next(n);
        if (n > model_.size()) {
          ASSERT_EQ(view.status().code(), absl::StatusCode::kOutOfRange);
          break;
        }
        ASSERT_TRUE(view.ok());
        ASSERT_EQ(*view, model_.substr(0, n));
        views_.push_back({*view, model_.substr(0, n)});
        model_.erase(0, n);
        break;
      }
      case 7: {  // Peek
        size_t n = RandomReadSize();
        absl::StatusOr<absl::string_view> view = buffer_.Peek(n);
        if (n > model_.size()) {
          ASSERT_FALSE(view.ok());
          break;
        }
        ASSERT_EQ(*view, model_.substr(0, n));
        views_.push_back({*view, model_.substr(0, n)});
        break;
      }
      case 8: {  // Until
        char delim = static_cast<char>('a' + Uniform(0, 12));
        absl::StatusOr<absl::string_view> view = buffer_.Until(delim);
        size_t pos = model_.find(delim);
        if (pos == std::string::npos) {
          ASSERT_EQ(view.status().code(), absl::StatusCode::kNotFound);
          break;
        }
        ASSERT_TRUE(view.ok());
        ASSERT_EQ(*view, model_.substr(0, pos + 1));
        views_.push_back({*view, model_.substr(0, pos + 1)});
        model_.erase(0, pos + 1);
        break;
      }
      case 9: {  // Skip
        size_t n = RandomReadSize();
        absl::Status status = buffer_.Skip(n);
        ASSERT_EQ(status.ok(), n <= model_.size());
        if (status.ok()) model_.erase(0, n);
        break;
      }
      case 10: {  // ReadString / ReadBinary / PeekCopy
        size_t n = RandomReadSize();
        if (n > model_.size()) break;
        std::string copy(n, '\0');
        ASSERT_TRUE(buffer_.PeekCopy(n, copy.data()));
        ASSERT_EQ(copy, model_.substr(0, n));
        if (Uniform(0, 1)) {
          ASSERT_EQ(*buffer_.ReadString(n), model_.substr(0, n));
        } else {
          ASSERT_TRUE(buffer_.ReadBinary(absl::MakeSpan(copy)).ok());
          ASSERT_EQ(copy, model_.substr(0, n));
        }
        model_.erase(0, n);
        break;
      }
      case 11:
      case 12: {  // Slice, kept alive (and sometimes written to)
        size_t n = RandomReadSize();
        absl::StatusOr<LinkBuffer> slice = buffer_.Slice(n);
        if (n > model_.size()) {
          ASSERT_FALSE(slice.ok());
          break;
        }
        ASSERT_TRUE(slice.ok());
        std::string slice_model = model_.substr(0, n);
        model_.erase(0, n);
        if (Uniform(0, 2) == 0) {
          std::string more = RandomBytes(Uniform(0, 100));
          slice->WriteString(more);
          slice_model += more;
        }
        slices_.push_back({std::move(*slice), std::move(slice_model)});
        if (slices_.size() > 8) slices_.pop_front();
        break;
      }
      case 13: {  // Append a kept slice back
        if (slices_.empty()) break;
        Slice& slice = slices_.front();
        buffer_.Append(std::move(slice.buffer));
        model_ += slice.model;
        slices_.pop_front();
        break;
      }
      case 14: {  // Release
        buffer_.Release();
        views_.clear();
        break;
      }
      case 15: {  // round trip through a socket: WriteToFd, then ReadFromFd back
        absl::StatusOr<size_t> written = buffer_.WriteToFd(out_fd_);
        ASSERT_TRUE(written.ok()) << written.status();
        std::string moved = model_.substr(0, *written);
        model_.erase(0, *written);
        size_t got = 0;
        while (got < *written) {
          absl::StatusOr<size_t> n = buffer_.ReadFromFd(in_fd_, Uniform(1, 100000));
          ASSERT_TRUE(n.ok()) << n.status();
          got += *n;
        }
        model_ += moved;
        break;
      }
      case 16: {  // Clear (rarely)
        if (Uniform(0, 20) != 0) break;
        buffer_.Clear();
        model_.clear();
        pending_.clear();
        views_.clear();
        break;
      }
      case 17: {  // move the buffer around
        LinkBuffer moved(std::move(buffer_));
        buffer_ = std::move(moved);
        break;
      }
      case 18: {  // drain most of it
        if (model_.size() > 16 * 1024) Trim(1000);
        break;
      }
    }
  }

  void Trim(size_t keep) {
    ASSERT_TRUE(buffer_.Skip(model_.size() - keep).ok());
    model_.erase(0, model_.size() - keep);
  }

  void Check() {
    ASSERT_EQ(buffer_.Len(), model_.size());
    ASSERT_EQ(buffer_.empty(), model_.empty());
    ASSERT_EQ(buffer_.MallocLen(), pending_.size());
    ASSERT_EQ(buffer_.ToString(), model_);
    size_t total = 0;
    buffer_.ForEachChunk([&](absl::string_view chunk) {
      EXPECT_FALSE(chunk.empty());
      total += chunk.size();
    });
    ASSERT_EQ(total, model_.size());
    for (const View& view : views_) ASSERT_EQ(view.view, view.expected);
    for (const Slice& slice : slices_) ASSERT_EQ(slice.buffer.ToString(), slice.model);
  }

  struct View {
    absl::string_view view;
    std::string expected;
  };
  struct Slice {
    LinkBuffer buffer;
    std::string model;
  };

  std::mt19937 rng_;
  int out_fd_;
  int in_fd_;
  int external_created_ = 0;
  int external_deleted_ = 0;
  // Declared before buffer_ and slices_, so destroyed after them.
  LinkBuffer buffer_;
  std::string model_;
  std::string pending_;  // Malloc()ed, not acknowledged
  std::vector<View> views_;
  std::deque<Slice> slices_;
};

TEST(LinkBufferRandomized, MatchesStringModel) {
  for (uint32_t seed : {1u, 2u, 3u, 42u, 2024u}) {
    SCOPED_TRACE(absl::StrCat("seed ", seed));
    RandomizedModel model(seed);
    model.Run(3000);
    if (::testing::Test::HasFailure()) return;
  }
}

// ----------------------------------------------------------- Multi-threaded

// Byte i of the producer's stream: consumers check slices without a model.
char StreamByte(uint64_t i) { return static_cast<char>(i * 131 + (i >> 9)); }

struct Handoff {
  LinkBuffer slice;
  uint64_t offset;  // stream offset of the slice's first byte
};

class HandoffQueue {
 public:
  void Push(Handoff item) {
    MutexLock lock(&mu_);
    items_.push_back(std::move(item));
    cv_.Signal();
  }
  void Close() {
    MutexLock lock(&mu_);
    closed_ = true;
    cv_.SignalAll();
  }
  // False once closed and drained.
  bool Pop(Handoff* item) {
    MutexLock lock(&mu_);
    while (items_.empty() && !closed_) cv_.Wait(&mu_);
    if (items_.empty()) return false;
    *item = std::move(items_.front());
    items_.pop_front();
    return true;
  }

 private:
  Mutex mu_;
  CondVar cv_;
  std::deque<Handoff> items_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

TEST(LinkBufferThreads, SlicesHandedToOtherThreadsStayIntact) {
  constexpr int kConsumers = 3;
  constexpr int kRounds = 3000;
  HandoffQueue queue;
  std::atomic<int> external_created{0};
  std::atomic<int> external_deleted{0};
  std::atomic<uint64_t> bytes_checked{0};

  std::vector<std::thread> consumers;
  for (int c = 0; c < kConsumers; ++c) {
    consumers.emplace_back([&, c] {
      std::mt19937 rng(100 + c);
      Handoff item;
      while (queue.Pop(&item)) {
        LinkBuffer& slice = item.slice;
        uint64_t offset = item.offset;
        // Split further and drop part of it here.
        if (slice.Len() > 1 && rng() % 2) {
          LinkBuffer head = *slice.Slice(slice.Len() / 2);
          uint64_t i = offset;
          head.ForEachChunk([&](absl::string_view chunk) {
            for (char ch : chunk) ASSERT_EQ(ch, StreamByte(i++));
          });
          offset = i;
        }
        // Read with views, then append into the slice's tail (it may own the
        // spare room of a block the producer also writes into).
        size_t n = slice.Len() / 3;
        absl::string_view view = *slice.Next(n);
        for (size_t k = 0; k < n; ++k) ASSERT_EQ(view[k], StreamByte(offset + k));
        offset += n;
        size_t rest = slice.Len();
        slice.WriteString("tail");
        std::string all = slice.ToString();
        ASSERT_EQ(all.size(), rest + 4);
        for (size_t k = 0; k < rest; ++k) ASSERT_EQ(all[k], StreamByte(offset + k));
        ASSERT_EQ(all.substr(rest), "tail");
        bytes_checked.fetch_add(rest + n);
        slice.Release();
        item.slice.Clear();  // blocks go to this thread's cache
      }
    });
  }

  std::mt19937 rng(7);
  LinkBuffer buffer;
  uint64_t written = 0;  // stream offset of the next byte written
  uint64_t sliced = 0;   // stream offset of buffer's head
  for (int round = 0; round < kRounds; ++round) {
    size_t len = rng() % 3 == 0 ? rng() % 20000 : rng() % 500;
    std::string data(len, '\0');
    for (size_t k = 0; k < len; ++k) data[k] = StreamByte(written + k);
    switch (rng() % 3) {
      case 0:
        buffer.WriteString(data);
        break;
      case 1: {
        auto owned = std::make_unique<std::string>(std::move(data));
        absl::string_view bytes = *owned;
        external_created.fetch_add(1);
        buffer.WriteBinary(bytes, [owned = std::move(owned), &external_deleted]() mutable {
          owned.reset();
          external_deleted.fetch_add(1);
        });
        break;
      }
      default: {
        // Malloc, hand everything readable away, then drop the pending bytes:
        // the consumer's slice inherits the spare room.
        absl::Span<char> span = buffer.Malloc(len + 10);
        std::memcpy(span.data(), data.data(), len);
        if (rng() % 2) {
          uint64_t all = buffer.Len();
          if (all > 0) {
            queue.Push({*buffer.Slice(all), sliced});
            sliced += all;
          }
        }
        buffer.MallocAck(len);
        break;
      }
    }
    written += len;
    uint64_t cut = buffer.Len() == 0 ? 0 : rng() % (buffer.Len() + 1);
    if (cut > 0) {
      queue.Push({*buffer.Slice(cut), sliced});
      sliced += cut;
    }
  }
  if (!buffer.empty()) {
    uint64_t all = buffer.Len();
    queue.Push({*buffer.Slice(all), sliced});
    sliced += all;
  }
  queue.Close();
  for (std::thread& consumer : consumers) consumer.join();
  EXPECT_EQ(sliced, written);
  EXPECT_GT(bytes_checked.load(), 0u);
  EXPECT_EQ(external_deleted.load(), external_created.load());
}

}  // namespace
}  // namespace netpoll

namespace netpoll {
namespace {

TEST(LinkBufferClone, SharesBytesWithoutCopyAndBothAppendIndependently) {
  LinkBuffer original;
  original.WriteBinary("hello");
  LinkBuffer clone = original.Clone();
  EXPECT_EQ(clone.ToString(), "hello");
  // Same memory: no copy.
  const char* a = nullptr;
  const char* b = nullptr;
  original.ForEachChunk([&](absl::string_view c) { a = c.data(); });
  clone.ForEachChunk([&](absl::string_view c) { b = c.data(); });
  EXPECT_EQ(a, b);
  // Appending to either must not show up in the other.
  original.WriteBinary(" world");
  clone.WriteBinary(" there");
  EXPECT_EQ(original.ToString(), "hello world");
  EXPECT_EQ(clone.ToString(), "hello there");
  // Consuming one leaves the other whole.
  ASSERT_TRUE(original.Skip(5).ok());
  EXPECT_EQ(clone.ToString(), "hello there");
}

TEST(LinkBufferClone, CloneOutlivesTheOriginalAcrossBlocks) {
  std::string big(100000, 'q');
  LinkBuffer clone;
  {
    LinkBuffer original;
    original.WriteBinary(big);
    original.WriteBinary("tail");
    clone = original.Clone();
  }
  EXPECT_EQ(clone.Len(), big.size() + 4);
  EXPECT_EQ(clone.ToString(), big + "tail");
}

}  // namespace
}  // namespace netpoll
