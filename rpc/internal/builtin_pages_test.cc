#include "rpc/internal/builtin_pages.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "rpc/internal/http_message.h"
#include "rpc/internal/testing/promtool_check.h"
#include "rpc/metrics.h"
#include "rpc/tracing.h"

namespace nprpc {
namespace {

class BuiltinPagesTest : public ::testing::Test {
 protected:
  BuiltinPagesTest() {
    BuiltinPages::Source source;
    source.serving = [this] { return serving_; };
    source.stats = [] {
      ServerStats stats;
      stats.connections = 2;
      stats.total.received = 10;
      stats.methods["pages.TestService/Ping"] = MethodStats{};
      return stats;
    };
    source.listen_address = [] { return std::string("127.0.0.1:8000"); };
    source.connections = [] {
      BuiltinPages::ConnectionRow row;
      row.peer = "127.0.0.1:5555";
      row.protocol = "baidu_std";
      row.created_at = absl::Now() - absl::Seconds(75);
      row.bytes_read = 2048;
      row.calls_in_flight = 3;
      return std::vector<BuiltinPages::ConnectionRow>{row};
    };
    source.started_at = absl::Now() - absl::Hours(2);
    pages_ = std::make_unique<BuiltinPages>(std::move(source));
  }

  HttpResponse Get(const std::string& path, const std::string& query = "") {
    HttpRequest request;
    request.method = "GET";
    request.path = path;
    request.query = query;
    HttpResponse response;
    EXPECT_TRUE(pages_->Serve(request, response)) << path;
    return response;
  }

  bool serving_ = true;
  std::unique_ptr<BuiltinPages> pages_;
};

TEST_F(BuiltinPagesTest, HealthIs200WhileServingAnd503WhileShuttingDown) {
  HttpResponse r = Get("/health");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "OK\n");
  serving_ = false;
  r = Get("/health");
  EXPECT_EQ(r.status, 503);
}

TEST_F(BuiltinPagesTest, UnknownPathsAreNotPages) {
  HttpRequest request;
  request.method = "GET";
  request.path = "/nope";
  HttpResponse response;
  EXPECT_FALSE(pages_->Serve(request, response));
}

TEST_F(BuiltinPagesTest, MetricsAreValidPrometheusText) {
  MethodMetrics* m =
      MetricsRegistry::Default().Method(MetricsSide::kServer, "pages.TestService", "Ping");
  m->OnStart();
  m->OnEnd(0, absl::Microseconds(250), 10, 20);
  HttpResponse r = Get("/metrics");
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(absl::StartsWith(r.content_type, "text/plain; version=0.0.4")) << r.content_type;
  EXPECT_TRUE(
      absl::StrContains(r.body, "nprpc_server_requests_total{method=\"pages.TestService/Ping\"}"))
      << r.body;
  EXPECT_TRUE(absl::StrContains(r.body, "process_resident_memory_bytes")) << r.body;
  EXPECT_TRUE(testing::PromtoolCheck(r.body).ok()) << testing::PromtoolCheck(r.body);
}

TEST_F(BuiltinPagesTest, StatusShowsServerFactsAndMethodFigures) {
  MethodMetrics* m =
      MetricsRegistry::Default().Method(MetricsSide::kServer, "pages.TestService", "Ping");
  m->OnStart();
  m->OnEnd(0, absl::Milliseconds(3), 10, 20);
  HttpResponse r = Get("/status");
  EXPECT_EQ(r.content_type, "text/html; charset=utf-8");
  for (const char* want : {"127.0.0.1:8000", "serving", "Uptime", "2h 0m", "pages.TestService/Ping",
                           "2 open", "Version"}) {
    EXPECT_TRUE(absl::StrContains(r.body, want)) << want;
  }
}

TEST_F(BuiltinPagesTest, ConnectionsListPeerProtocolAgeBytesAndCalls) {
  HttpResponse html = Get("/connections");
  for (const char* want : {"127.0.0.1:5555", "baidu_std", "1m 15s", "2.0 KiB"}) {
    EXPECT_TRUE(absl::StrContains(html.body, want)) << want << "\n" << html.body;
  }
  HttpResponse json = Get("/connections", "format=json");
  EXPECT_TRUE(absl::StrContains(json.body, R"("peer":"127.0.0.1:5555","protocol":"baidu_std")"))
      << json.body;
  EXPECT_TRUE(absl::StrContains(json.body, R"("calls_in_flight":3)")) << json.body;
}

TEST_F(BuiltinPagesTest, RpczShowsRecentSpansAndFiltersByTrace) {
  SpanStore::Default().Clear();
  for (int64_t trace : {0x11, 0x22}) {
    Span span;
    span.trace_id = trace;
    span.span_id = trace + 1;
    span.method = "pages.TestService/Ping";
    span.start = absl::Now();
    span.annotations.emplace_back(span.start, "<cache> miss");
    SpanStore::Default().Add(std::move(span));
  }
  HttpResponse all = Get("/rpcz");
  EXPECT_TRUE(absl::StrContains(all.body, "0000000000000011"));
  EXPECT_TRUE(absl::StrContains(all.body, "0000000000000022"));
  EXPECT_TRUE(absl::StrContains(all.body, "&lt;cache&gt; miss"));  // escaped
  HttpResponse one = Get("/rpcz", "trace_id=0000000000000022&format=json");
  EXPECT_EQ(one.content_type, "application/x-ndjson");
  EXPECT_TRUE(absl::StrContains(one.body, "\"span_id\":\"0000000000000023\"")) << one.body;
  EXPECT_FALSE(absl::StrContains(one.body, "0000000000000011")) << one.body;
  SpanStore::Default().Clear();
}

}  // namespace
}  // namespace nprpc
