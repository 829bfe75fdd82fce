// HealthService: gRPC's standard health service, grpc.health.v1.Health
// (proto/grpc/health/v1/health.proto), so Kubernetes gRPC probes,
// grpc_health_probe and gRPC clients' health checking work against an nprpc
// server. A Server serves one by default (ServerOptions::serve_health) and
// drives it from its serving state: at Start() the server ("") and every
// added service are SERVING; when Shutdown() begins, everything turns
// NOT_SERVING before the server stops taking calls, so load balancers stop
// sending first. An application marks its own state with
// `server.health()->SetServingStatus("pkg.Service", false)`.
//
//   Check(service)  SERVING / NOT_SERVING; NOT_FOUND for a service it does
//                   not know (gRPC's behaviour)
//   Watch(service)  streams the status now and on every change
//                   (SERVICE_UNKNOWN for an unknown service, which may
//                   become known later); ends when the client cancels, or
//                   with OK after NOT_SERVING when the server stops
//
// Check is unary, so it answers over every protocol (baidu_std, HTTP JSON at
// POST /grpc.health.v1.Health/Check, gRPC); Watch streams, so gRPC only.
//
// Thread safety: every method is safe from any thread.
#ifndef RPC_HEALTH_SERVICE_H_
#define RPC_HEALTH_SERVICE_H_

#include <memory>

#include "absl/strings/string_view.h"
#include "rpc/service.h"

namespace nprpc {

struct HealthServiceState;

class HealthService final : public Service {
 public:
  static constexpr absl::string_view kServiceName = "grpc.health.v1.Health";

  HealthService();
  ~HealthService() override;

  // `service` "" is the server as a whole. Watchers of it are told. After
  // Shutdown() it is remembered but reported NOT_SERVING until Resume().
  void SetServingStatus(absl::string_view service, bool serving);
  // Every known service turns NOT_SERVING and stays so: the server is
  // stopping. Watchers are told, and then their streams end (OK), so open
  // watches do not hold up the server's drain.
  void Shutdown();
  // Undoes Shutdown(): the statuses set before it are back.
  void Resume();
  // Watch streams open now.
  size_t watchers() const;

 private:
  const std::shared_ptr<HealthServiceState> state_;
};

}  // namespace nprpc

#endif  // RPC_HEALTH_SERVICE_H_
