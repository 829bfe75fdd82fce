#include "rpc/internal/testing/promtool_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"

namespace nprpc {
namespace testing {

absl::Status PromtoolCheck(absl::string_view text) {
  if (access(kPromtoolPath, X_OK) != 0) return absl::UnavailableError("promtool not installed");
  const char* tmpdir = getenv("TEST_TMPDIR");
  std::string path = absl::StrCat(tmpdir != nullptr ? tmpdir : "/tmp", "/metrics_XXXXXX");
  int fd = mkstemp(path.data());
  if (fd < 0) return absl::InternalError("mkstemp failed");
  size_t written = 0;
  while (written < text.size()) {
    ssize_t n = write(fd, text.data() + written, text.size() - written);
    if (n <= 0) {
      close(fd);
      unlink(path.c_str());
      return absl::InternalError("write failed");
    }
    written += static_cast<size_t>(n);
  }
  close(fd);
  // promtool reads the metrics from stdin; 2>&1 so that lint output is seen.
  std::string command = absl::StrCat(kPromtoolPath, " check metrics < ", path, " 2>&1");
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) {
    unlink(path.c_str());
    return absl::InternalError("popen failed");
  }
  std::string output;
  char buf[4096];
  size_t n = 0;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) output.append(buf, n);
  int status = pclose(pipe);
  unlink(path.c_str());
  if (status != 0 || !output.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("promtool check metrics (exit ", WEXITSTATUS(status), "): ", output));
  }
  return absl::OkStatus();
}

}  // namespace testing
}  // namespace nprpc
