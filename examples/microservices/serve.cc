#include "examples/microservices/serve.h"

#include <signal.h>

#include <cstdio>

namespace shop {

void BlockStopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int ServeUntilSignal(nprpc::Server& server, const std::string& name, const std::string& listen,
                     absl::Duration grace) {
  absl::Status started = server.Start(listen);
  if (!started.ok()) {
    std::fprintf(stderr, "%s: cannot serve on %s: %s\n", name.c_str(), listen.c_str(),
                 started.ToString().c_str());
    return 1;
  }
  std::printf("%s listening on %s\n", name.c_str(), server.listen_address().ToString().c_str());
  std::fflush(stdout);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  int signal = 0;
  sigwait(&set, &signal);
  server.Shutdown(grace);
  std::printf("%s stopped (signal %d)\n", name.c_str(), signal);
  std::fflush(stdout);
  return 0;
}

}  // namespace shop
