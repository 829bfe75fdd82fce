// Fuzz target: the baidu_std FrameDecoder fed arbitrary bytes in arbitrary
// chunkings.
//
// The input is one byte stream. It is decoded three times: as one chunk, one
// byte at a time (inputs up to 256 bytes: the cost is quadratic-ish), and in chunk sizes drawn from
// a PRNG seeded with a hash of the input; the chunks alternately enter the buffer by copy, by
// Malloc()/MallocAck() and by Append() of another LinkBuffer, so the decoder sees different block
// layouts. Invariants:
//   - never crash, never consume more than was fed;
//   - need_more consumes nothing and asks for a positive count; no frame
//     appears before the bytes it asked for have arrived;
//   - a frame consumes exactly 12 + body_size bytes, its meta + payload +
//     attachment add up to body_size, its bytes are the input's bytes at that
//     offset, and its meta has exactly one of request/response;
//   - a body_size over the limit is rejected from the 12-byte header alone;
//   - an error is final: the stream is not read further, and every chunking
//     gives the same frames and the same error (code and frame index);
//   - VerifyChecksum() and UncompressPayload() accept or reject each frame
//     without crashing (and a decompressed payload respects its limit).
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "netpoll/link_buffer.h"
#include "rpc/baidu_std.h"
#include "rpc/internal/frame_codec.h"
#include "tests/fuzz/fuzz_check.h"

namespace nprpc::fuzz {
namespace {

constexpr size_t kMaxBodySize = size_t{1} << 20;
constexpr size_t kMaxDecompressed = size_t{1} << 20;

// What one decode of the whole stream produced, for comparing chunkings.
struct Outcome {
  std::vector<std::string> frames;  // meta bytes + payload + attachment, per frame
  bool error = false;
  absl::StatusCode error_code = absl::StatusCode::kOk;
  size_t consumed = 0;  // bytes consumed by whole frames

  bool operator==(const Outcome& o) const {
    return frames == o.frames && error == o.error && error_code == o.error_code &&
           consumed == o.consumed;
  }
};

uint32_t LoadBe32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | u[3];
}

// Appends `chunk` to `in` in one of three ways (copy, Malloc, Append).
void Feed(netpoll::LinkBuffer& in, absl::string_view chunk, size_t index) {
  switch (index % 3) {
    case 0:
      in.WriteBinary(chunk);
      break;
    case 1: {
      absl::Span<char> room = in.Malloc(chunk.size() + 3);
      std::memcpy(room.data(), chunk.data(), chunk.size());
      in.MallocAck(chunk.size());  // the 3 spare bytes are dropped
      break;
    }
    default: {
      netpoll::LinkBuffer other;
      other.WriteBinary(chunk);
      in.Append(std::move(other));
      break;
    }
  }
}

// Post-decode parsers on a frame: must answer, never crash.
void CheckFramePayload(DecodedFrame frame) {
  absl::Status checksum = VerifyChecksum(frame);
  (void)checksum;
  absl::StatusOr<netpoll::LinkBuffer> payload = UncompressPayload(frame, kMaxDecompressed);
  if (payload.ok()) {
    FUZZ_CHECK(payload->Len() <= kMaxDecompressed) << payload->Len();
  } else {
    FUZZ_CHECK(payload.status().code() == absl::StatusCode::kInvalidArgument ||
               payload.status().code() == absl::StatusCode::kResourceExhausted)
        << payload.status();
  }
}

Outcome DecodeStream(absl::string_view data, const std::vector<size_t>& chunks,
                     bool check_payloads) {
  const FrameDecoder decoder(FrameDecoderOptions{.max_body_size = kMaxBodySize});
  Outcome outcome;
  netpoll::LinkBuffer in;
  size_t fed = 0;
  size_t promised = 0;  // need_more asked for this many bytes beyond `fed_at_promise`
  size_t fed_at_promise = 0;
  size_t offset = 0;  // of `in`'s head within data
  for (size_t i = 0; i < chunks.size() && !outcome.error; ++i) {
    Feed(in, data.substr(fed, chunks[i]), i);
    fed += chunks[i];
    FUZZ_CHECK(offset + in.Len() == fed) << offset << " + " << in.Len() << " != " << fed;
    for (;;) {
      const size_t before = in.Len();
      char header[kBaiduStdHeaderSize];
      const bool have_header = in.PeekCopy(kBaiduStdHeaderSize, header);
      const bool good_magic = have_header && std::memcmp(header, kBaiduStdMagic, 4) == 0;
      const size_t body_size = have_header ? LoadBe32(header + 4) : 0;
      const size_t meta_size = have_header ? LoadBe32(header + 8) : 0;
      DecodeResult r = decoder.Decode(in);
      if (r.need_more()) {
        FUZZ_CHECK(in.Len() == before) << "need_more consumed bytes";
        FUZZ_CHECK(r.bytes_needed() > 0);
        if (have_header) {
          FUZZ_CHECK(good_magic && body_size <= kMaxBodySize && meta_size <= body_size)
              << "need_more for a header that must be rejected";
          FUZZ_CHECK(before + r.bytes_needed() == kBaiduStdHeaderSize + body_size)
              << before << " + " << r.bytes_needed() << " vs body_size " << body_size;
        } else {
          FUZZ_CHECK(r.bytes_needed() == kBaiduStdHeaderSize - before) << r.bytes_needed();
        }
        promised = r.bytes_needed();
        fed_at_promise = fed;
        break;
      }
      if (r.is_error()) {
        FUZZ_CHECK(!r.status().ok());
        FUZZ_CHECK(r.status().code() == absl::StatusCode::kInvalidArgument ||
                   r.status().code() == absl::StatusCode::kResourceExhausted)
            << r.status();
        if (have_header && good_magic && body_size > kMaxBodySize) {
          FUZZ_CHECK(r.status().code() == absl::StatusCode::kResourceExhausted) << r.status();
        }
        FUZZ_CHECK(in.Len() <= before) << "an error grew the input";
        outcome.error = true;
        outcome.error_code = r.status().code();
        break;  // final: the stream is not decoded further
      }
      FUZZ_CHECK(r.has_frame());
      FUZZ_CHECK(have_header && good_magic) << "a frame without a full, good header";
      FUZZ_CHECK(body_size <= kMaxBodySize);
      FUZZ_CHECK(fed - fed_at_promise >= promised || promised == 0)
          << "a frame before the promised " << promised << " bytes arrived";
      const size_t consumed = before - in.Len();
      FUZZ_CHECK(consumed == kBaiduStdHeaderSize + body_size)
          << "consumed " << consumed << " for body_size " << body_size;
      DecodedFrame frame = r.TakeFrame();
      const size_t payload_size = frame.payload.Len();
      const size_t attachment_size = frame.attachment.Len();
      FUZZ_CHECK(meta_size + payload_size + attachment_size == body_size)
          << meta_size << " + " << payload_size << " + " << attachment_size << " != " << body_size;
      FUZZ_CHECK(frame.meta.attachment_size() >= 0 &&
                 static_cast<size_t>(frame.meta.attachment_size()) == attachment_size);
      FUZZ_CHECK(frame.meta.has_request() != frame.meta.has_response());
      if (frame.meta.has_request()) {
        FUZZ_CHECK(frame.meta.request().has_service_name() &&
                   frame.meta.request().has_method_name());
      }
      // The frame's bytes are the input's bytes at this offset.
      const std::string payload = frame.payload.ToString();
      const std::string attachment = frame.attachment.ToString();
      const size_t payload_at = offset + kBaiduStdHeaderSize + meta_size;
      FUZZ_CHECK(data.substr(payload_at, payload_size) == payload) << "payload bytes differ";
      FUZZ_CHECK(data.substr(payload_at + payload_size, attachment_size) == attachment)
          << "attachment bytes differ";
      std::string bytes(data.substr(offset + kBaiduStdHeaderSize, meta_size));
      bytes += payload;
      bytes += attachment;
      outcome.frames.push_back(std::move(bytes));
      offset += consumed;
      outcome.consumed += consumed;
      promised = 0;
      if (check_payloads) CheckFramePayload(std::move(frame));
      if ((outcome.frames.size() & 3) == 0) in.Release();
    }
  }
  return outcome;
}

// Chunk sizes from a PRNG seeded with a hash of the input: sizes of 1 byte to
// 4 KiB, mostly small.
std::vector<size_t> DerivedChunks(absl::string_view data) {
  uint64_t state = 0xcbf29ce484222325ull;
  for (unsigned char c : data) state = (state ^ c) * 0x100000001b3ull;
  std::vector<size_t> chunks;
  size_t left = data.size();
  while (left > 0) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    const size_t limit = size_t{1} << (state % 13);  // 1 .. 4096
    const size_t size = std::min(left, 1 + (state >> 16) % limit);
    chunks.push_back(size);
    left -= size;
  }
  return chunks;
}

}  // namespace
}  // namespace nprpc::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  using nprpc::fuzz::DecodeStream;
  const absl::string_view data(reinterpret_cast<const char*>(bytes), size);
  const nprpc::fuzz::Outcome whole =
      DecodeStream(data, std::vector<size_t>{size}, /*check_payloads=*/true);
  const nprpc::fuzz::Outcome derived =
      DecodeStream(data, nprpc::fuzz::DerivedChunks(data), /*check_payloads=*/false);
  FUZZ_CHECK(derived == whole) << "chunking changed the outcome: " << derived.frames.size()
                               << " vs " << whole.frames.size() << " frames, error "
                               << derived.error << " vs " << whole.error;
  if (size <= 256) {
    const nprpc::fuzz::Outcome bytewise =
        DecodeStream(data, std::vector<size_t>(size, 1), /*check_payloads=*/false);
    FUZZ_CHECK(bytewise == whole) << "byte-by-byte changed the outcome: " << bytewise.frames.size()
                                  << " vs " << whole.frames.size() << " frames, error "
                                  << bytewise.error << " vs " << whole.error;
  }
  return 0;
}
