// pricing: prices with volume discounts. A callback service: the handler
// gets a Responder and completes it (here at once; it may hand it to another
// thread and answer later). It never blocks, so it runs on the I/O loop.
//
//   pricing_server --listen=127.0.0.1:0
#include <map>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "examples/microservices/serve.h"
#include "examples/server_flags.h"
#include "proto/shop/pricing.nprpc.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:0", "address to serve on");

namespace {

class PricingImpl final : public shop::Pricing::CallbackService {
 public:
  void GetPrice(nprpc::ServerContext&, const shop::PriceRequest& request, shop::Price* price,
                nprpc::Responder done) override {
    auto it = unit_cents_.find(request.sku());
    if (it == unit_cents_.end()) {
      done(absl::NotFoundError(absl::StrCat("no price for sku '", request.sku(), "'")));
      return;
    }
    int64_t quantity = request.quantity() > 0 ? request.quantity() : 1;
    int64_t total = it->second * quantity;
    if (quantity >= 10) total = total * 90 / 100;  // 10 % off from ten
    price->set_unit_cents(it->second);
    price->set_total_cents(total);
    price->set_currency("EUR");
    done(absl::OkStatus());
  }

 private:
  const std::map<std::string, int64_t> unit_cents_ = {
      {"kb-01", 8999}, {"ms-02", 2499}, {"mn-03", 24900}, {"hd-04", 3999}, {"cb-05", 999},
  };
};

}  // namespace

int main(int argc, char** argv) {
  shop::BlockStopSignals();
  absl::ParseCommandLine(argc, argv);
  PricingImpl pricing;
  nprpc::Server server(examples::ServerOptionsFromFlags());
  if (absl::Status s = server.AddService(&pricing); !s.ok()) return 1;
  return shop::ServeUntilSignal(server, "pricing", absl::GetFlag(FLAGS_listen));
}
