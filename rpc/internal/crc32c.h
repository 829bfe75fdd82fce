// CRC32C (Castagnoli, reflected polynomial 0x82f63b78), the checksum of
// baidu_std's checksum_type 1, plus LevelDB's masking of a stored CRC.
//
//   uint32_t crc = nprpc::crc32c::Value(data, n);
//   crc = nprpc::crc32c::Extend(crc, more, m);       // over data then more
//   uint32_t on_wire = nprpc::crc32c::Mask(crc);     // what brpc sends
//
// Extend() makes it incremental, so a checksum can run over the chunks of a
// netpoll::LinkBuffer without flattening it. Uses the SSE4.2 crc32
// instruction when the CPU has it (checked once at run time), otherwise a
// slicing-by-8 table.
//
// Thread safety: pure functions, safe from any thread.
#ifndef RPC_INTERNAL_CRC32C_H_
#define RPC_INTERNAL_CRC32C_H_

#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"

namespace nprpc::crc32c {

// The CRC32C of data[0, n) appended to a stream whose CRC32C is init_crc.
uint32_t Extend(uint32_t init_crc, const char* data, size_t n);

inline uint32_t Extend(uint32_t init_crc, absl::string_view data) {
  return Extend(init_crc, data.data(), data.size());
}

// The CRC32C of data[0, n).
inline uint32_t Value(const char* data, size_t n) { return Extend(0, data, n); }
inline uint32_t Value(absl::string_view data) { return Extend(0, data.data(), data.size()); }

inline constexpr uint32_t kMaskDelta = 0xa282ead8u;

// A CRC that is stored next to the data it covers is masked, because a CRC of
// a string that contains embedded CRCs is weak (LevelDB's rule, used by brpc):
// rotate right by 15 bits, then add a constant.
inline constexpr uint32_t Mask(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + kMaskDelta; }

// The inverse of Mask().
inline constexpr uint32_t Unmask(uint32_t masked) {
  const uint32_t rot = masked - kMaskDelta;
  return (rot >> 17) | (rot << 15);
}

namespace crc32c_internal {
// The portable implementation, exposed so tests can compare it with the
// hardware path.
uint32_t ExtendPortable(uint32_t init_crc, const char* data, size_t n);
// True when Extend() uses the SSE4.2 instruction.
bool HasHardwareSupport();
}  // namespace crc32c_internal

}  // namespace nprpc::crc32c

#endif  // RPC_INTERNAL_CRC32C_H_
