#include "rpc/dns_naming_service.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "netpoll/mutex.h"
#include "netpoll/testing/wait.h"

namespace nprpc {
namespace {

using netpoll::testing::WaitFor;

// A DNS server the test scripts: the answer (or failure) the next
// resolutions get.
class FakeDns {
 public:
  void Answer(std::vector<std::string> endpoints) {
    netpoll::MutexLock lock(&mu_);
    answer_ = std::move(endpoints);
    failing_ = false;
  }
  void Fail() {
    netpoll::MutexLock lock(&mu_);
    failing_ = true;
  }
  DnsNamingOptions Options(absl::Duration refresh = absl::Hours(1)) {
    DnsNamingOptions options;
    options.refresh_interval = refresh;
    options.min_resolve_interval = absl::ZeroDuration();
    options.resolve =
        [this](const std::string& host_port) -> absl::StatusOr<std::vector<std::string>> {
      netpoll::MutexLock lock(&mu_);
      last_query_ = host_port;
      // A new status each time: a shared one's reference count lives in
      // Debian's uninstrumented Abseil, where TSan cannot see it.
      if (failing_) return absl::UnavailableError("SERVFAIL");
      return answer_;
    };
    return options;
  }
  std::string last_query() {
    netpoll::MutexLock lock(&mu_);
    return last_query_;
  }

 private:
  netpoll::Mutex mu_;
  std::vector<std::string> answer_ ABSL_GUARDED_BY(mu_);
  bool failing_ ABSL_GUARDED_BY(mu_) = false;
  std::string last_query_ ABSL_GUARDED_BY(mu_);
};

std::vector<std::string> Addresses(const NamingService& naming) {
  std::vector<std::string> out;
  for (const ServerNode& node : naming.Nodes()) out.push_back(node.address);
  return out;
}

TEST(DnsNamingService, RejectsATargetWithoutAPort) {
  EXPECT_FALSE(DnsNamingService::Create("backend").ok());
  EXPECT_FALSE(DnsNamingService::Create("backend:0").ok());
  EXPECT_FALSE(DnsNamingService::Create(":80").ok());
}

TEST(DnsNamingService, PublishesEveryAddressOfTheFirstAnswer) {
  FakeDns dns;
  dns.Answer({"10.0.0.2:80", "10.0.0.1:80", "[fd00::1]:80"});
  auto naming = DnsNamingService::Create("backend:80", dns.Options());
  ASSERT_TRUE(naming.ok()) << naming.status();
  ASSERT_TRUE(WaitFor([&] { return (*naming)->Nodes().size() == 3; }));
  EXPECT_EQ(Addresses(**naming),
            (std::vector<std::string>{"10.0.0.1:80", "10.0.0.2:80", "[fd00::1]:80"}));
  EXPECT_EQ(dns.last_query(), "backend:80");
}

TEST(DnsNamingService, FollowsChangesOnRefreshAndTellsWatchers) {
  FakeDns dns;
  dns.Answer({"10.0.0.1:80"});
  auto naming = DnsNamingService::Create("backend:80", dns.Options(absl::Milliseconds(5)));
  ASSERT_TRUE(naming.ok());
  netpoll::Mutex mu;
  std::vector<size_t> sizes;
  (*naming)->Watch([&](const std::vector<ServerNode>& nodes) {
    netpoll::MutexLock lock(&mu);
    sizes.push_back(nodes.size());
  });
  ASSERT_TRUE(WaitFor([&] { return (*naming)->Nodes().size() == 1; }));
  dns.Answer({"10.0.0.1:80", "10.0.0.3:80"});
  ASSERT_TRUE(WaitFor([&] { return (*naming)->Nodes().size() == 2; }));
  netpoll::MutexLock lock(&mu);
  EXPECT_EQ(sizes.back(), 2u);
}

TEST(DnsNamingService, FailedOrEmptyAnswersKeepThePreviousList) {
  FakeDns dns;
  dns.Answer({"10.0.0.1:80"});
  auto naming = DnsNamingService::Create("backend:80", dns.Options(absl::Milliseconds(1)));
  ASSERT_TRUE(naming.ok());
  ASSERT_TRUE(WaitFor([&] { return (*naming)->Nodes().size() == 1; }));
  dns.Fail();
  int64_t seen = (*naming)->resolutions();
  ASSERT_TRUE(WaitFor([&] { return (*naming)->resolutions() >= seen + 2; }));
  EXPECT_EQ(Addresses(**naming), std::vector<std::string>{"10.0.0.1:80"});
  dns.Answer({});
  seen = (*naming)->resolutions();
  ASSERT_TRUE(WaitFor([&] { return (*naming)->resolutions() >= seen + 2; }));
  EXPECT_EQ(Addresses(**naming), std::vector<std::string>{"10.0.0.1:80"});
}

TEST(DnsNamingService, AnEndpointFailureTriggersAResolutionBeforeTheRefresh) {
  FakeDns dns;
  dns.Answer({"10.0.0.1:80"});
  auto naming = DnsNamingService::Create("backend:80", dns.Options(absl::Hours(1)));
  ASSERT_TRUE(naming.ok());
  ASSERT_TRUE(WaitFor([&] { return (*naming)->resolutions() == 1; }));
  dns.Answer({"10.0.0.9:80"});
  (*naming)->OnEndpointFailure("10.0.0.1:80");
  ASSERT_TRUE(
      WaitFor([&] { return Addresses(**naming) == std::vector<std::string>{"10.0.0.9:80"}; }));
  EXPECT_EQ((*naming)->resolutions(), 2);
}

TEST(DnsNamingService, ServerNameIsTheResolvedNameUnlessNumeric) {
  FakeDns dns;
  dns.Answer({"10.0.0.1:80"});
  auto named = DnsNamingService::Create("backend.internal:80", dns.Options());
  ASSERT_TRUE(named.ok());
  EXPECT_EQ((*named)->server_name(), "backend.internal");
  auto v4 = DnsNamingService::Create("10.0.0.1:80", dns.Options());
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ((*v4)->server_name(), "");
  auto v6 = DnsNamingService::Create("[::1]:80", dns.Options());
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ((*v6)->server_name(), "");
}

TEST(ResolveEndpoints, LocalhostGivesNumericAddressesWithThePort) {
  auto endpoints = ResolveEndpoints("localhost:8080");
  ASSERT_TRUE(endpoints.ok()) << endpoints.status();
  ASSERT_FALSE(endpoints->empty());
  for (const std::string& endpoint : *endpoints) {
    EXPECT_TRUE(endpoint == "127.0.0.1:8080" || endpoint == "[::1]:8080") << endpoint;
  }
}

TEST(ResolveEndpoints, NumericAddressNeedsNoLookup) {
  auto endpoints = ResolveEndpoints("10.1.2.3:80");
  ASSERT_TRUE(endpoints.ok());
  EXPECT_EQ(*endpoints, std::vector<std::string>{"10.1.2.3:80"});
}

}  // namespace
}  // namespace nprpc
