// BaiduStdClientProtocol: the "baidu_std" ClientProtocol. Its transports
// speak brpc's baidu_std framing (baidu_std_client_codec.h):
//
//   single  SingleConnectionTransport  all calls multiplexed on one connection
//   pooled  PooledTransport            one call at a time per pooled connection
//   short   PooledTransport            a new connection per call
//
// Pooled and short transports of one channel share the protocol's
// netpoll::ConnectionPool, which Shutdown() destroys.
//
// Thread safety: as ClientProtocol.
#ifndef RPC_INTERNAL_BAIDU_STD_CLIENT_PROTOCOL_H_
#define RPC_INTERNAL_BAIDU_STD_CLIENT_PROTOCOL_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "netpoll/connection_pool.h"
#include "netpoll/mutex.h"
#include "rpc/internal/client_protocol.h"

namespace nprpc {

class BaiduStdClientProtocol final : public ClientProtocol {
 public:
  static constexpr absl::string_view kName = "baidu_std";

  // options.loops must not be null.
  static absl::StatusOr<std::unique_ptr<ClientProtocol>> Create(
      const ClientProtocolOptions& options);
  ~BaiduStdClientProtocol() override;

  absl::string_view name() const override { return kName; }
  std::shared_ptr<Transport> NewTransport(const std::string& address) override;
  void Probe(const std::string& address, absl::AnyInvocable<void(absl::Status)> done) override;
  void Shutdown() override;

 private:
  BaiduStdClientProtocol(const ClientProtocolOptions& options,
                         std::unique_ptr<netpoll::ConnectionPool> pool);

  const ClientProtocolOptions options_;
  netpoll::Mutex mu_;
  // Pooled and short only; null after Shutdown().
  std::unique_ptr<netpoll::ConnectionPool> pool_ ABSL_GUARDED_BY(mu_);
};

}  // namespace nprpc

#endif  // RPC_INTERNAL_BAIDU_STD_CLIENT_PROTOCOL_H_
