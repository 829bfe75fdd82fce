// netpoll-rpc's version. The single source of truth: CMakeLists.txt reads
// these three numbers (project version, SONAME) and Bazel serves this header
// as //rpc:version.
//
//   #include "rpc/version.h"
//   static_assert(NPRPC_VERSION >= NPRPC_MAKE_VERSION(0, 1, 0));
#ifndef RPC_VERSION_H_
#define RPC_VERSION_H_

#define NPRPC_VERSION_MAJOR 0
#define NPRPC_VERSION_MINOR 1
#define NPRPC_VERSION_PATCH 0

// One number that orders versions: 0.1.0 is 100, 1.2.3 is 10203.
#define NPRPC_MAKE_VERSION(major, minor, patch) ((major)*10000 + (minor)*100 + (patch))
#define NPRPC_VERSION \
  NPRPC_MAKE_VERSION(NPRPC_VERSION_MAJOR, NPRPC_VERSION_MINOR, NPRPC_VERSION_PATCH)

// "0.1.0"
#define NPRPC_VERSION_STRING              \
  NPRPC_INTERNAL_STR(NPRPC_VERSION_MAJOR) \
  "." NPRPC_INTERNAL_STR(NPRPC_VERSION_MINOR) "." NPRPC_INTERNAL_STR(NPRPC_VERSION_PATCH)
#define NPRPC_INTERNAL_STR(x) NPRPC_INTERNAL_STR2(x)
#define NPRPC_INTERNAL_STR2(x) #x

#endif  // RPC_VERSION_H_
