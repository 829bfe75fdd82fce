#include "rpc/internal/builtin_pages.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "rpc/internal/json_quote.h"
#include "rpc/internal/process_metrics.h"
#include "rpc/metrics.h"
#include "rpc/tracing.h"
#include "rpc/version.h"

namespace nprpc {
namespace {

constexpr char kHtml[] = "text/html; charset=utf-8";
constexpr char kJsonLines[] = "application/x-ndjson";
constexpr size_t kDefaultSpans = 200;
constexpr size_t kMaxSpans = 5000;

// The value of `key` in a query string ("a=1&b=2"); empty when absent. Values
// here are ids and numbers, so no percent-decoding is needed.
std::string QueryValue(absl::string_view query, absl::string_view key) {
  for (absl::string_view pair : absl::StrSplit(query, '&')) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(pair, absl::MaxSplits('=', 1));
    if (kv.first == key) return std::string(kv.second);
  }
  return std::string();
}

std::string Escape(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// "1.25 ms", "830 us", "2.1 s".
std::string Latency(absl::Duration d) {
  const double us = absl::ToDoubleMicroseconds(d);
  if (us <= 0) return "-";
  if (us < 1000) return absl::StrFormat("%.0f us", us);
  if (us < 1000000) return absl::StrFormat("%.2f ms", us / 1000);
  return absl::StrFormat("%.2f s", us / 1000000);
}

// "3d 4h", "2h 5m", "4m 10s", "12s".
std::string Age(absl::Duration d) {
  const int64_t s = absl::ToInt64Seconds(d);
  if (s >= 86400) return absl::StrFormat("%dd %dh", s / 86400, s % 86400 / 3600);
  if (s >= 3600) return absl::StrFormat("%dh %dm", s / 3600, s % 3600 / 60);
  if (s >= 60) return absl::StrFormat("%dm %ds", s / 60, s % 60);
  return absl::StrFormat("%ds", s);
}

std::string Bytes(double n) {
  if (n < 1024) return absl::StrFormat("%.0f B", n);
  if (n < 1024 * 1024) return absl::StrFormat("%.1f KiB", n / 1024);
  if (n < 1024.0 * 1024 * 1024) return absl::StrFormat("%.1f MiB", n / (1024 * 1024));
  return absl::StrFormat("%.2f GiB", n / (1024.0 * 1024 * 1024));
}

std::string PageHead(absl::string_view title) {
  return absl::StrCat(
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width\"><title>",
      Escape(title),
      "</title><style>"
      "body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}"
      "h1{font-size:1.4em;margin-bottom:.2em}h2{font-size:1.1em;margin-top:1.5em}"
      "nav a{margin-right:1em}"
      "table{border-collapse:collapse;margin-top:.5em}"
      "th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right}"
      "th{background:#f0f0f0}td.l,th.l{text-align:left}"
      ".ok{color:#060}.bad{color:#b00}dl{display:grid;grid-template-columns:max-content auto;"
      "gap:.2em 1em}dt{font-weight:bold}dd{margin:0}"
      "</style></head><body>\n<nav><a href=\"/status\">status</a><a href=\"/metrics\">metrics</a>"
      "<a href=\"/rpcz\">rpcz</a><a href=\"/connections\">connections</a>"
      "<a href=\"/health\">health</a></nav>\n");
}

}  // namespace

bool BuiltinPages::Serve(const HttpRequest& request, HttpResponse& response) const {
  const absl::string_view path = request.path;
  if (path == "/health") {
    Health(response);
  } else if (path == "/metrics") {
    Metrics(response);
  } else if (path == "/status") {
    Status(response);
  } else if (path == "/rpcz") {
    Rpcz(request, response);
  } else if (path == "/connections") {
    Connections(request, response);
  } else if (path == "/") {
    Index(response);
  } else {
    return false;
  }
  // Pages show the state now: never from a cache.
  response.headers.Add("Cache-Control", "no-store");
  return true;
}

void BuiltinPages::Health(HttpResponse& response) const {
  const bool serving = source_.serving();
  response.status = serving ? 200 : 503;
  response.content_type = "text/plain; charset=utf-8";
  response.body = serving ? "OK\n" : "shutting down\n";
}

void BuiltinPages::Metrics(HttpResponse& response) const {
  response.content_type = "text/plain; version=0.0.4; charset=utf-8";
  response.body = MetricsRegistry::Default().ExportPrometheus();
}

void BuiltinPages::Status(HttpResponse& response) const {
  const ServerStats stats = source_.stats();
  const std::string address = source_.listen_address();
  const bool serving = source_.serving();
  std::string& out = response.body;
  out = PageHead(absl::StrCat("nprpc ", address));
  absl::StrAppend(&out, "<h1>nprpc server ", Escape(address), "</h1>\n<dl>");
  auto item = [&](absl::string_view name, absl::string_view value) {
    absl::StrAppend(&out, "<dt>", name, "</dt><dd>", value, "</dd>");
  };
  item("State",
       serving ? "<span class=\"ok\">serving</span>" : "<span class=\"bad\">shutting down</span>");
  item("Version", NPRPC_VERSION_STRING);
  item("Uptime", Age(absl::Now() - source_.started_at));
  if (absl::StatusOr<ProcessMetrics> process = ReadProcessMetrics(); process.ok()) {
    item("Process",
         absl::StrFormat("%.1f s CPU, %s resident, %d threads, %d open fds", process->cpu_seconds,
                         Bytes(static_cast<double>(process->resident_memory_bytes)),
                         process->threads, process->open_fds));
  }
  item("Connections",
       absl::StrCat(stats.connections, " open, ", stats.connections_accepted, " accepted"));
  item("Requests",
       absl::StrCat(stats.total.received, " received, ", stats.total.succeeded, " succeeded, ",
                    stats.total.failed, " failed, ", stats.total.in_flight, " in flight"));
  item("Traffic", absl::StrCat(Bytes(static_cast<double>(stats.bytes_read)), " in, ",
                               Bytes(static_cast<double>(stats.bytes_written)), " out"));
  item("Memory held for peers",
       absl::StrCat(Bytes(static_cast<double>(stats.memory_held_bytes)), " of ",
                    Bytes(static_cast<double>(stats.memory_budget_bytes))));
  absl::StrAppend(&out, "</dl>\n<h2>Methods</h2>\n",
                  "<table id=\"methods\"><tr><th class=\"l\">Method</th><th>QPS</th>"
                  "<th>p50</th><th>p90</th><th>p99</th><th>p999</th><th>Requests</th>"
                  "<th>Errors</th><th>In flight</th></tr>\n");
  // The process-wide metrics of this server's methods (latency over the
  // last 10 s).
  std::vector<std::pair<std::string, MethodMetrics::Snapshot>> all =
      MetricsRegistry::Default().Methods(MetricsSide::kServer);
  for (const auto& entry : stats.methods) {
    const std::string& name = entry.first;
    auto it = std::find_if(all.begin(), all.end(), [&](const auto& m) { return m.first == name; });
    if (it == all.end()) continue;
    const MethodMetrics::Snapshot& m = it->second;
    absl::StrAppend(&out, "<tr><td class=\"l\">", Escape(name), "</td><td>",
                    absl::StrFormat("%.1f", m.qps), "</td><td>", Latency(m.p50), "</td><td>",
                    Latency(m.p90), "</td><td>", Latency(m.p99), "</td><td>", Latency(m.p999),
                    "</td><td>", m.requests, "</td><td", m.errors > 0 ? " class=\"bad\"" : "", ">",
                    m.errors, "</td><td>", m.in_flight, "</td></tr>\n");
  }
  absl::StrAppend(&out, "</table>\n</body></html>\n");
  response.content_type = kHtml;
}

void BuiltinPages::Rpcz(const HttpRequest& request, HttpResponse& response) const {
  size_t limit = kDefaultSpans;
  if (std::string v = QueryValue(request.query, "limit"); !v.empty()) {
    if (!absl::SimpleAtoi(v, &limit)) limit = kDefaultSpans;
    limit = std::min(limit, kMaxSpans);
  }
  uint64_t trace = 0;
  if (std::string v = QueryValue(request.query, "trace_id"); !v.empty()) {
    // The low 64 bits of a 32-digit W3C id, or a 16-digit brpc id.
    if (v.size() > 16) v = v.substr(v.size() - 16);
    if (!absl::SimpleHexAtoi(v, &trace)) trace = 0;
  }
  const std::vector<Span> spans = SpanStore::Default().Recent(limit, static_cast<int64_t>(trace));
  if (QueryValue(request.query, "format") == "json") {
    response.content_type = kJsonLines;
    for (const Span& span : spans) absl::StrAppend(&response.body, span.ToJson(), "\n");
    return;
  }
  std::string& out = response.body;
  out = PageHead("nprpc rpcz");
  absl::StrAppend(
      &out, "<h1>Recent spans</h1><p>", spans.size(), " shown, newest first; sampled calls only (",
      SpanStore::Default().recorded(),
      " recorded since start). "
      "<a href=\"/rpcz?format=json\">JSON lines</a></p>\n"
      "<table id=\"spans\"><tr><th class=\"l\">Start (UTC)</th><th class=\"l\">Trace</th>"
      "<th class=\"l\">Span</th><th class=\"l\">Parent</th><th class=\"l\">Kind</th>"
      "<th class=\"l\">Method</th><th class=\"l\">Peer</th><th>Duration</th>"
      "<th>Status</th><th>Request</th><th>Response</th>"
      "<th class=\"l\">Annotations</th></tr>\n");
  for (const Span& s : spans) {
    const std::string trace_hex = absl::StrFormat("%016x", static_cast<uint64_t>(s.trace_id));
    std::string notes;
    for (const auto& [when, text] : s.annotations) {
      absl::StrAppend(&notes, notes.empty() ? "" : "<br>", "+", Latency(when - s.start), " ",
                      Escape(text));
    }
    absl::StrAppend(
        &out, R"(<tr><td class="l">)", absl::FormatTime("%H:%M:%E6S", s.start, absl::UTCTimeZone()),
        R"(</td><td class="l"><a href="/rpcz?trace_id=)", trace_hex, R"(">)", trace_hex,
        R"(</a></td><td class="l">)", absl::StrFormat("%016x", static_cast<uint64_t>(s.span_id)),
        "</td><td class=\"l\">",
        s.parent_span_id == 0 ? "-"
                              : absl::StrFormat("%016x", static_cast<uint64_t>(s.parent_span_id)),
        "</td><td class=\"l\">", s.kind == Span::Kind::kServer ? "server" : "client",
        "</td><td class=\"l\">", Escape(s.method), "</td><td class=\"l\">", Escape(s.peer),
        "</td><td>", Latency(s.duration), "</td><td",
        s.error_code == 0
            ? ">OK"
            : absl::StrCat(R"( class="bad" title=")", Escape(s.error_text), R"(">E)", s.error_code),
        "</td><td>", s.request_bytes, "</td><td>", s.response_bytes, R"(</td><td class="l">)",
        notes, "</td></tr>\n");
  }
  absl::StrAppend(&out, "</table>\n</body></html>\n");
  response.content_type = kHtml;
}

void BuiltinPages::Connections(const HttpRequest& request, HttpResponse& response) const {
  std::vector<ConnectionRow> rows = source_.connections();
  std::sort(rows.begin(), rows.end(), [](const ConnectionRow& a, const ConnectionRow& b) {
    return a.created_at < b.created_at;
  });
  const absl::Time now = absl::Now();
  if (QueryValue(request.query, "format") == "json") {
    response.content_type = kJsonLines;
    for (const ConnectionRow& r : rows) {
      absl::StrAppend(&response.body, R"({"peer":)", JsonQuote(r.peer), R"(,"protocol":)",
                      JsonQuote(r.protocol), R"(,"age_seconds":)",
                      absl::ToInt64Seconds(now - r.created_at), R"(,"bytes_read":)", r.bytes_read,
                      R"(,"bytes_written":)", r.bytes_written, R"(,"calls_in_flight":)",
                      r.calls_in_flight, "}\n");
    }
    return;
  }
  std::string& out = response.body;
  out = PageHead("nprpc connections");
  absl::StrAppend(&out, "<h1>Connections</h1><p>", rows.size(), " open</p>\n",
                  "<table id=\"connections\"><tr><th class=\"l\">Peer</th>"
                  "<th class=\"l\">Protocol</th><th>Age</th><th>Read</th><th>Written</th>"
                  "<th>In flight</th></tr>\n");
  for (const ConnectionRow& r : rows) {
    absl::StrAppend(&out, "<tr><td class=\"l\">", Escape(r.peer), "</td><td class=\"l\">",
                    r.protocol.empty() ? "-" : Escape(r.protocol), "</td><td>",
                    Age(now - r.created_at), "</td><td>", Bytes(static_cast<double>(r.bytes_read)),
                    "</td><td>", Bytes(static_cast<double>(r.bytes_written)), "</td><td>",
                    r.calls_in_flight, "</td></tr>\n");
  }
  absl::StrAppend(&out, "</table>\n</body></html>\n");
  response.content_type = kHtml;
}

void BuiltinPages::Index(HttpResponse& response) const {
  response.body =
      absl::StrCat(PageHead("nprpc"), "<h1>nprpc server ", Escape(source_.listen_address()),
                   "</h1><p>Built-in pages: see the links above.</p></body></html>\n");
  response.content_type = kHtml;
}

}  // namespace nprpc
