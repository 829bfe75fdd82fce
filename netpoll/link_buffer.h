// LinkBuffer: the nocopy buffer under every connection and every RPC frame.
//
// A LinkBuffer is a queue of references into reference-counted blocks. Bytes
// are appended at the tail (Writer API) and consumed from the head (Reader
// API). Cutting a frame out (Slice), appending one buffer to another (Append)
// and referencing large user memory (WriteBinary with a deleter) move
// references, never payload bytes.
//
//   LinkBuffer                    Block (ref-counted, from a size-class cache)
//   +-----------+                 +------------------------------------------+
//   | refs_[0] -+---------------> | consumed | readable [begin,end) | spare  |
//   | refs_[1] -+------+          +------------------------------------------+
//   | refs_[2]  |      |          +--------------------------+
//   |   ...     |      +--------> | readable [begin,end)     |   shared with
//   +-----------+                 +--------------------------+   a Slice()
//        ^ head (Reader)                      tail (Writer) ^ Malloc() spare
//
// What copies and what does not:
//   no copy: Slice, Clone, Append(LinkBuffer&&), Skip, Release, WriteBinary of
//            >= kCopyThreshold bytes with a deleter, Next/Peek when the bytes
//            are contiguous in one block, ReadFromFd/WriteToFd (read/readv and
//            send/sendmsg straight into/out of the blocks), ForEachChunk.
//   copies:  WriteBinary below kCopyThreshold (or without a deleter),
//            Next/Peek across a block boundary (one copy into scratch memory
//            owned by the buffer until Release), ReadString, ReadBinary,
//            PeekCopy, ToString.
//
// Thread safety: a LinkBuffer is not thread-safe; one thread at a time may use
// it (it may be handed between threads). Blocks are shared between buffers
// through atomic reference counts, so a Slice may live on another thread than
// its parent, and may outlive it.
#ifndef NETPOLL_LINK_BUFFER_H_
#define NETPOLL_LINK_BUFFER_H_

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/functional/any_invocable.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace netpoll {

namespace link_buffer_internal {
struct Block;  // defined in netpoll/internal/block_cache.h
}  // namespace link_buffer_internal

class LinkBuffer {
 public:
  // WriteBinary() references user memory of at least this size instead of
  // copying it.
  static constexpr size_t kCopyThreshold = 4096;

  LinkBuffer();
  ~LinkBuffer();
  LinkBuffer(LinkBuffer&& other) noexcept;
  LinkBuffer& operator=(LinkBuffer&& other) noexcept;
  LinkBuffer(const LinkBuffer&) = delete;
  LinkBuffer& operator=(const LinkBuffer&) = delete;

  // ---------------------------------------------------------------- Reader

  // Readable bytes (excludes Malloc()ed bytes not yet acknowledged).
  size_t Len() const { return length_; }
  bool empty() const { return length_ == 0; }

  // Memory the readable bytes hold: the capacity of every block they
  // reference, a block counted once per run of adjacent references to it.
  // A 37-byte answer alone in a 4 KiB block holds 4 KiB; limits on memory
  // (netpoll::Connection's output cap and watermarks, the server's memory
  // budget) count this, not Len(). Blocks shared with other buffers are
  // counted by each of them.
  size_t BlockBytes() const { return block_bytes_; }

  // Returns the next n bytes and consumes them. The view stays valid until
  // Release(), Clear() or destruction. Zero-copy when the bytes are
  // contiguous in one block; otherwise they are copied once into scratch
  // memory owned by this buffer. OutOfRange when n > Len().
  absl::StatusOr<absl::string_view> Next(size_t n);

  // Like Next() but does not consume.
  absl::StatusOr<absl::string_view> Peek(size_t n);

  // Copies the first n bytes into dst without consuming them. Returns false
  // (and copies nothing) when n > Len(). For small fixed headers.
  bool PeekCopy(size_t n, char* dst) const;

  // Consumes n bytes. OutOfRange when n > Len().
  absl::Status Skip(size_t n);

  // Returns the bytes up to and including the first `delim`, and consumes
  // them. Same lifetime and copy rules as Next(). NotFound when absent (then
  // nothing is consumed).
  absl::StatusOr<absl::string_view> Until(char delim);

  // Copies and consumes n bytes. OutOfRange when n > Len().
  absl::StatusOr<std::string> ReadString(size_t n);
  // Copies and consumes out.size() bytes. OutOfRange when out.size() > Len().
  absl::Status ReadBinary(absl::Span<char> out);

  // Moves the first n bytes into a new buffer that shares the blocks (no
  // copy). The slice may outlive this buffer. OutOfRange when n > Len().
  absl::StatusOr<LinkBuffer> Slice(size_t n);

  // A new buffer referencing the same readable bytes (no copy, nothing
  // consumed); both stay usable on their own. The spare room of a shared tail
  // block is given up, so neither buffer ever writes where the other reads.
  LinkBuffer Clone() const;

  // Frees consumed blocks and the scratch memory of Next()/Peek()/Until().
  // Invalidates every view they returned.
  void Release();

  // Calls fn on each contiguous readable chunk, head to tail, without
  // consuming.
  void ForEachChunk(absl::FunctionRef<void(absl::string_view)> fn) const;

  // Fills up to max_iov iovecs describing the readable bytes from the head,
  // without consuming. Returns the number filled.
  size_t GetReadableIovecs(struct iovec* iov, size_t max_iov) const;

  // Copies everything readable (for tests and logs).
  std::string ToString() const;

  // Drops all bytes, readable and malloc()ed. Invalidates every view.
  void Clear();

  // ---------------------------------------------------------------- Writer

  // Returns n contiguous writable bytes at the tail. They become readable only
  // through MallocAck(). Several Malloc() calls may precede one MallocAck().
  // Bytes appended by the other Writer and I/O calls while Malloc()ed bytes
  // are pending are readable at once, ahead of the pending ones.
  absl::Span<char> Malloc(size_t n);

  // Bytes returned by Malloc() and not yet acknowledged.
  size_t MallocLen() const { return malloc_length_; }

  // Makes the first n of the MallocLen() pending bytes readable and drops the
  // rest. n must be <= MallocLen().
  void MallocAck(size_t n);

  // Appends a copy of data.
  void WriteString(absl::string_view data) { WriteBinary(data); }
  void WriteBinary(absl::string_view data);

  // Appends data. When data.size() >= kCopyThreshold the buffer references the
  // memory instead of copying it, and `deleter` runs (on whichever thread
  // drops the last reference) once no buffer refers to it; below the
  // threshold the bytes are copied and `deleter` runs before this returns.
  // The memory must stay valid and unmodified until `deleter` runs.
  void WriteBinary(absl::string_view data, absl::AnyInvocable<void()> deleter);

  // Moves all readable bytes of other to the tail of this buffer (no copy);
  // other is left empty.
  void Append(LinkBuffer&& other);

  // ---------------------------------------------------------------- I/O

  // One read into the spare room of the tail block plus a fresh block, up to
  // max_bytes (readv() for both, read() when there is one). Returns bytes
  // read; 0 when the read would block. OutOfRange("end of stream") at EOF;
  // Unavailable (with strerror) on other errors (ECONNRESET, ...). EINTR is
  // retried.
  absl::StatusOr<size_t> ReadFromFd(int fd, size_t max_bytes);

  // Frees the free blocks the calling thread keeps for reuse (up to 6 MiB
  // per thread after a burst): for threads going idle, so that memory can
  // go back to the system.
  static void TrimThreadCache();

  // One write of up to IOV_MAX iovecs from the head (sendmsg(), or send()
  // for one iovec; writev() when fd is not a socket); consumes what the
  // kernel took. Returns bytes written; 0 when it would block or the buffer is
  // empty. Unavailable (with strerror) on errors (EPIPE, ECONNRESET, ...).
  // MSG_NOSIGNAL on sockets: a closed peer is an error, never SIGPIPE.
  absl::StatusOr<size_t> WriteToFd(int fd);

 private:
  friend class LinkBufferOutputStream;  // uses MallocGreedy()

  // One reference into a block: the bytes [begin, end) of block->data.
  struct Ref {
    link_buffer_internal::Block* block;  // holds one reference count
    uint32_t begin;
    uint32_t end;
    size_t size() const { return end - begin; }
  };

  // Moves every member of other into this empty buffer; other is left empty.
  void TakeFrom(LinkBuffer& other);

  // Readable refs are refs_[head_, refs_.size()): the queue pops from the
  // front by advancing head_, so a buffer of a few refs never allocates.
  bool HasRefs() const { return head_ < refs_.size(); }
  Ref& Front() { return refs_[head_]; }
  void PopFront();

  // Appends a readable ref (taking over its reference count), merging it with
  // the tail when contiguous in the same block.
  void PushRef(link_buffer_internal::Block* block, uint32_t begin, uint32_t end);
  // Consumes n <= Len() bytes from the head.
  void DropHead(size_t n);
  // Drops a consumed ref: kept in consumed_ while views may point into it.
  void RetireRef(const Ref& ref);
  // Copies n <= Len() bytes from the head into dst.
  void CopyHead(size_t n, char* dst) const;
  // Spare room at the tail this buffer may write into (0 when the tail
  // block's spare belongs to someone else or Malloc()ed bytes are pending).
  size_t TailSpare() const;
  // Appends a copy of data, filling the tail spare first.
  void AppendCopy(absl::string_view data);
  // Where Malloc() may extend in place: the last pending ref, else the last
  // readable ref when its block's spare is ours; nullptr when neither.
  const Ref* MallocTail() const;
  // Reserves n bytes as pending Malloc() bytes: in the spare of MallocTail()
  // when it has n bytes, else at the start of a fresh block.
  absl::Span<char> ReserveMalloc(size_t n);
  // Reserves the whole spare of MallocTail() (at most max_size bytes) when it
  // holds at least min_size bytes, otherwise the whole of a fresh block of at
  // least block_size bytes, as pending Malloc() bytes.
  absl::Span<char> MallocGreedy(size_t min_size, size_t max_size, size_t block_size);

  absl::InlinedVector<Ref, 4> refs_;  // readable refs from head_
  size_t head_ = 0;
  size_t length_ = 0;                             // readable bytes across refs_
  size_t block_bytes_ = 0;                        // BlockBytes()
  size_t malloc_length_ = 0;                      // pending bytes in malloc_refs_
  std::vector<Ref> malloc_refs_;                  // Malloc()ed, not yet acknowledged
  std::vector<std::unique_ptr<char[]>> scratch_;  // copies made by Next/Peek
  std::vector<Ref> consumed_;                     // consumed refs kept alive until Release()
  // Next()/Peek()/Until() returned a view since the last Release(): bytes
  // consumed or moved out from now on keep their blocks alive in consumed_.
  bool views_outstanding_ = false;
};

}  // namespace netpoll

#endif  // NETPOLL_LINK_BUFFER_H_
