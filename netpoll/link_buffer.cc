#include "netpoll/link_buffer.h"

#include <errno.h>
#include <limits.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "netpoll/internal/block_cache.h"
#include "netpoll/logging.h"

namespace netpoll {

using link_buffer_internal::Block;
using link_buffer_internal::NewBlock;
using link_buffer_internal::NewExternalBlock;
using link_buffer_internal::RefBlock;
using link_buffer_internal::UnrefBlock;

namespace {

// ReadFromFd() asks the kernel for at most this much per call.
constexpr size_t kReadChunk = 64 * 1024;

// The spare room of `block` belongs to the holder of the reference ending at
// the watermark.
bool OwnsSpare(const Block* block, uint32_t end) {
  return block->size.load(std::memory_order_acquire) == end;
}

// Handles both the XSI (int) and the GNU (char*) strerror_r.
[[maybe_unused]] const char* StrErrorResult(int rc, const char* buf) {
  return rc == 0 ? buf : "unknown error";
}
[[maybe_unused]] const char* StrErrorResult(const char* rc, const char*) { return rc; }

absl::Status ErrnoStatus(const char* op, int err) {
  char buf[128] = {};
  return absl::UnavailableError(
      absl::StrCat(op, ": ", StrErrorResult(strerror_r(err, buf, sizeof(buf)), buf)));
}

}  // namespace

LinkBuffer::LinkBuffer() = default;

LinkBuffer::~LinkBuffer() {
  // Moved-from and drained buffers are the common case: skip the walk.
  if (refs_.empty() && malloc_refs_.empty() && consumed_.empty() && scratch_.empty()) return;
  Clear();
}

LinkBuffer::LinkBuffer(LinkBuffer&& other) noexcept { TakeFrom(other); }

LinkBuffer& LinkBuffer::operator=(LinkBuffer&& other) noexcept {
  if (this != &other) {
    Clear();
    TakeFrom(other);
  }
  return *this;
}

void LinkBuffer::TakeFrom(LinkBuffer& other) {
  refs_ = std::move(other.refs_);
  head_ = std::exchange(other.head_, 0);
  length_ = std::exchange(other.length_, 0);
  block_bytes_ = std::exchange(other.block_bytes_, 0);
  malloc_length_ = std::exchange(other.malloc_length_, 0);
  malloc_refs_ = std::move(other.malloc_refs_);
  scratch_ = std::move(other.scratch_);
  consumed_ = std::move(other.consumed_);
  views_outstanding_ = std::exchange(other.views_outstanding_, false);
  // Moved-from containers are only "valid but unspecified": empty them, so
  // other never drops a reference it handed over.
  other.refs_.clear();
  other.malloc_refs_.clear();
  other.scratch_.clear();
  other.consumed_.clear();
}

// ------------------------------------------------------------------ Internals

void LinkBuffer::PopFront() {
  // The front ref must still hold its reference (its block is read here).
  // The block's bytes stay charged when the next ref is in the same block.
  if (head_ + 1 >= refs_.size() || refs_[head_ + 1].block != refs_[head_].block) {
    block_bytes_ -= refs_[head_].block->capacity;
  }
  ++head_;
  if (head_ == refs_.size()) {
    refs_.clear();
    head_ = 0;
  } else if (head_ >= 16 && 2 * head_ >= refs_.size()) {
    refs_.erase(refs_.begin(), refs_.begin() + head_);
    head_ = 0;
  }
}

void LinkBuffer::PushRef(Block* block, uint32_t begin, uint32_t end) {
  NP_CHECK(begin < end) << "empty ref [" << begin << ", " << end << ")";
  length_ += end - begin;
  if (HasRefs()) {
    Ref& tail = refs_.back();
    if (tail.block == block && tail.end == begin) {
      tail.end = end;
      UnrefBlock(block);  // tail already holds a reference
      return;
    }
    if (tail.block != block) block_bytes_ += block->capacity;
  } else {
    block_bytes_ += block->capacity;
  }
  refs_.push_back(Ref{block, begin, end});
}

void LinkBuffer::RetireRef(const Ref& ref) {
  if (views_outstanding_) {
    consumed_.push_back(ref);
  } else {
    UnrefBlock(ref.block);
  }
}

void LinkBuffer::DropHead(size_t n) {
  length_ -= n;
  while (n > 0) {
    Ref& front = Front();
    if (front.size() <= n) {
      n -= front.size();
      const Ref done = front;
      PopFront();  // reads the block: before RetireRef() may free it
      RetireRef(done);
    } else {
      front.begin += static_cast<uint32_t>(n);
      n = 0;
    }
  }
}

void LinkBuffer::CopyHead(size_t n, char* dst) const {
  for (size_t i = head_; n > 0; ++i) {
    const Ref& ref = refs_[i];
    size_t take = std::min(n, ref.size());
    std::memcpy(dst, ref.block->data + ref.begin, take);
    dst += take;
    n -= take;
  }
}

size_t LinkBuffer::TailSpare() const {
  if (!HasRefs()) return 0;
  const Ref& tail = refs_.back();
  if (!OwnsSpare(tail.block, tail.end)) return 0;
  return tail.block->capacity - tail.end;
}

void LinkBuffer::AppendCopy(absl::string_view data) {
  while (!data.empty()) {
    size_t spare = TailSpare();
    if (spare > 0) {
      Ref& tail = refs_.back();
      size_t take = std::min(spare, data.size());
      std::memcpy(tail.block->data + tail.end, data.data(), take);
      tail.end += static_cast<uint32_t>(take);
      tail.block->size.store(tail.end, std::memory_order_release);
      length_ += take;
      data.remove_prefix(take);
    } else {
      Block* block = NewBlock(std::min<size_t>(data.size(), link_buffer_internal::kMaxClassSize));
      size_t take = std::min<size_t>(block->capacity, data.size());
      std::memcpy(block->data, data.data(), take);
      block->size.store(static_cast<uint32_t>(take), std::memory_order_release);
      PushRef(block, 0, static_cast<uint32_t>(take));
      data.remove_prefix(take);
    }
  }
}

const LinkBuffer::Ref* LinkBuffer::MallocTail() const {
  if (!malloc_refs_.empty()) return &malloc_refs_.back();  // its spare is always ours
  if (HasRefs() && OwnsSpare(refs_.back().block, refs_.back().end)) return &refs_.back();
  return nullptr;
}

absl::Span<char> LinkBuffer::ReserveMalloc(size_t n) {
  NP_CHECK(n <= link_buffer_internal::kMaxBlockSize) << "Malloc(" << n << ")";
  malloc_length_ += n;
  const Ref* tail = MallocTail();
  if (tail != nullptr && tail->block->capacity - tail->end >= n) {
    Block* block = tail->block;
    uint32_t begin = tail->end;
    uint32_t end = begin + static_cast<uint32_t>(n);
    block->size.store(end, std::memory_order_release);
    if (!malloc_refs_.empty()) {
      malloc_refs_.back().end = end;  // tail is malloc_refs_.back()
    } else {
      RefBlock(block);
      malloc_refs_.push_back(Ref{block, begin, end});
    }
    return absl::Span<char>(block->data + begin, n);
  }
  Block* block = NewBlock(n);
  block->size.store(static_cast<uint32_t>(n), std::memory_order_release);
  malloc_refs_.push_back(Ref{block, 0, static_cast<uint32_t>(n)});
  return absl::Span<char>(block->data, n);
}

absl::Span<char> LinkBuffer::MallocGreedy(size_t min_size, size_t max_size, size_t block_size) {
  const Ref* tail = MallocTail();
  if (tail != nullptr) {
    size_t spare = tail->block->capacity - tail->end;
    if (spare >= min_size && spare > 0) return ReserveMalloc(std::min(spare, max_size));
  }
  int size_class = link_buffer_internal::SizeClassFor(block_size);
  size_t n = size_class < 0 ? block_size : link_buffer_internal::kSizeClasses[size_class];
  return ReserveMalloc(std::min(n, max_size));
}

// ---------------------------------------------------------------- Reader

absl::StatusOr<absl::string_view> LinkBuffer::Next(size_t n) {
  absl::StatusOr<absl::string_view> view = Peek(n);
  if (view.ok()) DropHead(n);
  return view;
}

absl::StatusOr<absl::string_view> LinkBuffer::Peek(size_t n) {
  if (n > length_) {
    return absl::OutOfRangeError(absl::StrCat("need ", n, " bytes, have ", length_));
  }
  if (n == 0) return absl::string_view();
  views_outstanding_ = true;
  const Ref& front = Front();
  if (front.size() >= n) return absl::string_view(front.block->data + front.begin, n);
  auto copy = std::make_unique_for_overwrite<char[]>(n);
  CopyHead(n, copy.get());
  absl::string_view view(copy.get(), n);
  scratch_.push_back(std::move(copy));
  return view;
}

bool LinkBuffer::PeekCopy(size_t n, char* dst) const {
  if (n > length_) return false;
  CopyHead(n, dst);
  return true;
}

absl::Status LinkBuffer::Skip(size_t n) {
  if (n > length_) {
    return absl::OutOfRangeError(absl::StrCat("skip ", n, " bytes, have ", length_));
  }
  DropHead(n);
  return absl::OkStatus();
}

absl::StatusOr<absl::string_view> LinkBuffer::Until(char delim) {
  size_t offset = 0;
  for (size_t i = head_; i < refs_.size(); ++i) {
    const Ref& ref = refs_[i];
    const void* hit = std::memchr(ref.block->data + ref.begin, delim, ref.size());
    if (hit != nullptr) {
      offset += static_cast<const char*>(hit) - (ref.block->data + ref.begin);
      return Next(offset + 1);
    }
    offset += ref.size();
  }
  return absl::NotFoundError("delimiter not found");
}

absl::StatusOr<std::string> LinkBuffer::ReadString(size_t n) {
  if (n > length_) {
    return absl::OutOfRangeError(absl::StrCat("read ", n, " bytes, have ", length_));
  }
  std::string out(n, '\0');
  CopyHead(n, out.data());
  DropHead(n);
  return out;
}

absl::Status LinkBuffer::ReadBinary(absl::Span<char> out) {
  if (out.size() > length_) {
    return absl::OutOfRangeError(absl::StrCat("read ", out.size(), " bytes, have ", length_));
  }
  CopyHead(out.size(), out.data());
  DropHead(out.size());
  return absl::OkStatus();
}

absl::StatusOr<LinkBuffer> LinkBuffer::Slice(size_t n) {
  if (n > length_) {
    return absl::OutOfRangeError(absl::StrCat("slice ", n, " bytes, have ", length_));
  }
  LinkBuffer slice;
  length_ -= n;
  while (n > 0) {
    Ref& front = Front();
    if (front.size() <= n) {
      n -= front.size();
      if (views_outstanding_) {
        // The slice may die first; keep the bytes of our views alive.
        RefBlock(front.block);
        consumed_.push_back(front);
      }
      slice.PushRef(front.block, front.begin, front.end);
      PopFront();
    } else {
      RefBlock(front.block);
      uint32_t cut = front.begin + static_cast<uint32_t>(n);
      slice.PushRef(front.block, front.begin, cut);
      front.begin = cut;
      n = 0;
    }
  }
  return slice;
}

LinkBuffer LinkBuffer::Clone() const {
  LinkBuffer clone;
  for (size_t i = head_; i < refs_.size(); ++i) {
    const Ref& ref = refs_[i];
    // The owner of the spare after this ref would share it with the clone:
    // claim it all (the watermark jumps to capacity) so nobody owns it. Only
    // this buffer can own it, so one compare-exchange suffices.
    uint32_t expected = ref.end;
    ref.block->size.compare_exchange_strong(expected, ref.block->capacity,
                                            std::memory_order_acq_rel);
    RefBlock(ref.block);
    clone.PushRef(ref.block, ref.begin, ref.end);
  }
  return clone;
}

void LinkBuffer::Release() {
  for (const Ref& ref : consumed_) UnrefBlock(ref.block);
  consumed_.clear();
  scratch_.clear();
  views_outstanding_ = false;
}

void LinkBuffer::ForEachChunk(absl::FunctionRef<void(absl::string_view)> fn) const {
  for (size_t i = head_; i < refs_.size(); ++i) {
    const Ref& ref = refs_[i];
    fn(absl::string_view(ref.block->data + ref.begin, ref.size()));
  }
}

size_t LinkBuffer::GetReadableIovecs(struct iovec* iov, size_t max_iov) const {
  size_t filled = 0;
  for (size_t i = head_; i < refs_.size() && filled < max_iov; ++i, ++filled) {
    const Ref& ref = refs_[i];
    iov[filled].iov_base = ref.block->data + ref.begin;
    iov[filled].iov_len = ref.size();
  }
  return filled;
}

std::string LinkBuffer::ToString() const {
  std::string out(length_, '\0');
  CopyHead(length_, out.data());
  return out;
}

void LinkBuffer::Clear() {
  for (size_t i = head_; i < refs_.size(); ++i) UnrefBlock(refs_[i].block);
  refs_.clear();
  head_ = 0;
  length_ = 0;
  block_bytes_ = 0;
  for (const Ref& ref : malloc_refs_) UnrefBlock(ref.block);
  malloc_refs_.clear();
  malloc_length_ = 0;
  Release();
}

// ---------------------------------------------------------------- Writer

absl::Span<char> LinkBuffer::Malloc(size_t n) {
  if (n == 0) return absl::Span<char>();
  return ReserveMalloc(n);
}

void LinkBuffer::MallocAck(size_t n) {
  NP_CHECK(n <= malloc_length_) << "MallocAck(" << n << ") with " << malloc_length_
                                << " bytes pending";
  for (const Ref& ref : malloc_refs_) {
    size_t take = std::min(n, ref.size());
    n -= take;
    uint32_t cut = ref.begin + static_cast<uint32_t>(take);
    if (cut < ref.end && OwnsSpare(ref.block, ref.end)) {
      // Give the unused bytes back to the block's spare (release: whoever
      // owns the spare next also sees what was written into it).
      ref.block->size.store(cut, std::memory_order_release);
    }
    if (take > 0) {
      PushRef(ref.block, ref.begin, cut);
    } else {
      UnrefBlock(ref.block);
    }
  }
  malloc_refs_.clear();
  malloc_length_ = 0;
}

void LinkBuffer::WriteBinary(absl::string_view data) { AppendCopy(data); }

void LinkBuffer::WriteBinary(absl::string_view data, absl::AnyInvocable<void()> deleter) {
  if (data.size() >= kCopyThreshold && deleter) {
    Block* block = NewExternalBlock(data, std::move(deleter));
    PushRef(block, 0, block->capacity);
    return;
  }
  AppendCopy(data);
  if (deleter) std::move(deleter)();
}

void LinkBuffer::Append(LinkBuffer&& other) {
  if (&other == this) return;
  for (size_t i = other.head_; i < other.refs_.size(); ++i) {
    const Ref& ref = other.refs_[i];
    if (other.views_outstanding_) {
      RefBlock(ref.block);
      other.consumed_.push_back(ref);
    }
    PushRef(ref.block, ref.begin, ref.end);
  }
  other.refs_.clear();
  other.head_ = 0;
  other.length_ = 0;
  other.block_bytes_ = 0;
}

// ---------------------------------------------------------------- I/O

absl::StatusOr<size_t> LinkBuffer::ReadFromFd(int fd, size_t max_bytes) {
  if (max_bytes == 0) return 0;
  struct iovec iov[2];
  int iov_count = 0;
  size_t spare = std::min(TailSpare(), max_bytes);
  if (spare > 0) {
    const Ref& tail = refs_.back();
    iov[iov_count++] = {tail.block->data + tail.end, spare};
  }
  Block* fresh = nullptr;
  size_t fresh_len = 0;
  size_t target = std::min(max_bytes, kReadChunk);
  if (spare < target) {
    fresh = NewBlock(target - spare);
    fresh_len = std::min<size_t>(fresh->capacity, max_bytes - spare);
    iov[iov_count++] = {fresh->data, fresh_len};
  }

  // One iovec (the usual case: a fresh block) takes read(), which the
  // kernel serves with less work than readv().
  ssize_t rc;
  do {
    rc = iov_count == 1 ? ::read(fd, iov[0].iov_base, iov[0].iov_len) : ::readv(fd, iov, iov_count);
  } while (rc < 0 && errno == EINTR);
  if (rc <= 0) {
    int err = errno;
    if (fresh != nullptr) UnrefBlock(fresh);
    if (rc == 0) return absl::OutOfRangeError("end of stream");
    if (err == EAGAIN || err == EWOULDBLOCK) return 0;
    return ErrnoStatus("readv", err);
  }

  size_t got = static_cast<size_t>(rc);
  size_t into_tail = std::min(got, spare);
  if (into_tail > 0) {
    Ref& tail = refs_.back();
    tail.end += static_cast<uint32_t>(into_tail);
    tail.block->size.store(tail.end, std::memory_order_release);
    length_ += into_tail;
  }
  if (fresh != nullptr) {
    size_t into_fresh = got - into_tail;
    if (into_fresh > 0) {
      fresh->size.store(static_cast<uint32_t>(into_fresh), std::memory_order_release);
      PushRef(fresh, 0, static_cast<uint32_t>(into_fresh));
    } else {
      UnrefBlock(fresh);
    }
  }
  return got;
}

void LinkBuffer::TrimThreadCache() { link_buffer_internal::TrimThreadCache(); }

absl::StatusOr<size_t> LinkBuffer::WriteToFd(int fd) {
  if (length_ == 0) return 0;
  struct iovec iov[IOV_MAX];
  size_t iov_count = GetReadableIovecs(iov, IOV_MAX);

  // send()/sendmsg() for MSG_NOSIGNAL (no SIGPIPE from a closed peer);
  // one iovec takes send(), which skips the msghdr and iovec import.
  struct msghdr msg = {};
  msg.msg_iov = iov;
  msg.msg_iovlen = iov_count;
  const char* op = iov_count == 1 ? "send" : "sendmsg";
  ssize_t rc;
  do {
    rc = iov_count == 1 ? ::send(fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL)
                        : ::sendmsg(fd, &msg, MSG_NOSIGNAL);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0 && errno == ENOTSOCK) {
    op = "writev";
    do {
      rc = ::writev(fd, iov, static_cast<int>(iov_count));
    } while (rc < 0 && errno == EINTR);
  }
  if (rc < 0) {
    int err = errno;
    if (err == EAGAIN || err == EWOULDBLOCK) return 0;
    return ErrnoStatus(op, err);
  }
  DropHead(static_cast<size_t>(rc));
  return static_cast<size_t>(rc);
}

}  // namespace netpoll
