// Fuzz target: netpoll::LinkBuffer driven by an op sequence decoded from the
// input and checked against a std::string model.
//
// Three buffer slots, each with a model: the readable bytes (a std::string),
// the bytes written into Malloc()ed room and not yet acknowledged, and every
// view Next()/Peek()/Until() returned since its last Release() together with
// the bytes it must still show. Each op takes its arguments from the input
// (one op byte, then a slot and a size byte or two). Invariants:
//   - after every op, Len(), MallocLen() and the readable bytes equal the
//     model (ToString, ForEachChunk and GetReadableIovecs agree);
//   - failing reads (n > Len) fail with the documented code and change
//     nothing;
//   - views stay valid and unchanged until Release(), Clear() or the
//     buffer's destruction, whatever is consumed, sliced, cloned or appended
//     (ASan reports a use after free, the model any change);
//   - the deleter of referenced user memory runs exactly once, after the last
//     buffer holding it is gone;
//   - bytes written to a pipe with WriteToFd() come back by ReadFromFd().
#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "netpoll/link_buffer.h"
#include "tests/fuzz/fuzz_check.h"

namespace nprpc::fuzz {
namespace {

using netpoll::LinkBuffer;

constexpr int kSlots = 3;
constexpr size_t kMaxViews = 64;
// Ops that would grow a slot beyond this are skipped: every op compares whole
// buffers with their models, so big buffers only slow the search down.
constexpr size_t kMaxSlotBytes = 64 << 10;
// After each op, buffers up to this size are compared byte for byte (larger
// ones by length; the check op and the end of the input compare them all).
constexpr size_t kCheapCheckBytes = 1 << 10;

// Reads op arguments from the input; zeros once it runs out.
class Input {
 public:
  Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool done() const { return pos_ >= size_; }
  uint8_t U8() { return pos_ < size_ ? data_[pos_++] : 0; }
  uint16_t U16() { return static_cast<uint16_t>(U8() | (U8() << 8)); }
  // A size for an op on a buffer of `len` bytes: small, near len, or large.
  size_t Size(size_t len) {
    uint8_t x = U8();
    if (x < 200) return x;
    if (x < 250) {
      size_t back = x - 200;
      return len >= back ? len - back : len + back;
    }
    return U16();
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

struct View {
  absl::string_view view;
  std::string expected;
};

struct Slot {
  bool Full(size_t more) const { return readable.size() + pending.size() + more > kMaxSlotBytes; }

  LinkBuffer buffer;
  std::string readable;  // model of the readable bytes
  std::string pending;   // model of the Malloc()ed, unacknowledged bytes
  std::vector<absl::Span<char>> malloc_spans;
  std::vector<View> views;
};

// Bytes that vary from call to call, so misplaced bytes show: a window of a
// fixed table (a prime period, so windows rarely line up), cheap to copy.
std::string Pattern(size_t n, uint32_t& counter) {
  constexpr size_t kPeriod = 4093;
  static const std::string* const table = [] {
    auto* t = new std::string(kPeriod + (size_t{128} << 10), '\0');
    for (size_t i = 0; i < t->size(); ++i) t->at(i) = static_cast<char>((i % kPeriod) * 131 + 7);
    return t;
  }();
  const size_t start = (counter++ * 1021u) % kPeriod;
  return table->substr(start, std::min(n, table->size() - start));
}

void CheckViews(const Slot& slot) {
  for (const View& v : slot.views) {
    FUZZ_CHECK(v.view == v.expected) << "a view changed before Release()";
  }
}

void CheckModel(const Slot& slot, bool full = true) {
  const LinkBuffer& b = slot.buffer;
  FUZZ_CHECK(b.Len() == slot.readable.size()) << b.Len() << " vs " << slot.readable.size();
  FUZZ_CHECK(b.MallocLen() == slot.pending.size())
      << b.MallocLen() << " vs " << slot.pending.size();
  FUZZ_CHECK(b.empty() == slot.readable.empty());
  if (!full && slot.readable.size() > kCheapCheckBytes) return;
  FUZZ_CHECK(b.ToString() == slot.readable) << "readable bytes differ from the model";
  std::string chunks;
  b.ForEachChunk([&](absl::string_view chunk) {
    FUZZ_CHECK(!chunk.empty()) << "an empty chunk";
    chunks.append(chunk.data(), chunk.size());
  });
  FUZZ_CHECK(chunks == slot.readable);
  std::array<struct iovec, 8> iov;
  size_t n = b.GetReadableIovecs(iov.data(), iov.size());
  FUZZ_CHECK(n <= iov.size());
  std::string from_iov;
  for (size_t i = 0; i < n; ++i)
    from_iov.append(static_cast<char*>(iov[i].iov_base), iov[i].iov_len);
  FUZZ_CHECK(slot.readable.compare(0, from_iov.size(), from_iov) == 0) << "iovecs differ";
}

// Forgets the views of a slot whose buffer is about to be released, cleared
// or destroyed (after checking them one last time).
void DropViews(Slot& slot) {
  CheckViews(slot);
  slot.views.clear();
}

void RecordView(Slot& slot, absl::string_view view, std::string expected) {
  FUZZ_CHECK(view == expected) << "view bytes differ from the model";
  if (slot.views.size() < kMaxViews) slot.views.push_back({view, std::move(expected)});
}

// A non-blocking pipe for WriteToFd/ReadFromFd, made once per process.
struct Pipe {
  int read_fd = -1;
  int write_fd = -1;
  Pipe() {
    int fds[2];
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0) {
      read_fd = fds[0];
      write_fd = fds[1];
    }
  }
};

// Counts deleter runs of referenced user memory.
struct External {
  int64_t made = 0;
  std::shared_ptr<int64_t> deleted = std::make_shared<int64_t>(0);
};

void RunOps(Input& in, std::array<Slot, kSlots>& slots, External& external) {
  static Pipe* const pipe = new Pipe();
  uint32_t counter = 1;
  int steps = 0;
  while (!in.done() && steps++ < 4096) {
    const uint8_t op = in.U8();
    Slot& s = slots[in.U8() % kSlots];
    Slot& other = slots[(&s - slots.data() + 1 + in.U8() % (kSlots - 1)) % kSlots];
    LinkBuffer& b = s.buffer;
    switch (op % 20) {
      case 0: {  // small copy
        std::string data = Pattern(in.U8(), counter);
        b.WriteString(data);
        s.readable += data;
        break;
      }
      case 1: {                                                 // large copy
        std::string data = Pattern(in.U16() % 24576, counter);  // across 4/16 KiB blocks
        if (s.Full(data.size())) break;
        b.WriteBinary(data);
        s.readable += data;
        break;
      }
      case 2: {  // user memory with a deleter (referenced from 4 KiB on)
        auto memory = std::make_unique<std::string>(
            Pattern(LinkBuffer::kCopyThreshold - 64 + in.U16() % 8192, counter));
        if (s.Full(memory->size())) break;
        absl::string_view data = *memory;
        s.readable += *memory;
        ++external.made;
        b.WriteBinary(data, [memory = std::move(memory), deleted = external.deleted]() mutable {
          memory.reset();
          ++*deleted;
        });
        break;
      }
      case 3: {  // Malloc, filled at once
        size_t n = in.Size(b.Len()) % 70000;
        if (s.Full(n)) break;
        absl::Span<char> room = b.Malloc(n);
        FUZZ_CHECK(room.size() == n) << room.size() << " vs " << n;
        std::string data = Pattern(n, counter);
        if (n > 0) std::memcpy(room.data(), data.data(), n);
        s.pending += data;
        break;
      }
      case 4: {  // MallocAck
        size_t n = s.pending.empty() ? 0 : in.Size(s.pending.size()) % (s.pending.size() + 1);
        b.MallocAck(n);
        s.readable += s.pending.substr(0, n);
        s.pending.clear();
        break;
      }
      case 5:
      case 6: {  // Next / Peek
        size_t n = in.Size(b.Len());
        absl::StatusOr<absl::string_view> v = op % 20 == 5 ? b.Next(n) : b.Peek(n);
        if (n > s.readable.size()) {
          FUZZ_CHECK(!v.ok() && absl::IsOutOfRange(v.status())) << v.status();
          break;
        }
        FUZZ_CHECK(v.ok()) << v.status();
        RecordView(s, *v, s.readable.substr(0, n));
        if (op % 20 == 5) s.readable.erase(0, n);
        break;
      }
      case 7: {  // Until
        char delim = static_cast<char>(in.U8());
        absl::StatusOr<absl::string_view> v = b.Until(delim);
        size_t at = s.readable.find(delim);
        if (at == std::string::npos) {
          FUZZ_CHECK(!v.ok() && absl::IsNotFound(v.status())) << v.status();
          break;
        }
        FUZZ_CHECK(v.ok()) << v.status();
        RecordView(s, *v, s.readable.substr(0, at + 1));
        s.readable.erase(0, at + 1);
        break;
      }
      case 8: {  // Skip
        size_t n = in.Size(b.Len());
        absl::Status st = b.Skip(n);
        if (n > s.readable.size()) {
          FUZZ_CHECK(absl::IsOutOfRange(st)) << st;
        } else {
          FUZZ_CHECK(st.ok()) << st;
          s.readable.erase(0, n);
        }
        break;
      }
      case 9: {  // ReadString
        size_t n = in.Size(b.Len());
        absl::StatusOr<std::string> got = b.ReadString(n);
        if (n > s.readable.size()) {
          FUZZ_CHECK(!got.ok() && absl::IsOutOfRange(got.status())) << got.status();
        } else {
          FUZZ_CHECK(got.ok() && *got == s.readable.substr(0, n));
          s.readable.erase(0, n);
        }
        break;
      }
      case 10: {  // ReadBinary
        size_t n = in.Size(b.Len());
        std::string out(n, '\0');
        absl::Status st = b.ReadBinary(absl::Span<char>(out.data(), out.size()));
        if (n > s.readable.size()) {
          FUZZ_CHECK(absl::IsOutOfRange(st)) << st;
        } else {
          FUZZ_CHECK(st.ok() && out == s.readable.substr(0, n)) << st;
          s.readable.erase(0, n);
        }
        break;
      }
      case 11: {  // PeekCopy
        size_t n = in.Size(b.Len());
        std::string out(n, '\0');
        bool ok = b.PeekCopy(n, out.data());
        FUZZ_CHECK(ok == (n <= s.readable.size()));
        if (ok) {
          FUZZ_CHECK(out == s.readable.substr(0, n));
        }
        break;
      }
      case 12: {  // Slice into another slot (which is destroyed first)
        size_t n = in.Size(b.Len());
        absl::StatusOr<LinkBuffer> slice = b.Slice(n);
        if (n > s.readable.size()) {
          FUZZ_CHECK(!slice.ok() && absl::IsOutOfRange(slice.status())) << slice.status();
          break;
        }
        FUZZ_CHECK(slice.ok()) << slice.status();
        DropViews(other);
        other.buffer = std::move(*slice);
        other.readable = s.readable.substr(0, n);
        other.pending.clear();
        s.readable.erase(0, n);
        break;
      }
      case 13: {  // Clone into another slot
        if (other.Full(s.readable.size())) break;
        DropViews(other);
        other.buffer = b.Clone();
        other.readable = s.readable;
        other.pending.clear();
        break;
      }
      case 14: {  // Append another slot's readable bytes (its Malloc()ed room stays)
        if (s.Full(other.readable.size())) break;
        b.Append(std::move(other.buffer));
        s.readable += other.readable;
        other.readable.clear();
        break;
      }
      case 15:
        DropViews(s);
        b.Release();
        break;
      case 16:
        DropViews(s);
        b.Clear();
        s.readable.clear();
        s.pending.clear();
        break;
      case 17: {  // move-assign over another slot
        DropViews(other);
        other.buffer = std::move(b);
        other.readable = std::move(s.readable);
        other.pending = std::move(s.pending);
        other.views = std::move(s.views);  // views survive a move of the buffer
        s.buffer = LinkBuffer();
        s.readable.clear();
        s.pending.clear();
        s.views.clear();
        CheckModel(other);
        break;
      }
      case 18: {  // WriteToFd into a pipe, ReadFromFd into another slot
        if (pipe->read_fd < 0) break;
        absl::StatusOr<size_t> wrote = b.WriteToFd(pipe->write_fd);
        FUZZ_CHECK(wrote.ok()) << wrote.status();
        FUZZ_CHECK(*wrote <= s.readable.size());
        std::string sent = s.readable.substr(0, *wrote);
        s.readable.erase(0, *wrote);
        size_t got_total = 0;
        while (got_total < sent.size()) {
          // A read limit from the input; 0 (also what an exhausted input
          // gives) reads the rest, so a short input cannot turn a 64 KiB
          // transfer into 65,536 one-byte reads.
          const uint16_t limit = in.U16();
          size_t max = limit == 0 ? sent.size() - got_total : limit;
          absl::StatusOr<size_t> got = other.buffer.ReadFromFd(pipe->read_fd, max);
          FUZZ_CHECK(got.ok()) << got.status();
          FUZZ_CHECK(*got <= max);
          // Bytes are in the pipe: a read always has room (a fresh block
          // when Malloc()ed bytes are pending).
          FUZZ_CHECK(*got > 0) << "ReadFromFd read nothing with " << sent.size() - got_total
                               << " bytes in the pipe";
          got_total += *got;
        }
        other.readable += sent;
        break;
      }
      default: {  // full check of this slot
        CheckViews(s);
        CheckModel(s);
        break;
      }
    }
    CheckModel(s, /*full=*/false);
    CheckModel(other, /*full=*/false);
  }
}

}  // namespace
}  // namespace nprpc::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace nprpc::fuzz;  // NOLINT: local to this entry point
  External external;
  {
    std::array<Slot, kSlots> slots;
    Input in(data, size);
    RunOps(in, slots, external);
    for (Slot& slot : slots) {
      CheckViews(slot);
      CheckModel(slot);
      slot.views.clear();
    }
  }
  // Every buffer is gone: every deleter ran, once.
  FUZZ_CHECK(*external.deleted == external.made)
      << *external.deleted << " deleters ran for " << external.made << " blocks";
  return 0;
}
