#include "rpc/dns_naming_service.h"

#include <algorithm>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "netpoll/logging.h"
#include "netpoll/socket_address.h"

namespace nprpc {

absl::StatusOr<std::vector<std::string>> ResolveEndpoints(const std::string& host_port) {
  absl::StatusOr<std::vector<netpoll::SocketAddress>> addresses =
      netpoll::SocketAddress::Resolve(host_port);
  if (!addresses.ok()) return addresses.status();
  std::vector<std::string> endpoints;
  endpoints.reserve(addresses->size());
  for (const netpoll::SocketAddress& address : *addresses) endpoints.push_back(address.ToString());
  std::sort(endpoints.begin(), endpoints.end());
  endpoints.erase(std::unique(endpoints.begin(), endpoints.end()), endpoints.end());
  return endpoints;
}

absl::StatusOr<std::unique_ptr<DnsNamingService>> DnsNamingService::Create(
    absl::string_view host_port, DnsNamingOptions options) {
  const size_t colon = host_port.rfind(':');
  int port = 0;
  if (colon == absl::string_view::npos || colon == 0 ||
      !absl::SimpleAtoi(host_port.substr(colon + 1), &port) || port <= 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "dns naming needs 'name:port' with a port in 1..65535, got '", host_port, "'"));
  }
  if (!options.resolve) options.resolve = ResolveEndpoints;
  auto service = std::unique_ptr<DnsNamingService>(
      new DnsNamingService(std::string(host_port), std::move(options)));
  service->thread_ = std::thread([raw = service.get()] { raw->Run(); });
  return service;
}

DnsNamingService::DnsNamingService(std::string host_port, DnsNamingOptions options)
    : host_port_(std::move(host_port)), options_(std::move(options)), list_({}) {}

DnsNamingService::~DnsNamingService() {
  {
    netpoll::MutexLock lock(&mu_);
    stop_ = true;
  }
  wake_.SignalAll();
  if (thread_.joinable()) thread_.join();
}

void DnsNamingService::OnEndpointFailure(const std::string& /*address*/) {
  {
    netpoll::MutexLock lock(&mu_);
    resolve_soon_ = true;
  }
  wake_.SignalAll();
}

std::string DnsNamingService::server_name() const {
  if (netpoll::SocketAddress::Parse(host_port_).ok()) return "";  // numeric
  return host_port_.substr(0, host_port_.rfind(':'));
}

int64_t DnsNamingService::resolutions() const {
  netpoll::MutexLock lock(&mu_);
  return resolutions_;
}

void DnsNamingService::Run() {
  absl::Time last = absl::InfinitePast();
  for (;;) {
    {
      // Cleared before resolving: a failure reported while this resolution
      // runs asks for one more after it (it may be about the new list).
      netpoll::MutexLock lock(&mu_);
      resolve_soon_ = false;
    }
    ResolveOnce();
    last = absl::Now();
    netpoll::MutexLock lock(&mu_);
    const absl::Time refresh = last + options_.refresh_interval;
    // Sleeps until the refresh is due, or until a failure asks for a new
    // look (no sooner than min_resolve_interval after the last one).
    while (!stop_) {
      const absl::Time now = absl::Now();
      if (now >= refresh) break;
      if (resolve_soon_ && now >= last + options_.min_resolve_interval) break;
      const absl::Time until =
          resolve_soon_ ? std::min(refresh, last + options_.min_resolve_interval) : refresh;
      wake_.WaitWithDeadline(&mu_, until);
    }
    if (stop_) return;
  }
}

void DnsNamingService::ResolveOnce() {
  absl::StatusOr<std::vector<std::string>> endpoints = options_.resolve(host_port_);
  {
    netpoll::MutexLock lock(&mu_);
    ++resolutions_;
  }
  if (endpoints.ok() && endpoints->empty()) {
    endpoints = absl::UnavailableError("no address in the answer");
  }
  if (!endpoints.ok()) {
    NP_LOG(WARNING) << "dns://" << host_port_
                    << ": keeping the previous list: " << endpoints.status();
    return;
  }
  std::vector<ServerNode> nodes;
  nodes.reserve(endpoints->size());
  for (std::string& endpoint : *endpoints) {
    ServerNode node;
    node.address = std::move(endpoint);
    nodes.push_back(std::move(node));
  }
  std::sort(nodes.begin(), nodes.end(),
            [](const ServerNode& a, const ServerNode& b) { return a.address < b.address; });
  if (nodes == list_.Nodes()) return;
  NP_LOG(INFO) << "dns://" << host_port_ << " -> " << nodes.size() << " endpoints";
  list_.Update(nodes);
}

}  // namespace nprpc
