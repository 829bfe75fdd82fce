// EtcdNamingService and EtcdRegistration against a real etcd (Debian's
// etcd-server, started by the test on loopback), in plaintext and over
// mutual TLS (certificates made at run time).
#include "rpc/etcd_naming_service.h"

#include <stdlib.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "netpoll/mutex.h"
#include "netpoll/testing/test_certs.h"
#include "netpoll/tls_context.h"
#include "proto/echo.pb.h"
#include "proto/etcd/rpc.nprpc.h"
#include "rpc/channel.h"
#include "rpc/etcd_registration.h"
#include "rpc/server.h"
#include "tests/harness/echo_service.h"
#include "tests/harness/etcd_cluster.h"

namespace nprpc {
namespace {

using ::netpoll::testing::TestCa;
using ::netpoll::testing::TestCert;
using ::nprpc::testing::EtcdCluster;
using ::nprpc::testing::EtcdTlsFiles;

std::string TempDir() {
  std::string pattern = ::testing::TempDir() + "/etcdnsXXXXXX";
  char* dir = mkdtemp(pattern.data());
  return dir == nullptr ? ::testing::TempDir() : std::string(dir);
}

// The lists a naming service published, waited on.
class ListRecorder {
 public:
  NamingService::Watcher watcher() {
    return [this](const std::vector<ServerNode>& nodes) {
      netpoll::MutexLock lock(&mu_);
      last_.clear();
      for (const ServerNode& n : nodes) last_.push_back(n.address);
      std::sort(last_.begin(), last_.end());
      ++lists_;
      cv_.SignalAll();
    };
  }
  // True once the last list is `want` (sorted addresses), within `timeout`.
  bool WaitFor(std::vector<std::string> want, absl::Duration timeout = absl::Seconds(20)) {
    std::sort(want.begin(), want.end());
    const absl::Time deadline = absl::Now() + timeout;
    netpoll::MutexLock lock(&mu_);
    while (!(lists_ > 0 && last_ == want)) {
      if (!cv_.WaitWithTimeout(&mu_, deadline - absl::Now()) && absl::Now() >= deadline) {
        return false;
      }
    }
    return true;
  }
  std::vector<std::string> last() {
    netpoll::MutexLock lock(&mu_);
    return last_;
  }

 private:
  netpoll::Mutex mu_;
  netpoll::CondVar cv_;
  std::vector<std::string> last_ ABSL_GUARDED_BY(mu_);
  int lists_ ABSL_GUARDED_BY(mu_) = 0;
};

TEST(EtcdTargetTest, ParsesEndpointsAndPrefix) {
  absl::StatusOr<EtcdTarget> t =
      ParseEtcdTarget("etcd://10.0.0.1:2379,10.0.0.2:2379/services/echo");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->endpoints, (std::vector<std::string>{"10.0.0.1:2379", "10.0.0.2:2379"}));
  EXPECT_EQ(t->prefix, "/services/echo/");
  EXPECT_EQ(EtcdKeyOf(*t, "10.0.0.3:8000"), "/services/echo/10.0.0.3:8000");
  EXPECT_FALSE(ParseEtcdTarget("etcd://10.0.0.1:2379").ok());
  EXPECT_FALSE(ParseEtcdTarget("etcd:///prefix").ok());
  EXPECT_FALSE(ParseEtcdTarget("etcd://nohostport/prefix").ok());
}

TEST(EtcdTargetTest, RangeEndCoversExactlyThePrefix) {
  EXPECT_EQ(EtcdRangeEnd("/svc/"), "/svc0");
  EXPECT_EQ(EtcdRangeEnd(std::string("a\xff", 2)), "b");
  EXPECT_EQ(EtcdRangeEnd(std::string("\xff", 1)), std::string(1, '\0'));
}

TEST(EtcdTargetTest, ValuesNameOneNodeWithAnOptionalWeight) {
  absl::StatusOr<ServerNode> n = ParseEtcdValue("10.0.0.3:8000 w=3");
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(n->address, "10.0.0.3:8000");
  EXPECT_EQ(n->weight, 3);
  EXPECT_FALSE(ParseEtcdValue("a:1,b:2").ok());
  EXPECT_FALSE(ParseEtcdValue("").ok());
}

class EtcdNamingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!EtcdCluster::Available()) GTEST_SKIP() << "etcd-server is not installed";
    auto etcd = EtcdCluster::StartLocal(TempDir());
    ASSERT_TRUE(etcd.ok()) << etcd.status();
    etcd_ = *std::move(etcd);
    target_ = "etcd://" + etcd_->client_endpoints() + "/services/echo";
  }

  void Put(const std::string& address, const std::string& value = "") {
    ASSERT_TRUE(
        etcd_->Etcdctl({"put", "/services/echo/" + address, value.empty() ? address : value}).ok());
  }

  std::unique_ptr<EtcdCluster> etcd_;
  std::string target_;
};

TEST_F(EtcdNamingTest, FollowsPutsAndDeletesUnderThePrefix) {
  Put("127.0.0.1:1001");
  ASSERT_TRUE(etcd_->Etcdctl({"put", "/services/other/127.0.0.1:9", "127.0.0.1:9"}).ok());
  auto naming = EtcdNamingService::Create(target_);
  ASSERT_TRUE(naming.ok()) << naming.status();
  ListRecorder lists;
  (*naming)->Watch(lists.watcher());
  EXPECT_TRUE(lists.WaitFor({"127.0.0.1:1001"})) << lists.last().size();
  Put("127.0.0.1:1002", "127.0.0.1:1002 w=2");
  EXPECT_TRUE(lists.WaitFor({"127.0.0.1:1001", "127.0.0.1:1002"}));
  ASSERT_TRUE(etcd_->Etcdctl({"del", "/services/echo/127.0.0.1:1001"}).ok());
  EXPECT_TRUE(lists.WaitFor({"127.0.0.1:1002"}));
  EXPECT_EQ((*naming)->Nodes().at(0).weight, 2);
  EXPECT_EQ((*naming)->stats().full_reads, 1);
}

TEST_F(EtcdNamingTest, KeepsItsListWhileEtcdIsDownAndResumesFromItsRevision) {
  Put("127.0.0.1:1001");
  EtcdClientOptions options;
  options.retry_backoff = absl::Milliseconds(50);
  auto naming = EtcdNamingService::Create(target_, options);
  ASSERT_TRUE(naming.ok()) << naming.status();
  ListRecorder lists;
  (*naming)->Watch(lists.watcher());
  ASSERT_TRUE(lists.WaitFor({"127.0.0.1:1001"}));
  etcd_->Stop(0);
  // Nobody to ask: the list stays.
  EXPECT_EQ((*naming)->Nodes().size(), 1u);
  absl::Status restarted = etcd_->Restart(0);
  ASSERT_TRUE(restarted.ok()) << restarted;
  Put("127.0.0.1:1002");
  EXPECT_TRUE(lists.WaitFor({"127.0.0.1:1001", "127.0.0.1:1002"}));
  const EtcdNamingService::Stats stats = (*naming)->stats();
  EXPECT_EQ(stats.full_reads, 1) << "resumed the watch instead of reading everything again";
  EXPECT_GE(stats.watch_starts, 2);
  EXPECT_GE(stats.failures, 1);
}

TEST_F(EtcdNamingTest, ReadsEverythingAgainWhenItsRevisionWasCompacted) {
  Put("127.0.0.1:1001");
  EtcdClientOptions options;
  // Long enough to put, delete and compact before it reconnects.
  options.retry_backoff = absl::Seconds(5);
  options.max_retry_backoff = absl::Seconds(5);
  auto naming = EtcdNamingService::Create(target_, options);
  ASSERT_TRUE(naming.ok()) << naming.status();
  ListRecorder lists;
  (*naming)->Watch(lists.watcher());
  ASSERT_TRUE(lists.WaitFor({"127.0.0.1:1001"}));
  etcd_->Stop(0);
  absl::Status restarted = etcd_->Restart(0);
  ASSERT_TRUE(restarted.ok()) << restarted;
  Put("127.0.0.1:1002");
  ASSERT_TRUE(etcd_->Etcdctl({"del", "/services/echo/127.0.0.1:1001"}).ok());
  Put("127.0.0.1:1003");
  absl::StatusOr<std::string> status = etcd_->Etcdctl({"endpoint", "status", "-w", "fields"});
  ASSERT_TRUE(status.ok()) << status.status();
  // "Revision" : N
  const size_t at = status->find("\"Revision\" : ");
  ASSERT_NE(at, std::string::npos) << *status;
  const std::string revision = status->substr(at + 13, status->find('\n', at) - at - 13);
  ASSERT_TRUE(etcd_->Etcdctl({"compact", revision}).ok());
  EXPECT_TRUE(lists.WaitFor({"127.0.0.1:1002", "127.0.0.1:1003"}, absl::Seconds(30)));
  EXPECT_EQ((*naming)->stats().full_reads, 2);
}

TEST_F(EtcdNamingTest, RegistrationPutsItsKeyUnderALeaseAndDeregisterDeletesIt) {
  auto registration = EtcdRegistration::Start(target_, "127.0.0.1:2001");
  ASSERT_TRUE(registration.ok()) << registration.status();
  EXPECT_EQ((*registration)->key(), "/services/echo/127.0.0.1:2001");
  absl::StatusOr<std::string> got = etcd_->Etcdctl({"get", "--prefix", "/services/echo/"});
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(absl::StrContains(*got, "127.0.0.1:2001")) << *got;
  const int64_t lease = (*registration)->lease_id();
  EXPECT_NE(lease, 0);

  auto naming = EtcdNamingService::Create(target_);
  ASSERT_TRUE(naming.ok());
  ListRecorder lists;
  (*naming)->Watch(lists.watcher());
  ASSERT_TRUE(lists.WaitFor({"127.0.0.1:2001"}));
  ASSERT_TRUE((*registration)->Deregister().ok());
  EXPECT_TRUE(lists.WaitFor({}));
  got = etcd_->Etcdctl({"lease", "list"});
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(absl::StrContains(*got, absl::StrCat(absl::Hex(lease))))
      << "the lease was revoked: " << *got;
}

TEST_F(EtcdNamingTest, RegistrationKeepsItsLeaseAliveAndReplacesALostOne) {
  EtcdRegistrationOptions options;
  options.ttl = absl::Seconds(1);
  options.etcd.retry_backoff = absl::Milliseconds(50);
  auto registration = EtcdRegistration::Start(target_, "127.0.0.1:2002", options);
  ASSERT_TRUE(registration.ok()) << registration.status();
  auto naming = EtcdNamingService::Create(target_);
  ASSERT_TRUE(naming.ok());
  ListRecorder lists;
  (*naming)->Watch(lists.watcher());
  ASSERT_TRUE(lists.WaitFor({"127.0.0.1:2002"}));
  // Revoking the lease deletes the key; the registration notices on its next
  // keep-alive (TTL 0) and puts the key again under a new lease.
  ASSERT_TRUE(
      etcd_->Etcdctl({"lease", "revoke", absl::StrCat(absl::Hex((*registration)->lease_id()))})
          .ok());
  EXPECT_TRUE(lists.WaitFor({"127.0.0.1:2002"}));
  for (int i = 0; i < 200 && (*registration)->leases_granted() < 2; ++i) {
    ASSERT_TRUE(lists.WaitFor({"127.0.0.1:2002"}));
    absl::SleepFor(absl::Milliseconds(50));  // waiting on etcd's side; no event here
  }
  EXPECT_EQ((*registration)->leases_granted(), 2);
  EXPECT_GE((*registration)->keepalives(), 1);
}

TEST_F(EtcdNamingTest, ChannelCallsAServerFoundInEtcdAndShutdownDeregistersFirst) {
  Server server;
  ASSERT_TRUE(server.AddService(testing::NewEchoService()).ok());
  ASSERT_TRUE(server.Start("127.0.0.1:0").ok());
  auto registration = EtcdRegistration::Start(target_, server.listen_address().ToString());
  ASSERT_TRUE(registration.ok()) << registration.status();
  ASSERT_TRUE(server.AddRegistration(*std::move(registration)).ok());

  auto channel = Channel::Create(target_);
  ASSERT_TRUE(channel.ok()) << channel.status();
  example::EchoRequest request;
  request.set_message("via etcd");
  example::EchoResponse response;
  absl::Status s = (*channel)->CallMethod("example.EchoService", "Echo", request, &response);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(response.message(), "via etcd");

  server.Shutdown(absl::Seconds(5));
  absl::StatusOr<std::string> got = etcd_->Etcdctl({"get", "--prefix", "/services/echo/"});
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, "") << "the server's key is gone after Shutdown";
}

// A real etcd serving clients over TLS with --client-cert-auth: its
// certificate and the clients' come from one CA made for the test.
class EtcdTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!EtcdCluster::Available()) GTEST_SKIP() << "etcd-server is not installed";
    auto ca = TestCa::Create("etcd test CA");
    ASSERT_TRUE(ca.ok()) << ca.status();
    ca_ = *std::move(ca);
    auto other_ca = TestCa::Create("another CA");
    ASSERT_TRUE(other_ca.ok()) << other_ca.status();
    other_ca_ = *std::move(other_ca);
    server_cert_ = ca_->Issue(
        {.common_name = "etcd", .dns_names = {"localhost"}, .ip_addresses = {"127.0.0.1"}});
    client_cert_ = ca_->Issue({.common_name = "nprpc", .dns_names = {}, .ip_addresses = {}});

    const std::string dir = TempDir();
    EtcdTlsFiles files;
    files.cert_file = WriteFile(dir, "server.crt", server_cert_.cert_pem);
    files.key_file = WriteFile(dir, "server.key", server_cert_.key_pem);
    files.ca_file = WriteFile(dir, "ca.crt", ca_->cert_pem());
    files.client_cert_auth = true;
    files.client_cert_file = WriteFile(dir, "client.crt", client_cert_.cert_pem);
    files.client_key_file = WriteFile(dir, "client.key", client_cert_.key_pem);
    auto etcd = EtcdCluster::StartLocal(dir, files);
    ASSERT_TRUE(etcd.ok()) << etcd.status();
    etcd_ = *std::move(etcd);
    target_ = "etcd://" + etcd_->client_endpoints() + "/services/echo";
  }

  static std::string WriteFile(const std::string& dir, const std::string& name,
                               const std::string& text) {
    std::string path = dir + "/" + name;
    std::ofstream(path) << text;
    return path;
  }

  // Client options trusting `ca`, presenting the client certificate or none.
  EtcdClientOptions ClientOptions(const TestCa& ca, bool with_certificate) {
    netpoll::TlsClientOptions tls;
    tls.ca_pem = ca.cert_pem();
    if (with_certificate) tls.key_pair = client_cert_.key_pair();
    auto context = netpoll::TlsContext::NewClient(tls);
    EXPECT_TRUE(context.ok()) << context.status();
    EtcdClientOptions options;
    options.tls = context.ok() ? *context : nullptr;
    options.call_timeout = absl::Seconds(3);
    options.connect_timeout = absl::Seconds(1);
    return options;
  }

  // One Range under the prefix through the channel the naming service uses.
  absl::Status RangeCall(const EtcdClientOptions& options) {
    absl::StatusOr<EtcdTarget> target = ParseEtcdTarget(target_);
    if (!target.ok()) return target.status();
    absl::StatusOr<std::unique_ptr<Channel>> channel = NewEtcdChannel(*target, options);
    if (!channel.ok()) return channel.status();
    etcdserverpb::KV::Stub kv(channel->get());
    etcdserverpb::RangeRequest request;
    request.set_key(target->prefix);
    request.set_range_end(EtcdRangeEnd(target->prefix));
    return kv.Range(request).status();
  }

  // The refusals expected of a client `options` describes: UNAVAILABLE,
  // naming `cause` (any message when empty), from both sides, within the
  // call timeout.
  void ExpectRefused(const EtcdClientOptions& options, absl::string_view cause) {
    const absl::Time start = absl::Now();
    absl::Status range = RangeCall(options);
    EXPECT_EQ(range.code(), absl::StatusCode::kUnavailable) << range;
    EXPECT_TRUE(absl::StrContains(range.message(), cause)) << range;
    EtcdRegistrationOptions registration_options;
    registration_options.etcd = options;
    auto registration = EtcdRegistration::Start(target_, "127.0.0.1:2101", registration_options);
    ASSERT_FALSE(registration.ok());
    EXPECT_EQ(registration.status().code(), absl::StatusCode::kUnavailable)
        << registration.status();
    EXPECT_TRUE(absl::StrContains(registration.status().message(), cause)) << registration.status();
    // Each attempt is bounded by the call timeout, not a hang.
    EXPECT_LT(absl::Now() - start, 2 * options.call_timeout + absl::Seconds(2));
  }

  std::unique_ptr<TestCa> ca_;
  std::unique_ptr<TestCa> other_ca_;
  TestCert server_cert_;
  TestCert client_cert_;
  std::unique_ptr<EtcdCluster> etcd_;
  std::string target_;
};

TEST_F(EtcdTlsTest, RegistrationOverMutualTlsIsFoundByANamingServiceOverMutualTls) {
  Server server;
  ASSERT_TRUE(server.AddService(testing::NewEchoService()).ok());
  ASSERT_TRUE(server.Start("127.0.0.1:0").ok());
  const std::string address = server.listen_address().ToString();
  EtcdRegistrationOptions registration_options;
  registration_options.etcd = ClientOptions(*ca_, /*with_certificate=*/true);
  auto registration = EtcdRegistration::Start(target_, address, registration_options);
  ASSERT_TRUE(registration.ok()) << registration.status();
  absl::StatusOr<std::string> got = etcd_->Etcdctl({"get", "--prefix", "/services/echo/"});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(absl::StrContains(*got, address)) << *got;

  auto naming = EtcdNamingService::Create(target_, ClientOptions(*ca_, true));
  ASSERT_TRUE(naming.ok()) << naming.status();
  ListRecorder lists;
  (*naming)->Watch(lists.watcher());
  ASSERT_TRUE(lists.WaitFor({address}));
  auto channel = Channel::Create(*naming);
  ASSERT_TRUE(channel.ok()) << channel.status();
  example::EchoRequest request;
  request.set_message("found over mTLS");
  example::EchoResponse response;
  absl::Status s = (*channel)->CallMethod("example.EchoService", "Echo", request, &response);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(response.message(), "found over mTLS");

  ASSERT_TRUE((*registration)->Deregister().ok());
  EXPECT_TRUE(lists.WaitFor({}));
  EXPECT_TRUE((*naming)->stats().connected);
}

TEST_F(EtcdTlsTest, ClientWithoutACertificateIsRefusedWithTheTlsCause) {
  ExpectRefused(ClientOptions(*ca_, /*with_certificate=*/false), "alert bad certificate");
}

TEST_F(EtcdTlsTest, ClientTrustingAnotherCaFailsVerifyingEtcd) {
  ExpectRefused(ClientOptions(*other_ca_, /*with_certificate=*/true), "certificate verify failed");
}

TEST_F(EtcdTlsTest, PlaintextClientIsRefusedWithoutHanging) {
  EtcdClientOptions options;
  options.call_timeout = absl::Seconds(3);
  options.connect_timeout = absl::Seconds(1);
  // etcd closes the connection on the HTTP/2 preface, before or after the
  // client's preface was written: the message depends on which, the code
  // does not.
  ExpectRefused(options, /*cause=*/"");
}

}  // namespace
}  // namespace nprpc
