#include "rpc/internal/grpc_wire.h"

#include <algorithm>
#include <array>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace nprpc {
namespace grpc_wire {

bool IsGrpcContentType(absl::string_view content_type) {
  const absl::string_view kPrefix = kContentType;
  if (!absl::StartsWithIgnoreCase(content_type, kPrefix)) return false;
  absl::string_view rest = content_type.substr(kPrefix.size());
  if (rest.empty() || rest[0] == ';') return true;
  if (rest[0] != '+') return false;
  rest.remove_prefix(1);
  const absl::string_view subtype = rest.substr(0, rest.find(';'));
  return absl::EqualsIgnoreCase(subtype, "proto");
}

void AppendMessage(netpoll::LinkBuffer message, bool compressed, netpoll::LinkBuffer& out) {
  const size_t size = message.Len();
  const std::array<char, kPrefixSize> prefix = {
      static_cast<char>(compressed ? 1 : 0), static_cast<char>((size >> 24) & 0xff),
      static_cast<char>((size >> 16) & 0xff), static_cast<char>((size >> 8) & 0xff),
      static_cast<char>(size & 0xff)};
  out.WriteBinary(absl::string_view(prefix.data(), prefix.size()));
  out.Append(std::move(message));
}

absl::Status MessageDeframer::Next(std::optional<Message>& out) {
  out.reset();
  if (!error_.ok()) return error_;
  if (input_.Len() < kPrefixSize) return absl::OkStatus();
  std::array<char, kPrefixSize> prefix;
  input_.PeekCopy(kPrefixSize, prefix.data());
  const auto flag = static_cast<uint8_t>(prefix[0]);
  if (flag > 1) {
    error_ = absl::InternalError(
        absl::StrCat("gRPC message with compressed flag ", flag, " (only 0 and 1 exist)"));
    return error_;
  }
  const uint64_t size = (uint64_t{static_cast<uint8_t>(prefix[1])} << 24) |
                        (uint64_t{static_cast<uint8_t>(prefix[2])} << 16) |
                        (uint64_t{static_cast<uint8_t>(prefix[3])} << 8) |
                        uint64_t{static_cast<uint8_t>(prefix[4])};
  if (size > max_message_size_) {
    error_ = absl::ResourceExhaustedError(absl::StrCat(
        "gRPC message of ", size, " bytes is larger than the maximum of ", max_message_size_));
    return error_;
  }
  if (input_.Len() < kPrefixSize + size) return absl::OkStatus();
  (void)input_.Skip(kPrefixSize);
  absl::StatusOr<netpoll::LinkBuffer> payload = input_.Slice(static_cast<size_t>(size));
  if (!payload.ok()) {
    error_ = payload.status();
    return error_;
  }
  out.emplace();
  out->compressed = flag == 1;
  out->payload = *std::move(payload);
  return absl::OkStatus();
}

std::optional<absl::Duration> ParseTimeout(absl::string_view value) {
  if (value.size() < 2 || value.size() > 9) return std::nullopt;
  const char unit = value.back();
  const absl::string_view digits = value.substr(0, value.size() - 1);
  for (char c : digits) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return std::nullopt;
  }
  int64_t n = 0;
  if (!absl::SimpleAtoi(digits, &n)) return std::nullopt;
  switch (unit) {
    case 'H':
      return absl::Hours(n);
    case 'M':
      return absl::Minutes(n);
    case 'S':
      return absl::Seconds(n);
    case 'm':
      return absl::Milliseconds(n);
    case 'u':
      return absl::Microseconds(n);
    case 'n':
      return absl::Nanoseconds(n);
    default:
      return std::nullopt;
  }
}

std::string FormatTimeout(absl::Duration timeout) {
  constexpr int64_t kMax = 99999999;  // 8 digits
  if (timeout <= absl::ZeroDuration()) return "1n";
  struct Unit {
    absl::Duration unit;
    char name;
  };
  // Finest first: the first unit whose count fits in 8 digits, rounded up
  // so a deadline is never sent shorter than it is.
  const Unit kUnits[] = {{absl::Nanoseconds(1), 'n'},  {absl::Microseconds(1), 'u'},
                         {absl::Milliseconds(1), 'm'}, {absl::Seconds(1), 'S'},
                         {absl::Minutes(1), 'M'},      {absl::Hours(1), 'H'}};
  for (const Unit& u : kUnits) {
    absl::Duration rest;
    int64_t n = absl::IDivDuration(timeout, u.unit, &rest);
    if (rest > absl::ZeroDuration()) ++n;
    if (n <= kMax) return absl::StrCat(n, std::string(1, u.name));
  }
  return absl::StrCat(kMax, "H");
}

absl::StatusCode StatusCodeFromGrpc(absl::string_view grpc_status) {
  int code = 0;
  if (!absl::SimpleAtoi(grpc_status, &code) || code < 0 || code > 16) {
    return absl::StatusCode::kUnknown;
  }
  return static_cast<absl::StatusCode>(code);
}

std::string PercentEncode(absl::string_view message) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(message.size());
  for (char c : message) {
    const auto b = static_cast<unsigned char>(c);
    if (b >= 0x20 && b <= 0x7e && b != '%') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[b >> 4]);
      out.push_back(kHex[b & 0xf]);
    }
  }
  return out;
}

namespace {
int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

std::string PercentDecode(absl::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (size_t i = 0; i < value.size(); ++i) {
    if (value[i] == '%' && i + 2 < value.size()) {
      const int hi = HexValue(value[i + 1]);
      const int lo = HexValue(value[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(value[i]);
  }
  return out;
}

bool IsBinaryKey(absl::string_view key) { return absl::EndsWith(key, "-bin"); }

std::string EncodeBinaryValue(absl::string_view bytes) {
  std::string out = absl::Base64Escape(bytes);
  while (!out.empty() && out.back() == '=') out.pop_back();
  return out;
}

absl::StatusOr<std::string> DecodeBinaryValue(absl::string_view value) {
  std::string padded(value);
  while (padded.size() % 4 != 0) padded.push_back('=');
  std::string out;
  if (!absl::Base64Unescape(padded, &out)) {
    return absl::InvalidArgumentError(
        absl::StrCat("binary metadata value is not base64: \"", value.substr(0, 64), "\""));
  }
  return out;
}

bool IsReservedHeader(absl::string_view key) {
  if (key.empty() || key[0] == ':') return true;
  if (absl::StartsWith(key, "grpc-")) return true;
  return key == "content-type" || key == "te" || key == "user-agent" || key == "content-length" ||
         key == "connection" || key == "host" || key == "accept-encoding" ||
         key == "content-encoding" || key == "transfer-encoding" || key == "keep-alive" ||
         key == "upgrade" || key == "proxy-connection";
}

bool IsValidMetadataKey(absl::string_view key) {
  return !key.empty() && std::ranges::all_of(key, [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
  });
}

std::optional<CompressType> EncodingFromName(absl::string_view name) {
  if (name == "identity" || name.empty()) return CompressType::kNone;
  if (name == "gzip") return CompressType::kGzip;
  if (name == "deflate") return CompressType::kZlib;
  return std::nullopt;
}

absl::string_view EncodingName(CompressType type) {
  switch (type) {
    case CompressType::kGzip:
      return "gzip";
    case CompressType::kZlib:
      return "deflate";
    case CompressType::kNone:
    case CompressType::kSnappy:
      break;
  }
  return "identity";
}

}  // namespace grpc_wire
}  // namespace nprpc
