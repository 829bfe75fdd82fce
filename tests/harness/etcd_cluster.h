// A real etcd cluster (Debian's etcd-server) for discovery tests: one member
// on loopback, or members inside network namespaces (each started through
// an exec prefix such as {"ip", "netns", "exec", "nprpc-h1"}). Members get
// their own data directories and fast raft timings; the cluster is ready
// when every member reports healthy. Destroying it stops every member
// (SIGTERM, then SIGKILL) and removes nothing but its own processes.
//
//   auto etcd = nprpc::testing::EtcdCluster::StartLocal(dir);
//   ASSERT_TRUE(etcd.ok()) << etcd.status();
//   (*etcd)->client_endpoints();   // "127.0.0.1:41234"
//   (*etcd)->Etcdctl({"put", "/svc/echo/a", "127.0.0.1:8000"});
//
// With EtcdTlsFiles the members serve clients over TLS (https:// client
// URLs; peers stay plaintext), by default requiring a client certificate;
// Etcdctl() then presents the client certificate named there.
//
// Thread safety: one thread at a time.
#ifndef TESTS_HARNESS_ETCD_CLUSTER_H_
#define TESTS_HARNESS_ETCD_CLUSTER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "tests/harness/subprocess.h"

namespace nprpc::testing {

struct EtcdMember {
  std::string name;                      // "e1"
  std::string ip;                        // listens here: "127.0.0.1", "10.77.0.2"
  int client_port = 0;                   // 0: a free loopback port (local members only)
  int peer_port = 0;                     // 0: likewise
  std::vector<std::string> exec_prefix;  // run etcd/etcdctl through this (a netns)
};

// PEM files (written by the test) for a cluster serving clients over TLS.
// Empty cert_file: plaintext.
struct EtcdTlsFiles {
  std::string cert_file;         // the members' certificate and key (--cert-file,
  std::string key_file;          // --key-file): must name the members' IPs
  std::string ca_file;           // verifies client certificates and, for etcdctl, the members
  bool client_cert_auth = true;  // mutual TLS (--client-cert-auth)
  // What Etcdctl() presents (may be empty without client_cert_auth).
  std::string client_cert_file;
  std::string client_key_file;
};

class EtcdCluster {
 public:
  // True when /usr/bin/etcd and /usr/bin/etcdctl exist.
  static bool Available();

  // Starts `members` as one new cluster with data under `dir`, waiting up to
  // `timeout` for all of them to be healthy. With `tls.cert_file` set, the
  // members serve clients over TLS. Ports left 0 are picked free; when one
  // was taken before etcd bound it, the start is tried again (up to 5 times)
  // on other ports.
  static absl::StatusOr<std::unique_ptr<EtcdCluster>> Start(
      const std::vector<EtcdMember>& members, const std::string& dir,
      absl::Duration timeout = absl::Seconds(30), const EtcdTlsFiles& tls = {});
  // One member on 127.0.0.1.
  static absl::StatusOr<std::unique_ptr<EtcdCluster>> StartLocal(const std::string& dir,
                                                                 const EtcdTlsFiles& tls = {});

  ~EtcdCluster();
  EtcdCluster(const EtcdCluster&) = delete;
  EtcdCluster& operator=(const EtcdCluster&) = delete;

  // "ip:port,ip:port,..." of the running members' client URLs (for an
  // etcd:// target).
  std::string client_endpoints() const;
  const std::vector<EtcdMember>& members() const { return members_; }

  // Stops member i (SIGTERM, then SIGKILL): the cluster keeps quorum while a
  // majority runs.
  void Stop(int i);
  bool running(int i) const { return processes_[i] != nullptr; }
  // Starts a stopped member i again on its data (it rejoins the cluster,
  // keeping the store and its revisions), waiting until it is healthy.
  absl::Status Restart(int i, absl::Duration timeout = absl::Seconds(30));

  // Runs etcdctl (API v3) against the running members, through member
  // `via`'s exec prefix; its output, or an error with it.
  absl::StatusOr<std::string> Etcdctl(const std::vector<std::string>& args, int via = 0) const;

 private:
  EtcdCluster(std::vector<EtcdMember> members, std::string dir, EtcdTlsFiles tls)
      : members_(std::move(members)), dir_(std::move(dir)), tls_(std::move(tls)) {}
  bool tls() const { return !tls_.cert_file.empty(); }
  // The running members' client addresses, each after `scheme`.
  std::string Endpoints(absl::string_view scheme) const;
  absl::Status WaitHealthy(absl::Duration timeout) const;
  std::unique_ptr<BackgroundProcess> Launch(const EtcdMember& m) const;

  std::vector<EtcdMember> members_;
  std::string dir_;
  EtcdTlsFiles tls_;
  std::string initial_cluster_;
  std::string token_;
  std::vector<std::unique_ptr<BackgroundProcess>> processes_;
};

}  // namespace nprpc::testing

#endif  // TESTS_HARNESS_ETCD_CLUSTER_H_
