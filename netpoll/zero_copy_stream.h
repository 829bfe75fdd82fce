// Protobuf zero-copy streams over a LinkBuffer, so messages are parsed
// straight out of the buffer's blocks and serialized straight into them:
//
//   LinkBufferInputStream in(&frame_body);            // consumes what it parses
//   if (!request.ParseFromZeroCopyStream(&in)) ...
//
//   LinkBufferOutputStream out(&wire);
//   response.SerializeToZeroCopyStream(&out);
//   out.Flush();                                       // or let `out` go away
//
// Thread safety: a stream is used by one thread at a time, like the LinkBuffer
// under it; while a stream is alive only the stream touches that buffer.
#ifndef NETPOLL_ZERO_COPY_STREAM_H_
#define NETPOLL_ZERO_COPY_STREAM_H_

#include <cstddef>
#include <cstdint>

#include "google/protobuf/io/zero_copy_stream.h"
#include "netpoll/link_buffer.h"

namespace netpoll {

// Reads (and consumes) the readable bytes of a LinkBuffer, block by block, with
// no copy: Next() yields the bytes of one block reference at a time.
//
// Bytes yielded by Next() and not backed up are consumed from the buffer when
// the stream moves on (the next Next() or Skip()) or is destroyed; until then
// buffer->Len() still counts them. With a limit, the stream ends after `limit`
// bytes even when the buffer holds more (the rest stays in the buffer).
class LinkBufferInputStream final : public google::protobuf::io::ZeroCopyInputStream {
 public:
  // `buffer` is not owned and must outlive the stream. A negative limit means
  // "everything readable".
  explicit LinkBufferInputStream(LinkBuffer* buffer, int64_t limit = -1);
  LinkBufferInputStream(const LinkBufferInputStream&) = delete;
  LinkBufferInputStream& operator=(const LinkBufferInputStream&) = delete;
  ~LinkBufferInputStream() override;

  bool Next(const void** data, int* size) override;
  void BackUp(int count) override;
  bool Skip(int count) override;
  int64_t ByteCount() const override { return byte_count_; }

 private:
  // Consumes the bytes of the last Next() that were not backed up.
  void Commit();

  LinkBuffer* const buffer_;  // not owned
  int64_t remaining_;         // bytes the limit still allows, after byte_count_
  int64_t byte_count_ = 0;    // consumed + pending_
  size_t pending_ = 0;        // yielded by the last Next(), not consumed yet
};

// Appends to a LinkBuffer: Next() hands out the spare room of the tail block,
// then fresh blocks (4 KiB growing to 64 KiB), through Malloc()/MallocAck().
//
// Visibility: the bytes of a chunk become readable in the buffer when the
// next Next() is called, on BackUp() (protobuf calls BackUp(), possibly with
// 0, after its last Next()), on Flush() and on destruction. After Flush() or
// destruction everything written is readable.
class LinkBufferOutputStream final : public google::protobuf::io::ZeroCopyOutputStream {
 public:
  // `buffer` is not owned, must outlive the stream and must have no pending
  // Malloc() bytes (MallocLen() == 0); nothing else may write to it while the
  // stream is alive.
  explicit LinkBufferOutputStream(LinkBuffer* buffer);
  LinkBufferOutputStream(const LinkBufferOutputStream&) = delete;
  LinkBufferOutputStream& operator=(const LinkBufferOutputStream&) = delete;
  ~LinkBufferOutputStream() override;  // Flush()es

  bool Next(void** data, int* size) override;
  void BackUp(int count) override;
  int64_t ByteCount() const override { return byte_count_; }

  // Makes every byte written so far readable. The stream stays usable.
  void Flush();

 private:
  LinkBuffer* const buffer_;  // not owned
  int64_t byte_count_ = 0;
};

}  // namespace netpoll

#endif  // NETPOLL_ZERO_COPY_STREAM_H_
