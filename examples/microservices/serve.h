// ServeUntilSignal: the main loop shared by the demo's three servers.
//
// Starts `server` on `listen` (port 0: ephemeral), prints
// "listening on <address>" and flushes (scripts parse it), waits for SIGINT
// or SIGTERM, then shuts down gracefully within `grace` and returns the exit
// code. Call it from main() before starting any other thread: it blocks the
// two signals for the whole process so that sigwait() receives them.
#ifndef EXAMPLES_MICROSERVICES_SERVE_H_
#define EXAMPLES_MICROSERVICES_SERVE_H_

#include <string>

#include "absl/time/time.h"
#include "rpc/server.h"

namespace shop {

// Blocks SIGINT and SIGTERM in the calling thread (and the threads it starts
// later). Call first thing in main().
void BlockStopSignals();

int ServeUntilSignal(nprpc::Server& server, const std::string& name, const std::string& listen,
                     absl::Duration grace = absl::Seconds(2));

}  // namespace shop

#endif  // EXAMPLES_MICROSERVICES_SERVE_H_
