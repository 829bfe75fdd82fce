// BuiltinPages: the pages an operator reads off a running server, over the
// HTTP/1.1 the serving port (or the admin port) speaks:
//
//   /             an index of the pages
//   /health       200 "OK" while serving, 503 while shutting down (load
//                 balancers, Kubernetes probes)
//   /metrics      every metric of the process in Prometheus text format
//                 (MetricsRegistry: methods, servers, channels, process)
//   /status       HTML for a person: version, uptime, process, connections,
//                 and per method QPS, latency percentiles (p50..p999 over the
//                 last 10 s), requests, errors, calls in flight
//   /rpcz         recent spans of sampled calls (rpc/tracing.h), newest
//                 first; ?trace_id=<hex> keeps one trace, ?limit=N,
//                 ?format=json gives JSON lines
//   /connections  peer, protocol, age, bytes each way, calls in flight;
//                 ?format=json
//
// The server gives the pages what they show through a Source of callbacks,
// so the pages hold no pointer into it.
//
// Thread safety: Serve() runs on any I/O loop thread, concurrently; the
// Source's callbacks must be safe from any thread.
#ifndef RPC_INTERNAL_BUILTIN_PAGES_H_
#define RPC_INTERNAL_BUILTIN_PAGES_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "rpc/internal/http_message.h"
#include "rpc/server_options.h"

namespace nprpc {

class BuiltinPages final : public HttpPages {
 public:
  // One open connection, for /connections.
  struct ConnectionRow {
    std::string peer;
    std::string protocol;  // "baidu_std", "http", "" (not yet known)
    absl::Time created_at;
    int64_t bytes_read = 0;
    int64_t bytes_written = 0;
    int64_t calls_in_flight = 0;
  };
  struct Source {
    std::function<bool()> serving;  // false once shutting down
    std::function<ServerStats()> stats;
    std::function<std::vector<ConnectionRow>()> connections;
    std::function<std::string()> listen_address;
    absl::Time started_at;
  };

  explicit BuiltinPages(Source source) : source_(std::move(source)) {}

  bool Serve(const HttpRequest& request, HttpResponse& response) const override;

 private:
  void Health(HttpResponse& response) const;
  void Metrics(HttpResponse& response) const;
  void Status(HttpResponse& response) const;
  void Rpcz(const HttpRequest& request, HttpResponse& response) const;
  void Connections(const HttpRequest& request, HttpResponse& response) const;
  void Index(HttpResponse& response) const;

  const Source source_;
};

}  // namespace nprpc

#endif  // RPC_INTERNAL_BUILTIN_PAGES_H_
