// FUZZ_CHECK: the invariant check of the fuzz targets. A violated invariant
// prints what and where, then aborts, which libFuzzer reports as a crash (and
// saves the input) and the corpus replay test reports as a failure.
//
//   FUZZ_CHECK(consumed == 12 + body_size) << "consumed " << consumed;
//
// Thread safety: any thread.
#ifndef TESTS_FUZZ_FUZZ_CHECK_H_
#define TESTS_FUZZ_FUZZ_CHECK_H_

#include <cstdlib>
#include <iostream>
#include <sstream>

namespace nprpc::fuzz {

// Collects the message of a failed check and aborts when destroyed.
class CheckFailure {
 public:
  CheckFailure(const char* file, int line, const char* condition) {
    stream_ << file << ":" << line << ": invariant violated: " << condition << " ";
  }
  [[noreturn]] ~CheckFailure() {
    std::cerr << stream_.str() << std::endl;
    std::abort();
  }
  std::ostream& stream() { return stream_; }

 private:
  std::ostringstream stream_;
};

}  // namespace nprpc::fuzz

#define FUZZ_CHECK(condition) \
  if (condition) {            \
  } else                      \
    ::nprpc::fuzz::CheckFailure(__FILE__, __LINE__, #condition).stream()

#endif  // TESTS_FUZZ_FUZZ_CHECK_H_
