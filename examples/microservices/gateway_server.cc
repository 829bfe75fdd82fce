// gateway: quotes built from two downstream services. A coroutine service:
// GetQuote co_awaits Catalog.GetProduct and Pricing.GetPrice concurrently
// (WhenAll), so no thread waits while they run; the loop keeps serving other
// calls. The incoming call's deadline and trace context propagate to both calls.
//
//   gateway_server --listen=127.0.0.1:0 --catalog=ADDR --pricing=ADDR
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "examples/microservices/hop_recorder.h"
#include "examples/microservices/serve.h"
#include "examples/server_flags.h"
#include "proto/shop/catalog.nprpc.h"
#include "proto/shop/gateway.nprpc.h"
#include "proto/shop/pricing.nprpc.h"
#include "rpc/channel.h"
#include "rpc/task.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:0", "address to serve on");
ABSL_FLAG(std::string, catalog, "", "catalog service address (host:port or list://...)");
ABSL_FLAG(std::string, pricing, "", "pricing service address (host:port or list://...)");
ABSL_FLAG(int, hop_timeout_ms, 300, "deadline of each downstream call");

namespace {

// Runs `task` and records its latency and outcome on `hop`.
template <typename T>
nprpc::Task<T> Timed(shop::HopRecorder* hop, nprpc::Task<T> task) {
  absl::Time start = absl::Now();
  T result = co_await std::move(task);
  hop->Record(absl::Now() - start, result.ok());
  co_return result;
}

// The downstream failure, with the service named; the code is kept.
absl::Status Downstream(absl::string_view service, const absl::Status& status) {
  return absl::Status(status.code(), absl::StrCat(service, ": ", status.message()));
}

class GatewayImpl final : public shop::Gateway::CoroutineService {
 public:
  GatewayImpl(nprpc::Channel* catalog, nprpc::Channel* pricing, absl::Duration hop_timeout)
      : catalog_(catalog), pricing_(pricing), hop_timeout_(hop_timeout) {}

  nprpc::Task<absl::Status> GetQuote(nprpc::ServerContext&, const shop::QuoteRequest& request,
                                     shop::Quote* quote) override {
    shop::ProductRequest product_request;
    product_request.set_sku(request.sku());
    shop::PriceRequest price_request;
    price_request.set_sku(request.sku());
    price_request.set_quantity(request.quantity());
    nprpc::CallOptions options;
    options.timeout = hop_timeout_;  // the earlier of this and the caller's deadline applies
    auto [product, price] = co_await nprpc::WhenAll(
        Timed(&catalog_hop_, catalog_.GetProductAsync(product_request, options)),
        Timed(&pricing_hop_, pricing_.GetPriceAsync(price_request, options)));
    if (!product.ok()) co_return Downstream("catalog", product.status());
    if (!price.ok()) co_return Downstream("pricing", price.status());
    *quote->mutable_product() = std::move(*product);
    *quote->mutable_price() = std::move(*price);
    co_return absl::OkStatus();
  }

  nprpc::Task<absl::Status> GetStats(nprpc::ServerContext&, const shop::StatsRequest&,
                                     shop::Stats* stats) override {
    *stats->add_hops() = catalog_hop_.Snapshot();
    *stats->add_hops() = pricing_hop_.Snapshot();
    co_return absl::OkStatus();
  }

 private:
  shop::Catalog::Stub catalog_;
  shop::Pricing::Stub pricing_;
  const absl::Duration hop_timeout_;
  shop::HopRecorder catalog_hop_{"gateway -> catalog"};
  shop::HopRecorder pricing_hop_{"gateway -> pricing"};
};

}  // namespace

int main(int argc, char** argv) {
  shop::BlockStopSignals();
  absl::ParseCommandLine(argc, argv);
  nprpc::ChannelOptions options;
  options.retry.max_retries = 1;
  options.health_check_interval = absl::Milliseconds(50);
  options.max_health_check_interval = absl::Milliseconds(500);
  auto catalog = nprpc::Channel::Create(absl::GetFlag(FLAGS_catalog), options);
  auto pricing = nprpc::Channel::Create(absl::GetFlag(FLAGS_pricing), options);
  if (!catalog.ok() || !pricing.ok()) {
    std::fprintf(stderr, "gateway: bad --catalog or --pricing: %s %s\n",
                 catalog.status().ToString().c_str(), pricing.status().ToString().c_str());
    return 1;
  }
  GatewayImpl gateway(catalog->get(), pricing->get(),
                      absl::Milliseconds(absl::GetFlag(FLAGS_hop_timeout_ms)));
  nprpc::Server server(examples::ServerOptionsFromFlags());
  if (absl::Status s = server.AddService(&gateway); !s.ok()) return 1;
  return shop::ServeUntilSignal(server, "gateway", absl::GetFlag(FLAGS_listen));
}
