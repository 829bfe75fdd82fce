#include "rpc/internal/baidu_std_client_protocol.h"

#include <utility>

#include "netpoll/dialer.h"
#include "netpoll/logging.h"
#include "rpc/internal/pooled_transport.h"
#include "rpc/internal/single_connection_transport.h"

namespace nprpc {

absl::StatusOr<std::unique_ptr<ClientProtocol>> BaiduStdClientProtocol::Create(
    const ClientProtocolOptions& options) {
  NP_CHECK(options.loops != nullptr) << "a client protocol needs loops";
  std::unique_ptr<netpoll::ConnectionPool> pool;
  if (options.connections != ClientProtocolOptions::Connections::kSingle) {
    PooledTransportOptions pool_options;
    pool_options.short_connections =
        options.connections == ClientProtocolOptions::Connections::kShort;
    pool_options.connect_timeout = options.connect_timeout;
    pool_options.max_connections_per_endpoint = options.max_connections_per_endpoint;
    pool_options.max_idle_per_endpoint = options.max_idle_per_endpoint;
    pool_options.idle_timeout = options.idle_timeout;
    pool_options.max_body_size = options.max_body_size;
    pool_options.max_unwritten_bytes = options.max_unwritten_bytes;
    pool_options.write_timeout = options.write_timeout;
    pool_options.keepalive = options.tcp_keepalive;
    pool_options.tls = options.tls;
    auto made = PooledTransport::MakePool(options.loops, pool_options);
    if (!made.ok()) return made.status();
    pool = std::move(*made);
  }
  return std::unique_ptr<ClientProtocol>(new BaiduStdClientProtocol(options, std::move(pool)));
}

BaiduStdClientProtocol::BaiduStdClientProtocol(const ClientProtocolOptions& options,
                                               std::unique_ptr<netpoll::ConnectionPool> pool)
    : options_(options), pool_(std::move(pool)) {}

BaiduStdClientProtocol::~BaiduStdClientProtocol() { Shutdown(); }

std::shared_ptr<Transport> BaiduStdClientProtocol::NewTransport(const std::string& address) {
  if (options_.connections == ClientProtocolOptions::Connections::kSingle) {
    TransportOptions transport_options;
    transport_options.connect_timeout = options_.connect_timeout;
    transport_options.reconnect_backoff = options_.reconnect_backoff;
    transport_options.max_reconnect_backoff = options_.max_reconnect_backoff;
    transport_options.max_body_size = options_.max_body_size;
    transport_options.max_unwritten_bytes = options_.max_unwritten_bytes;
    transport_options.write_timeout = options_.write_timeout;
    transport_options.authenticator = options_.authenticator;
    transport_options.keepalive = options_.tcp_keepalive;
    transport_options.tls = options_.tls;
    return SingleConnectionTransport::Create(address, options_.loops->Next(), transport_options);
  }
  netpoll::MutexLock lock(&mu_);
  NP_CHECK(pool_ != nullptr) << "NewTransport after Shutdown";
  return PooledTransport::Create(address, pool_.get(), options_.authenticator);
}

void BaiduStdClientProtocol::Probe(const std::string& address,
                                   absl::AnyInvocable<void(absl::Status)> done) {
  netpoll::EventLoop* loop = options_.loops->Next();
  netpoll::DialOptions dial;
  dial.timeout = options_.connect_timeout;
  dial.connection.tls = options_.tls;  // a probe proves the handshake too
  // Queued, so that `done` never runs inside Probe().
  loop->QueueInLoop([loop, address, dial, done = std::move(done)]() mutable {
    netpoll::Dialer::Dial(
        loop, address, dial,
        [done = std::move(done)](absl::StatusOr<netpoll::ConnectionPtr> conn) mutable {
          if (conn.ok()) (*conn)->Close();
          done(conn.status());
        });
  });
}

void BaiduStdClientProtocol::Shutdown() {
  std::unique_ptr<netpoll::ConnectionPool> pool;
  {
    netpoll::MutexLock lock(&mu_);
    pool = std::move(pool_);
  }
  pool.reset();  // waits for the pool's connections to close
}

}  // namespace nprpc
