#include "rpc/server_options.h"

#include <algorithm>

namespace nprpc {

int DefaultIoLoops(int cores) { return std::max(1, cores / 2); }

int DefaultWorkerThreads(int cores) { return std::max(4, cores); }

}  // namespace nprpc
