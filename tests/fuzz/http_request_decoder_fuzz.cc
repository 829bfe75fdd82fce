// Fuzz target: HttpRequestDecoder (our glue around http_parser) fed
// arbitrary bytes in arbitrary chunkings.
//
// The input is one byte stream, decoded three times: as one chunk, one byte
// at a time (inputs up to 256 bytes), and in chunk sizes drawn from a PRNG
// seeded with a hash of the input; chunks alternately enter the buffer by
// copy, by Malloc()/MallocAck() and by Append() of another LinkBuffer, so the
// decoder sees different block layouts. Small limits (512 header bytes,
// 1 KiB bodies) put them within reach. Invariants:
//   - never crash; need_more consumes nothing and has fed every byte of the
//     input (the partial request's bytes are all at the input's head);
//   - a request consumes at least one byte and no more than was fed; its
//     body is within the limit, its method, target and headers within the
//     header limit; the partial request never holds more than the limits;
//   - a request depends on its own bytes only: a fresh decoder on exactly
//     the bytes it consumed yields the same request and consumes them all;
//   - an error has an HTTP status of 400, 413, 431 or 505, is final (the
//     same error again, nothing consumed), and every chunking gives the same
//     requests and the same error.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "netpoll/link_buffer.h"
#include "rpc/internal/http_message.h"
#include "rpc/internal/http_request_decoder.h"
#include "tests/fuzz/fuzz_check.h"

namespace nprpc::fuzz {
namespace {

constexpr HttpRequestDecoderOptions kOptions{.max_header_bytes = 512, .max_body_bytes = 1024};

// A request as one comparable string.
std::string Describe(const HttpRequest& r) {
  std::string out = absl::StrCat(r.method, " ", r.target, " [", r.path, "] [", r.query, "] ",
                                 r.version_major, ".", r.version_minor, " ", r.keep_alive, "\n");
  for (const HttpHeaders::Field& f : r.headers.fields()) {
    absl::StrAppend(&out, f.name.size(), ":", f.name, "=", f.value.size(), ":", f.value, "\n");
  }
  absl::StrAppend(&out, r.body.size(), ":", r.body);
  return out;
}

struct Outcome {
  std::vector<std::string> requests;
  int error = 0;  // HTTP status of the final error, 0 for none
  size_t consumed = 0;

  bool operator==(const Outcome& o) const {
    return requests == o.requests && error == o.error && consumed == o.consumed;
  }
};

void Feed(netpoll::LinkBuffer& in, absl::string_view chunk, size_t index) {
  switch (index % 3) {
    case 0:
      in.WriteBinary(chunk);
      break;
    case 1: {
      absl::Span<char> room = in.Malloc(chunk.size() + 3);
      std::memcpy(room.data(), chunk.data(), chunk.size());
      in.MallocAck(chunk.size());
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

// A fresh decoder on exactly `bytes` yields `expected` and consumes them.
void CheckSelfContained(absl::string_view bytes, const std::string& expected) {
  HttpRequestDecoder decoder(kOptions);
  netpoll::LinkBuffer in;
  in.WriteBinary(bytes);
  HttpDecodeResult r = decoder.Decode(in);
  FUZZ_CHECK(r.has_request()) << "the bytes of a request alone do not decode to it";
  FUZZ_CHECK(Describe(r.TakeRequest()) == expected) << "a request depends on bytes around it";
  FUZZ_CHECK(in.empty()) << in.Len() << " bytes left";
}

Outcome DecodeStream(absl::string_view data, const std::vector<size_t>& chunks,
                     bool check_self_contained) {
  HttpRequestDecoder decoder(kOptions);
  Outcome outcome;
  netpoll::LinkBuffer in;
  size_t fed = 0;
  for (size_t i = 0; i < chunks.size() && outcome.error == 0; ++i) {
    Feed(in, data.substr(fed, chunks[i]), i);
    fed += chunks[i];
    for (;;) {
      const size_t before = in.Len();
      FUZZ_CHECK(outcome.consumed + before == fed);
      HttpDecodeResult r = decoder.Decode(in);
      FUZZ_CHECK(decoder.pending_bytes() <= decoder.max_request_bytes());
      FUZZ_CHECK(decoder.held_bytes() <= kOptions.max_header_bytes + kOptions.max_body_bytes)
          << decoder.held_bytes();
      if (r.need_more()) {
        FUZZ_CHECK(in.Len() == before) << "need_more consumed bytes";
        FUZZ_CHECK(decoder.pending_bytes() == before)
            << "need_more with unfed bytes: " << decoder.pending_bytes() << " of " << before;
        break;
      }
      if (r.is_error()) {
        const int status = r.http_status();
        FUZZ_CHECK(status == 400 || status == 413 || status == 431 || status == 505) << status;
        FUZZ_CHECK(!r.status().ok());
        FUZZ_CHECK(in.Len() == before) << "an error consumed bytes";
        HttpDecodeResult again = decoder.Decode(in);
        FUZZ_CHECK(again.is_error() && again.http_status() == status) << "an error is not final";
        FUZZ_CHECK(in.Len() == before);
        outcome.error = status;
        break;
      }
      FUZZ_CHECK(r.has_request());
      const size_t consumed = before - in.Len();
      FUZZ_CHECK(consumed > 0 && consumed <= before) << consumed;
      HttpRequest request = r.TakeRequest();
      FUZZ_CHECK(request.body.size() <= kOptions.max_body_bytes) << request.body.size();
      size_t head = request.method.size() + request.target.size();
      for (const HttpHeaders::Field& f : request.headers.fields()) {
        head += f.name.size() + f.value.size();
      }
      FUZZ_CHECK(head <= kOptions.max_header_bytes) << head;
      FUZZ_CHECK(request.version_major == 1) << request.version_major;
      FUZZ_CHECK(consumed <= decoder.max_request_bytes());
      std::string described = Describe(request);
      if (check_self_contained) {
        CheckSelfContained(data.substr(outcome.consumed, consumed), described);
      }
      outcome.requests.push_back(std::move(described));
      outcome.consumed += consumed;
      if ((outcome.requests.size() & 3) == 0) in.Release();
    }
  }
  return outcome;
}

std::vector<size_t> DerivedChunks(absl::string_view data) {
  uint64_t state = 0xcbf29ce484222325ull;
  for (unsigned char c : data) state = (state ^ c) * 0x100000001b3ull;
  std::vector<size_t> chunks;
  size_t left = data.size();
  while (left > 0) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    const size_t limit = size_t{1} << (state % 11);  // 1 .. 1024
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
  using nprpc::fuzz::Outcome;
  const absl::string_view data(reinterpret_cast<const char*>(bytes), size);
  const Outcome whole =
      DecodeStream(data, std::vector<size_t>{size}, /*check_self_contained=*/true);
  const Outcome derived =
      DecodeStream(data, nprpc::fuzz::DerivedChunks(data), /*check_self_contained=*/false);
  FUZZ_CHECK(derived == whole) << "chunking changed the outcome: " << derived.requests.size()
                               << " vs " << whole.requests.size() << " requests, error "
                               << derived.error << " vs " << whole.error;
  if (size <= 256) {
    const Outcome bytewise =
        DecodeStream(data, std::vector<size_t>(size, 1), /*check_self_contained=*/false);
    FUZZ_CHECK(bytewise == whole) << "byte-by-byte changed the outcome: "
                                  << bytewise.requests.size() << " vs " << whole.requests.size()
                                  << " requests, error " << bytewise.error << " vs " << whole.error;
  }
  return 0;
}
