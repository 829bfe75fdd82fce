#include "netpoll/zero_copy_stream.h"

#include <sys/uio.h>

#include <algorithm>
#include <climits>
#include <limits>

#include "netpoll/logging.h"

namespace netpoll {
namespace {

// A tail spare smaller than this is skipped for a fresh block: tiny chunks
// only make protobuf fall back to its slow path.
constexpr size_t kMinChunk = 128;
constexpr size_t kFirstBlock = 4 * 1024;
constexpr size_t kLargestBlock = 64 * 1024;

}  // namespace

// ------------------------------------------------------- LinkBufferInputStream

LinkBufferInputStream::LinkBufferInputStream(LinkBuffer* buffer, int64_t limit)
    : buffer_(buffer), remaining_(limit < 0 ? std::numeric_limits<int64_t>::max() : limit) {}

LinkBufferInputStream::~LinkBufferInputStream() { Commit(); }

void LinkBufferInputStream::Commit() {
  if (pending_ == 0) return;
  absl::Status status = buffer_->Skip(pending_);
  NP_CHECK(status.ok()) << "LinkBuffer changed under a LinkBufferInputStream: " << status;
  pending_ = 0;
}

bool LinkBufferInputStream::Next(const void** data, int* size) {
  Commit();
  if (remaining_ == 0) return false;
  struct iovec head;
  if (buffer_->GetReadableIovecs(&head, 1) == 0) return false;
  size_t n = std::min<size_t>({head.iov_len, static_cast<size_t>(remaining_), INT_MAX});
  *data = head.iov_base;
  *size = static_cast<int>(n);
  pending_ = n;
  byte_count_ += static_cast<int64_t>(n);
  remaining_ -= static_cast<int64_t>(n);
  return true;
}

void LinkBufferInputStream::BackUp(int count) {
  NP_CHECK(count >= 0 && static_cast<size_t>(count) <= pending_)
      << "BackUp(" << count << ") after a Next() of " << pending_ << " bytes";
  pending_ -= count;
  byte_count_ -= count;
  remaining_ += count;
}

bool LinkBufferInputStream::Skip(int count) {
  NP_CHECK(count >= 0) << "Skip(" << count << ")";
  Commit();
  size_t n = std::min<size_t>(
      {static_cast<size_t>(count), buffer_->Len(), static_cast<size_t>(remaining_)});
  absl::Status status = buffer_->Skip(n);
  NP_CHECK(status.ok()) << status;
  byte_count_ += static_cast<int64_t>(n);
  remaining_ -= static_cast<int64_t>(n);
  return n == static_cast<size_t>(count);
}

// ------------------------------------------------------ LinkBufferOutputStream

LinkBufferOutputStream::LinkBufferOutputStream(LinkBuffer* buffer) : buffer_(buffer) {
  NP_CHECK(buffer_->MallocLen() == 0) << "LinkBufferOutputStream over a buffer with "
                                      << buffer_->MallocLen() << " Malloc()ed bytes pending";
}

LinkBufferOutputStream::~LinkBufferOutputStream() { Flush(); }

void LinkBufferOutputStream::Flush() { buffer_->MallocAck(buffer_->MallocLen()); }

bool LinkBufferOutputStream::Next(void** data, int* size) {
  Flush();  // the previous chunk was used in full
  size_t block = std::clamp<size_t>(static_cast<size_t>(byte_count_), kFirstBlock, kLargestBlock);
  absl::Span<char> chunk = buffer_->MallocGreedy(kMinChunk, INT_MAX, block);
  *data = chunk.data();
  *size = static_cast<int>(chunk.size());
  byte_count_ += static_cast<int64_t>(chunk.size());
  return true;
}

void LinkBufferOutputStream::BackUp(int count) {
  size_t pending = buffer_->MallocLen();
  NP_CHECK(count >= 0 && static_cast<size_t>(count) <= pending)
      << "BackUp(" << count << ") after a Next() of " << pending << " bytes";
  // Drops the unused tail and hands its room back to the block's spare, so
  // the next Next() continues right after the last byte written.
  buffer_->MallocAck(pending - count);
  byte_count_ -= count;
}

}  // namespace netpoll
