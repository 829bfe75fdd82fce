// Test certificates made at run time with OpenSSL (no private key is ever
// checked in): a CA, and leaf certificates it signs, with chosen names and
// validity (an expired one, one for the wrong host, a client certificate).
//
//   auto ca = netpoll::testing::TestCa::Create("test CA");
//   netpoll::testing::TestCert server = ca->Issue({.common_name = "server",
//       .dns_names = {"localhost"}, .ip_addresses = {"127.0.0.1"}});
//   tls_options.key_pair = server.key_pair();
//   tls_options.ca_pem = ca->cert_pem();
//
// Keys are ECDSA P-256 (fast to make). Thread safety: a TestCa is not
// thread-safe; use it from one thread.
#ifndef NETPOLL_TESTING_TEST_CERTS_H_
#define NETPOLL_TESTING_TEST_CERTS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "netpoll/tls_context.h"

namespace netpoll::testing {

struct TestCert {
  std::string cert_pem;  // the leaf alone (its CA is TestCa::cert_pem())
  std::string key_pem;
  TlsKeyPair key_pair() const {
    return {.cert_chain_pem = cert_pem,
            .private_key_pem = key_pem,
            .cert_chain_file = "",
            .private_key_file = ""};
  }
};

struct TestCertOptions {
  std::string common_name;
  std::vector<std::string> dns_names;
  std::vector<std::string> ip_addresses;
  // Valid from now + not_before to now + not_after (both may be negative:
  // -48h/-24h is a certificate that expired yesterday).
  absl::Duration not_before = absl::Hours(-1);
  absl::Duration not_after = absl::Hours(24);
};

class TestCa {
 public:
  static absl::StatusOr<std::unique_ptr<TestCa>> Create(const std::string& common_name);
  ~TestCa();
  TestCa(const TestCa&) = delete;
  TestCa& operator=(const TestCa&) = delete;

  const std::string& cert_pem() const { return cert_pem_; }
  // A certificate for `options`, signed by this CA. Aborts on OpenSSL errors
  // (a test cannot go on without it).
  TestCert Issue(const TestCertOptions& options);

 private:
  TestCa() = default;
  void* key_ = nullptr;   // EVP_PKEY*
  void* cert_ = nullptr;  // X509*
  std::string cert_pem_;
  long serial_ = 1;  // NOLINT(google-runtime-int): OpenSSL's type
};

}  // namespace netpoll::testing

#endif  // NETPOLL_TESTING_TEST_CERTS_H_
