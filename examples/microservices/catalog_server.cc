// catalog: product data by SKU. A sync service: handlers run on the worker
// pool (they could block on a database).
//
//   catalog_server --listen=127.0.0.1:0
#include <map>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "examples/microservices/serve.h"
#include "examples/server_flags.h"
#include "proto/shop/catalog.nprpc.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:0", "address to serve on");

namespace {

class CatalogImpl final : public shop::Catalog::Service {
 public:
  absl::Status GetProduct(nprpc::ServerContext&, const shop::ProductRequest& request,
                          shop::Product* product) override {
    auto it = products_.find(request.sku());
    if (it == products_.end()) {
      return absl::NotFoundError(absl::StrCat("no product with sku '", request.sku(), "'"));
    }
    product->set_sku(request.sku());
    product->set_name(it->second.first);
    product->set_stock(it->second.second);
    return absl::OkStatus();
  }

 private:
  const std::map<std::string, std::pair<std::string, int>> products_ = {
      {"kb-01", {"mechanical keyboard", 42}}, {"ms-02", {"wireless mouse", 7}},
      {"mn-03", {"27-inch monitor", 3}},      {"hd-04", {"USB-C hub", 120}},
      {"cb-05", {"braided cable", 999}},
  };
};

}  // namespace

int main(int argc, char** argv) {
  shop::BlockStopSignals();
  absl::ParseCommandLine(argc, argv);
  CatalogImpl catalog;
  nprpc::Server server(examples::ServerOptionsFromFlags());
  if (absl::Status s = server.AddService(&catalog); !s.ok()) return 1;
  return shop::ServeUntilSignal(server, "catalog", absl::GetFlag(FLAGS_listen));
}
