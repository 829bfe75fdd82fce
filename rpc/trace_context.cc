#include "rpc/trace_context.h"

#include <cstdint>
#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"

namespace nprpc {
namespace {

// Lower-case hex of exactly `digits` characters, into `out`.
bool ParseHex(absl::string_view text, size_t digits, uint64_t& out) {
  if (text.size() != digits) return false;
  out = 0;
  for (char c : text) {
    int v;
    if (c >= '0' && c <= '9') {
      v = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      v = c - 'a' + 10;
    } else {
      return false;  // the spec allows lower case only
    }
    out = (out << 4) | static_cast<uint64_t>(v);
  }
  return true;
}

}  // namespace

std::optional<TraceContext> ParseTraceparent(absl::string_view value) {
  value = absl::StripAsciiWhitespace(value);
  // version(2) - trace-id(32) - parent-id(16) - flags(2)
  if (value.size() < 55 || value[2] != '-' || value[35] != '-' || value[52] != '-') {
    return std::nullopt;
  }
  uint64_t version, high, low, parent, flags;
  if (!ParseHex(value.substr(0, 2), 2, version) || version == 0xff) return std::nullopt;
  // Version 00 is exactly 55 characters; later versions may append fields.
  if (version == 0 && value.size() != 55) return std::nullopt;
  if (version != 0 && value.size() > 55 && value[55] != '-') return std::nullopt;
  if (!ParseHex(value.substr(3, 16), 16, high) || !ParseHex(value.substr(19, 16), 16, low) ||
      !ParseHex(value.substr(36, 16), 16, parent) || !ParseHex(value.substr(53, 2), 2, flags)) {
    return std::nullopt;
  }
  if ((high == 0 && low == 0) || parent == 0) return std::nullopt;
  TraceContext trace;
  trace.trace_id_high = static_cast<int64_t>(high);
  trace.trace_id = static_cast<int64_t>(low);
  trace.span_id = static_cast<int64_t>(parent);
  trace.sampled = (flags & 1) != 0;
  return trace;
}

std::string FormatTraceparent(const TraceContext& trace) {
  if (!trace.trace_id || !trace.span_id) return std::string();
  return absl::StrFormat(
      "00-%016x%016x-%016x-%02x", static_cast<uint64_t>(trace.trace_id_high.value_or(0)),
      static_cast<uint64_t>(*trace.trace_id), static_cast<uint64_t>(*trace.span_id),
      trace.sampled.value_or(false) ? 1 : 0);
}

int64_t NewTraceId() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  uint64_t id;
  do {
    id = rng();
  } while (id == 0 || static_cast<int64_t>(id) < 0);  // positive: brpc prints them signed
  return static_cast<int64_t>(id);
}

}  // namespace nprpc
