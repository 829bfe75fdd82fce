// ThreadSanitizer suppressions, linked into every binary built with
// --config=tsan (through --custom_malloc in .bazelrc, which adds this library
// to every link without changing the allocator).
//
// Debian's Abseil is a prebuilt shared library, not compiled with
// -fsanitize=thread: the atomic reference counts inside absl::Status and
// absl::Cord are invisible to TSan, so freeing a Status rep that two threads
// shared looks like a race. Project code synchronizes through netpoll::Mutex
// (annotated for TSan, see netpoll/mutex.h); these entries cover only what
// happens inside the uninstrumented library.
// NOLINTNEXTLINE(bugprone-reserved-identifier): the name the TSan runtime looks up.
extern "C" const char* __tsan_default_suppressions() {
  // race:<module> matches a report with any frame in that library.
  return "called_from_lib:libabsl_status.so\n"
         "called_from_lib:libabsl_cord.so\n"
         "race:libabsl_status.so\n"
         "race:libabsl_cord.so\n";
}
