// The built-in pages of a running server, read by the programs operators
// use: curl, promtool, a real Prometheus server that scrapes /metrics, and
// headless Chromium rendering /status. tools/setup.sh installs them all.
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "netpoll/mutex.h"
#include "netpoll/testing/blocking_client.h"
#include "netpoll/testing/wait.h"
#include "proto/echo.pb.h"
#include "rpc/channel.h"
#include "rpc/errors.h"
#include "rpc/internal/testing/promtool_check.h"
#include "rpc/metrics.h"
#include "rpc/server.h"
#include "rpc/service.h"
#include "rpc/tracing.h"
#include "tests/harness/echo_service.h"
#include "tests/harness/subprocess.h"

namespace nprpc {
namespace {

using example::EchoRequest;
using example::EchoResponse;
using testing::BackgroundProcess;
using testing::CommandResult;
using testing::RunCommand;

constexpr absl::Duration kToolTimeout = absl::Seconds(60);

std::string TempDir() {
  const char* dir = std::getenv("TEST_TMPDIR");
  return dir != nullptr ? dir : "/tmp";
}

// The body of GET `url` (curl -sS -f), or the failure.
absl::StatusOr<std::string> Curl(const std::string& url) {
  absl::StatusOr<CommandResult> r = RunCommand({"curl", "-sS", "-f", url}, kToolTimeout);
  if (!r.ok()) return r.status();
  if (r->exit_code != 0) {
    return absl::UnavailableError(
        absl::StrCat("curl ", url, " exit ", r->exit_code, ": ", r->output));
  }
  return r->output;
}

// The HTTP status of GET `url`.
int CurlStatus(const std::string& url) {
  absl::StatusOr<CommandResult> r =
      RunCommand({"curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", url}, kToolTimeout);
  int code = 0;
  if (r.ok() && absl::SimpleAtoi(r->output, &code)) return code;
  return 0;
}

// Reads one HTTP answer (headers and a Content-Length body); its status.
absl::StatusOr<int> ReadHttpStatus(netpoll::testing::BlockingClient& client) {
  std::string head;
  while (!absl::EndsWith(head, "\r\n\r\n")) {
    absl::StatusOr<std::string> c = client.ReadExactly(1);
    if (!c.ok()) return c.status();
    head += *c;
  }
  size_t length = 0;
  for (absl::string_view line : absl::StrSplit(head, "\r\n")) {
    if (absl::StartsWithIgnoreCase(line, "content-length:")) {
      if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(line.substr(15)), &length)) {
        return absl::InvalidArgumentError(head);
      }
    }
  }
  if (length > 0 && !client.ReadExactly(length).ok()) return absl::UnavailableError("body");
  int status = 0;
  if (head.size() < 12 || !absl::SimpleAtoi(head.substr(9, 3), &status)) {
    return absl::InvalidArgumentError(head);
  }
  return status;
}

// Requests to example.EchoService/Echo this process's servers counted.
int64_t EchoServerRequests() {
  for (const auto& [name, snapshot] : MetricsRegistry::Default().Methods(MetricsSide::kServer)) {
    if (name == "example.EchoService/Echo") return snapshot.requests;
  }
  return 0;
}

class BuiltinPagesE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TracingOptions tracing;
    tracing.max_sampled_per_second = 1000;
    ConfigureTracing(tracing);
  }
  void TearDown() override { ConfigureTracing(TracingOptions()); }

  void StartServer(ServerOptions options = {}) {
    server_ = std::make_unique<Server>(std::move(options));
    ASSERT_TRUE(server_->AddService(testing::NewEchoService()).ok());
    ASSERT_TRUE(server_->Start("127.0.0.1:0").ok());
    base_ = absl::StrCat("http://", server_->listen_address().ToString());
  }
  // `n` baidu_std calls, one failing, and a JSON call over HTTP.
  void MakeTraffic(int n) {
    auto channel = Channel::Create(server_->listen_address().ToString());
    ASSERT_TRUE(channel.ok());
    EchoRequest request;
    request.set_message("traffic");
    EchoResponse response;
    for (int i = 0; i < n; ++i) {
      ASSERT_TRUE((*channel)->CallMethod("example.EchoService", "Echo", request, &response).ok());
    }
    EXPECT_FALSE((*channel)->CallMethod("example.EchoService", "Fail", request, &response).ok());
    absl::StatusOr<CommandResult> json = RunCommand(
        {"curl", "-sS", "-d", R"({"message":"hi"})", base_ + "/example.EchoService/Echo"},
        kToolTimeout);
    ASSERT_TRUE(json.ok());
    EXPECT_EQ(json->output, "{\"message\":\"hi\"}\n");
  }

  std::unique_ptr<Server> server_;
  std::string base_;
};

TEST_F(BuiltinPagesE2eTest, CurlReadsEveryPage) {
  StartServer();
  MakeTraffic(3);
  for (const char* page : {"/", "/health", "/metrics", "/status", "/rpcz", "/connections"}) {
    absl::StatusOr<std::string> body = Curl(base_ + page);
    EXPECT_TRUE(body.ok()) << page << ": " << body.status();
  }
  EXPECT_EQ(*Curl(base_ + "/health"), "OK\n");
  // The JSON call and the calls above were traced (edge sampling is on).
  absl::StatusOr<std::string> rpcz = Curl(base_ + "/rpcz?format=json");
  ASSERT_TRUE(rpcz.ok());
  EXPECT_TRUE(absl::StrContains(*rpcz, R"("method":"example.EchoService/Echo","protocol":"http")"))
      << *rpcz;
  EXPECT_TRUE(absl::StrContains(*rpcz, R"("protocol":"baidu_std")")) << *rpcz;
  // The connection curl uses is listed as it reads the page.
  absl::StatusOr<std::string> connections = Curl(base_ + "/connections?format=json");
  ASSERT_TRUE(connections.ok());
  EXPECT_TRUE(absl::StrContains(*connections, R"("protocol":"http")")) << *connections;
}

TEST_F(BuiltinPagesE2eTest, PromtoolAcceptsTheMetricsOfARunningServer) {
  StartServer();
  MakeTraffic(5);
  absl::StatusOr<std::string> metrics = Curl(base_ + "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  absl::Status check = testing::PromtoolCheck(*metrics);
  EXPECT_TRUE(check.ok()) << check;
  for (const std::string& want :
       {std::string(R"(nprpc_server_requests_total{method="example.EchoService/Echo"})"),
        std::string(R"(nprpc_server_errors_total{method="example.EchoService/Fail",code="2001"})"),
        std::string(R"(nprpc_client_requests_total{method="example.EchoService/Echo"})"),
        std::string(
            R"(nprpc_server_latency_seconds{method="example.EchoService/Echo",quantile="0.99"})"),
        absl::StrCat("nprpc_server_connections{server=\"", server_->listen_address().ToString(),
                     "\"}"),
        std::string("process_open_fds")}) {
    EXPECT_TRUE(absl::StrContains(*metrics, want)) << want << "\n" << *metrics;
  }
}

TEST_F(BuiltinPagesE2eTest, ARealPrometheusScrapesTheServer) {
  ASSERT_TRUE(testing::IsExecutable("/usr/bin/prometheus")) << "run tools/setup.sh";
  StartServer();
  MakeTraffic(7);
  const std::string dir = absl::StrCat(TempDir(), "/prometheus");
  ASSERT_EQ(RunCommand({"mkdir", "-p", dir + "/data"}, kToolTimeout)->exit_code, 0);
  const std::string config = dir + "/prometheus.yml";
  std::ofstream(config) << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                        << "scrape_configs:\n  - job_name: nprpc\n    static_configs:\n"
                        << "      - targets: ['" << server_->listen_address().ToString() << "']\n";
  const int port = testing::PickFreePort();
  ASSERT_GT(port, 0);
  BackgroundProcess prometheus(
      {"/usr/bin/prometheus", "--config.file=" + config, "--storage.tsdb.path=" + dir + "/data",
       absl::StrCat("--web.listen-address=127.0.0.1:", port), "--log.level=warn"},
      dir + "/prometheus.log");
  ASSERT_TRUE(prometheus.started());
  // Prometheus's query API finds the server's series once it has scraped.
  const std::string query = absl::StrCat(
      "http://127.0.0.1:", port,
      "/api/v1/"
      "query?query=nprpc_server_requests_total%7Bmethod%3D%22example.EchoService%2FEcho%22%7D");
  std::string answer;
  const bool found = netpoll::testing::WaitFor(
      [&] {
        absl::StatusOr<CommandResult> r = RunCommand({"curl", "-sS", query}, kToolTimeout);
        if (r.ok()) answer = r->output;
        return absl::StrContains(answer, R"("status":"success")") &&
               absl::StrContains(answer, "example.EchoService/Echo") &&
               absl::StrContains(answer, R"("job":"nprpc")");
      },
      absl::Seconds(60));
  std::ifstream log(dir + "/prometheus.log");
  std::stringstream log_text;
  log_text << log.rdbuf();
  ASSERT_TRUE(found) << "last answer: " << answer << "\nprometheus log:\n" << log_text.str();
  // The value is what the server counted (this process's calls to Echo, 8
  // of them in this test: 7 over baidu_std, 1 over HTTP).
  EXPECT_TRUE(absl::StrContains(answer, absl::StrCat("\"", EchoServerRequests(), "\"]")))
      << answer << " vs " << EchoServerRequests();
  // And the scrape itself succeeded (`up` is 1).
  absl::StatusOr<CommandResult> up =
      RunCommand({"curl", "-sS", absl::StrCat("http://127.0.0.1:", port, "/api/v1/query?query=up")},
                 kToolTimeout);
  ASSERT_TRUE(up.ok());
  EXPECT_TRUE(absl::StrContains(up->output, "\"1\"]")) << up->output;
}

TEST_F(BuiltinPagesE2eTest, HeadlessChromiumRendersTheStatusPage) {
  ASSERT_TRUE(testing::IsExecutable("/usr/bin/chromium")) << "run tools/setup.sh";
  StartServer();
  MakeTraffic(4);
  const std::string dir = absl::StrCat(TempDir(), "/chromium");
  ASSERT_EQ(RunCommand({"mkdir", "-p", dir}, kToolTimeout)->exit_code, 0);
  const std::vector<std::string> chromium = {"env",
                                             "HOME=" + dir,
                                             "/usr/bin/chromium",
                                             "--headless=new",
                                             "--no-sandbox",
                                             "--disable-gpu",
                                             "--disable-dev-shm-usage",
                                             "--user-data-dir=" + dir + "/profile"};
  // What a person sees: the DOM after the page loaded.
  std::vector<std::string> dump = chromium;
  dump.emplace_back("--dump-dom");
  dump.push_back(base_ + "/status");
  absl::StatusOr<CommandResult> dom = RunCommand(dump, kToolTimeout);
  ASSERT_TRUE(dom.ok());
  ASSERT_EQ(dom->exit_code, 0) << dom->output;
  for (const std::string& want :
       {absl::StrCat("nprpc server ", server_->listen_address().ToString()), std::string("serving"),
        std::string("Uptime"), std::string("<th>p99</th>"), std::string("example.EchoService/Echo"),
        std::string("example.EchoService/Fail"), std::string("Connections")}) {
    EXPECT_TRUE(absl::StrContains(dom->output, want)) << want << "\n" << dom->output;
  }
  // Echo's row: its requests so far (metrics are per process: earlier tests
  // of this binary count too), no errors; Fail's: as many errors as calls.
  EXPECT_TRUE(absl::StrContains(dom->output,
                                absl::StrCat("</td><td>", EchoServerRequests(), "</td><td>0</td>")))
      << dom->output;
  EXPECT_TRUE(absl::StrContains(dom->output, "<td class=\"bad\">")) << dom->output;
  // And a screenshot renders (docs/images/status.png was made this way).
  std::vector<std::string> shot = chromium;
  shot.emplace_back("--window-size=1200,700");
  shot.push_back("--screenshot=" + dir + "/status.png");
  shot.push_back(base_ + "/status");
  absl::StatusOr<CommandResult> r = RunCommand(shot, kToolTimeout);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->exit_code, 0) << r->output;
  std::ifstream png(dir + "/status.png", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(png)), std::istreambuf_iterator<char>());
  EXPECT_GT(bytes.size(), 10000u);
  EXPECT_EQ(bytes.substr(0, 8), "\x89PNG\r\n\x1a\n");
}

TEST_F(BuiltinPagesE2eTest, AdminPortServesThePagesInsteadOfTheServingPort) {
  ServerOptions options;
  options.builtin_pages = ServerOptions::BuiltinPages::kAdminPort;
  options.admin_address = "127.0.0.1:0";
  StartServer(options);
  MakeTraffic(1);  // JSON calls stay on the serving port
  const std::string admin = absl::StrCat("http://", server_->admin_address().ToString());
  EXPECT_EQ(CurlStatus(base_ + "/status"), 404);
  EXPECT_EQ(CurlStatus(admin + "/status"), 200);
  EXPECT_EQ(CurlStatus(admin + "/health"), 200);
  // The admin port shows the serving port's server.
  absl::StatusOr<std::string> status = Curl(admin + "/status");
  ASSERT_TRUE(status.ok());
  EXPECT_TRUE(absl::StrContains(*status, server_->listen_address().ToString()));
  // It speaks no baidu_std and serves no methods.
  EXPECT_EQ(CurlStatus(admin + "/example.EchoService/Echo"), 404);
}

TEST_F(BuiltinPagesE2eTest, PagesTurnedOffAreNotFound) {
  ServerOptions options;
  options.builtin_pages = ServerOptions::BuiltinPages::kOff;
  StartServer(options);
  MakeTraffic(1);
  EXPECT_EQ(CurlStatus(base_ + "/metrics"), 404);
  EXPECT_EQ(CurlStatus(base_ + "/health"), 404);
}

TEST_F(BuiltinPagesE2eTest, HealthSays503WhileTheServerDrains) {
  // A call that holds the server in its drain until released. (netpoll's
  // Notification: TSan sees its mutex; Debian's Abseil is not instrumented.)
  netpoll::Notification entered, release;
  const google::protobuf::ServiceDescriptor* descriptor =
      EchoRequest::descriptor()->file()->FindServiceByName("EchoService");
  auto service = std::make_unique<Service>(descriptor);
  ASSERT_TRUE(
      service
          ->AddMethod("Echo", TypedUnary<EchoRequest, EchoResponse>(
                                  [&](ServerContext&, const EchoRequest& req, EchoResponse* resp) {
                                    entered.Notify();
                                    release.WaitForNotification();
                                    resp->set_message(req.message());
                                    return absl::OkStatus();
                                  }))
          .ok());
  server_ = std::make_unique<Server>();
  ASSERT_TRUE(server_->AddService(std::move(service)).ok());
  ASSERT_TRUE(server_->Start("127.0.0.1:0").ok());
  // A load balancer's keep-alive connection, open before the drain.
  auto probe = netpoll::testing::BlockingClient::Connect(server_->listen_address());
  ASSERT_TRUE(probe.ok());
  auto channel = Channel::Create(server_->listen_address().ToString());
  ASSERT_TRUE(channel.ok());
  EchoRequest request;
  request.set_message("held");
  EchoResponse response;
  absl::Status held_status;
  netpoll::Notification held_done;
  (*channel)->CallMethod("example.EchoService", "Echo", request, &response, CallOptions(),
                         [&](absl::Status s) {
                           held_status = std::move(s);
                           held_done.Notify();
                         });
  entered.WaitForNotification();
  std::thread shutdown([&] { server_->Shutdown(absl::Seconds(20)); });
  // While it drains, /health answers 503 on the open connection.
  int status = 0;
  ASSERT_TRUE(netpoll::testing::WaitFor([&] {
    if (!probe->SendAll("GET /health HTTP/1.1\r\nHost: x\r\n\r\n").ok()) return false;
    absl::StatusOr<int> s = ReadHttpStatus(*probe);
    status = s.ok() ? *s : -1;
    return status == 503;
  })) << status;
  release.Notify();
  held_done.WaitForNotification();
  EXPECT_TRUE(held_status.ok()) << held_status;
  shutdown.join();
}

}  // namespace
}  // namespace nprpc
