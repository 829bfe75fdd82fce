#include "bench/load_report.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace bench {

namespace {

std::string JsonNumber(std::optional<double> value) {
  return value.has_value() ? absl::StrFormat("%.1f", *value) : "null";
}

std::string JsonInt(std::optional<int64_t> value) {
  return value.has_value() ? absl::StrCat(*value) : "null";
}

std::string Text(std::optional<double> value) {
  return value.has_value() ? absl::StrFormat("%.1f", *value) : "n/a";
}

std::string Text(std::optional<int64_t> value) {
  return value.has_value() ? absl::StrCat(*value) : "n/a";
}

// JSON string body: quotes, backslashes and control characters escaped.
std::string JsonEscape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      absl::StrAppendFormat(&out, "\\u%04x", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

}  // namespace

double LoadResult::qps() const {
  return duration_s > 0 ? static_cast<double>(requests) / duration_s : 0;
}

std::string FormatLoadText(const LoadResult& r) {
  std::string out = absl::StrFormat(
      "%s: server=%s connection_type=%s channels=%d concurrency=%d payload=%dB window=%.2fs\n",
      r.tool, r.server, r.connection_type, r.channels, r.concurrency, r.payload, r.window_s);
  absl::StrAppendFormat(&out, "  requests     %d (%.0f qps)\n", r.requests, r.qps());
  absl::StrAppendFormat(&out, "  latency us   p50 %.1f  p99 %.1f  p999 %.1f  max %.1f  mean %.1f\n",
                        r.p50_us, r.p99_us, r.p999_us, r.max_us, r.mean_us);
  if (r.first_error.empty()) {
    absl::StrAppendFormat(&out, "  errors       %d\n", r.errors);
  } else {
    absl::StrAppendFormat(&out, "  errors       %d (first: %s)\n", r.errors, r.first_error);
  }
  if (r.undrained > 0) {
    absl::StrAppendFormat(&out, "  undrained    %d calls never completed\n", r.undrained);
  }
  absl::StrAppendFormat(&out, "  client cpu   %.1f%% of one core\n", r.client_cpu_pct);
  absl::StrAppendFormat(&out, "  server cpu   %s%% of one core\n", Text(r.server_cpu_pct));
  absl::StrAppendFormat(&out, "  others' cpu  %s%% (rest of the machine during the window)\n",
                        Text(r.others_cpu_pct));
  absl::StrAppendFormat(&out, "  server rss   peak %s KiB, now %s KiB\n",
                        Text(r.server_peak_rss_kib), Text(r.server_rss_kib));
  return out;
}

std::string FormatLoadJson(const LoadResult& r) {
  return absl::StrFormat(
      "{\"tool\":\"%s\",\"server\":\"%s\",\"connection_type\":\"%s\",\"channels\":%d,"
      "\"concurrency\":%d,\"payload\":%d,\"warmup_s\":%.1f,\"duration_s\":%.2f,"
      "\"window_s\":%.2f,\"requests\":%d,\"qps\":%.0f,\"p50_us\":%.1f,\"p99_us\":%.1f,"
      "\"p999_us\":%.1f,\"max_us\":%.1f,\"mean_us\":%.1f,\"errors\":%d,\"undrained\":%d,"
      "\"client_cpu_pct\":%.1f,\"server_cpu_pct\":%s,\"others_cpu_pct\":%s,"
      "\"server_peak_rss_kib\":%s,\"server_rss_kib\":%s,\"first_error\":\"%s\"}\n",
      JsonEscape(r.tool), JsonEscape(r.server), JsonEscape(r.connection_type), r.channels,
      r.concurrency, r.payload, r.warmup_s, r.duration_s, r.window_s, r.requests, r.qps(), r.p50_us,
      r.p99_us, r.p999_us, r.max_us, r.mean_us, r.errors, r.undrained, r.client_cpu_pct,
      JsonNumber(r.server_cpu_pct), JsonNumber(r.others_cpu_pct), JsonInt(r.server_peak_rss_kib),
      JsonInt(r.server_rss_kib), JsonEscape(r.first_error));
}

std::string FormatProgress(double elapsed_s, const char* phase, double qps, int64_t errors,
                           int64_t outstanding) {
  return absl::StrFormat("[%6.1fs] %-7s qps=%-10.0f outstanding=%d errors=%d\n", elapsed_s, phase,
                         qps, outstanding, errors);
}

}  // namespace bench
