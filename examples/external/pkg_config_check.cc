// Built by tools/external_test.sh with nothing but pkg-config,
//   c++ -std=c++20 pkg_config_check.cc $(pkg-config --cflags --libs nprpc)
// and by CMake on nprpc::nprpc_static (version_static).
// Prints the library's version and makes a Channel (no connection yet).
#include <cstdio>

#include "rpc/channel.h"
#include "rpc/version.h"

static_assert(NPRPC_VERSION >= NPRPC_MAKE_VERSION(0, 1, 0));

int main() {
  auto channel = nprpc::Channel::Create("127.0.0.1:1");
  if (!channel.ok()) {
    std::fprintf(stderr, "%s\n", channel.status().ToString().c_str());
    return 1;
  }
  std::printf("nprpc %s\n", NPRPC_VERSION_STRING);
  return 0;
}
