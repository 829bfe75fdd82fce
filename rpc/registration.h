// Registration: a server's entry in a naming system (etcd:
// rpc/etcd_registration.h), handed to its Server so a graceful Shutdown()
// takes the entry out first: clients stop picking the server before it stops
// taking calls.
//
//   server.AddRegistration(*nprpc::EtcdRegistration::Start(
//       "etcd://10.0.0.5:2379/services/echo", server.listen_address().ToString()));
//
// Thread safety: Deregister() is safe from any thread.
#ifndef RPC_REGISTRATION_H_
#define RPC_REGISTRATION_H_

#include "absl/status/status.h"

namespace nprpc {

class Registration {
 public:
  virtual ~Registration() = default;
  // Removes the entry (and stops keeping it alive). Idempotent; blocks at
  // most the naming system's call timeout.
  virtual absl::Status Deregister() = 0;
};

}  // namespace nprpc

#endif  // RPC_REGISTRATION_H_
