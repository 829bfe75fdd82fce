// Built by tools/external_test.sh with nothing but pkg-config,
//   c++ -std=c++20 pkg_config_check.cc $(pkg-config --cflags --libs nprpc)
// and by CMake on nprpc::nprpc_static (version_static).
// Prints the library's version, makes a Channel (no connection yet) and
// checks that the etcd:// scheme registered itself at start-up, which a
// static link must not lose (rpc/etcd_naming_service.cc).
#include <cstdio>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "rpc/channel.h"
#include "rpc/naming_service.h"
#include "rpc/naming_services.h"
#include "rpc/version.h"

static_assert(NPRPC_VERSION >= NPRPC_MAKE_VERSION(0, 1, 0));

int main() {
  auto channel = nprpc::Channel::Create("127.0.0.1:1");
  if (!channel.ok()) {
    std::fprintf(stderr, "%s\n", channel.status().ToString().c_str());
    return 1;
  }
  // Registering "etcd" again fails only when it is there already.
  absl::Status again = nprpc::RegisterNamingScheme(
      "etcd", [](absl::string_view) -> absl::StatusOr<std::shared_ptr<nprpc::NamingService>> {
        return absl::UnimplementedError("unused");
      });
  if (again.code() != absl::StatusCode::kAlreadyExists) {
    std::fprintf(stderr, "the etcd:// scheme is not registered (%s)\n", again.ToString().c_str());
    return 1;
  }
  std::printf("nprpc %s\n", NPRPC_VERSION_STRING);
  return 0;
}
