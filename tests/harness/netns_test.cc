// Proves the namespace harness: an echo server on one "host", a client on
// another, calls across the bridge; the server's host cut off (a blackhole)
// makes calls fail by their deadline; reconnected, calls succeed again.
// Skips (with the reason) without root or a working `ip netns`.
#include "tests/harness/netns.h"

#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "netpoll/event_loop_group.h"
#include "netpoll/testing/wait.h"
#include "proto/echo.pb.h"
#include "rpc/channel.h"

namespace nprpc::testing {
namespace {

using netpoll::testing::WaitFor;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The example echo server from the test's runfiles, as an absolute path.
std::string EchoServerPath() {
  char cwd[PATH_MAX];
  if (getcwd(cwd, sizeof(cwd)) == nullptr) return "";
  return absl::StrCat(cwd, "/examples/rpc_echo_server");
}

std::string TempDir() {
  const char* base = getenv("TEST_TMPDIR");
  std::string templ = absl::StrCat(base ? base : "/tmp", "/netns_XXXXXX");
  return mkdtemp(templ.data()) ? templ : "/tmp";
}

absl::Status Echo(Channel& channel, absl::Duration timeout) {
  example::EchoRequest request;
  request.set_message("across the bridge");
  example::EchoResponse response;
  CallOptions options;
  options.timeout = timeout;
  absl::Status status =
      channel.CallMethod("example.EchoService", "Echo", request, &response, options);
  if (status.ok() && response.message() != request.message()) {
    return absl::DataLossError("wrong echo: " + response.message());
  }
  return status;
}

TEST(NetnsNetwork, CallsCrossHostsFailWhileCutOffAndRecoverAfterwards) {
  auto net = NetnsNetwork::Create(2);
  if (!net.ok()) GTEST_SKIP() << "no network namespaces: " << net.status();
  const std::string dir = TempDir();
  const std::string log = dir + "/server.log";
  auto server =
      (*net)->Start(1, {EchoServerPath(), absl::StrCat("--listen=", (*net)->ip(1), ":8000")}, log);
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_TRUE(WaitFor([&] { return absl::StrContains(ReadFile(log), "listening on"); }))
      << ReadFile(log);

  // The client's loops start inside host 0, so its sockets live there.
  std::unique_ptr<netpoll::EventLoopGroup> loops;
  {
    auto inside = (*net)->Enter(0);
    ASSERT_TRUE(inside.ok()) << inside.status();
    netpoll::EventLoopGroupOptions loop_options;
    loop_options.num_loops = 1;
    auto group = netpoll::EventLoopGroup::Create(loop_options);
    ASSERT_TRUE(group.ok()) << group.status();
    loops = std::move(*group);
  }
  ChannelOptions options;
  options.loops = loops.get();
  options.connect_timeout = absl::Milliseconds(300);
  auto channel = Channel::Create(absl::StrCat((*net)->ip(1), ":8000"), options);
  ASSERT_TRUE(channel.ok()) << channel.status();
  ASSERT_TRUE(Echo(**channel, absl::Seconds(5)).ok());

  ASSERT_TRUE((*net)->CutOff(1).ok());
  const absl::Time start = absl::Now();
  absl::Status cut = Echo(**channel, absl::Milliseconds(300));
  EXPECT_FALSE(cut.ok());
  // Completed by its deadline (plus scheduling slack), not hung.
  EXPECT_LT(absl::Now() - start, absl::Seconds(5)) << cut;

  ASSERT_TRUE((*net)->Reconnect(1).ok());
  EXPECT_TRUE(WaitFor([&] { return Echo(**channel, absl::Milliseconds(500)).ok(); }));
  channel->reset();
  loops.reset();
}

TEST(NetnsNetwork, NamespacesAreGoneAfterDestruction) {
  std::string name;
  {
    auto net = NetnsNetwork::Create(1);
    if (!net.ok()) GTEST_SKIP() << "no network namespaces: " << net.status();
    name = (*net)->ns(0);
    auto listed = RunCommand({"/bin/sh", "-c", "ip netns list || /usr/sbin/ip netns list"},
                             absl::Seconds(10));
    ASSERT_TRUE(listed.ok());
    EXPECT_TRUE(absl::StrContains(listed->output, name)) << listed->output;
  }
  auto listed =
      RunCommand({"/bin/sh", "-c", "ip netns list || /usr/sbin/ip netns list"}, absl::Seconds(10));
  ASSERT_TRUE(listed.ok());
  EXPECT_FALSE(absl::StrContains(listed->output, name)) << listed->output;
}

}  // namespace
}  // namespace nprpc::testing
