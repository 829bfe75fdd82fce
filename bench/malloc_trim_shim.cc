// malloc_trim_shim: an LD_PRELOAD library that makes any glibc program call
// malloc_trim(0) periodically, so bench/run_memory_burst.sh can measure
// "glibc + malloc_trim" on the unchanged echo server.
//
//   LD_PRELOAD=bazel-bin/bench/libmalloc_trim_shim.so MALLOC_TRIM_SHIM_INTERVAL_MS=1000
//       rpc_echo_server --listen=127.0.0.1:0
//
// Its constructor starts one thread that calls malloc_trim(0) every
// MALLOC_TRIM_SHIM_INTERVAL_MS milliseconds (default 1000; 0: never on a
// timer) and also whenever the process receives SIGUSR1 (memory_burst
// --signal_after_burst=10 sends it when a burst's last answer is in). Each
// call is timed; with MALLOC_TRIM_SHIM_LOG=1 (default) a line goes to stderr
// for every SIGUSR1 trim and for every timer trim that took >= 1 ms or
// lowered the RSS by >= 1 MiB, with MALLOC_TRIM_SHIM_LOG=2 for every trim:
//
//   malloc_trim_shim: trim n=3 cause=signal took_us=5123 rss_before_kib=190000
//       rss_after_kib=12000 released=1 in_use_kib=9000 free_kib=40000
//
// With MALLOC_TRIM_SHIM_IDLE=1 a timer tick trims only when the process was
// idle during the last interval (its CPU time, all threads, grew by less
// than MALLOC_TRIM_SHIM_IDLE_CPU_PCT percent of the interval; default 5)
// after having been busy since the last trim: one trim per burst, when the
// burst is over, and none during it (cause=idle).
//
// in_use_kib and free_kib are mallinfo2() after the trim: what the program
// still holds (all arenas and mmapped chunks), and glibc's free chunks (whose
// trimmed pages no longer count in the RSS).
//
// SIGUSR1 is blocked in the main thread before main() runs (so in every
// thread the program creates) and taken only by the shim's thread with
// sigtimedwait: no handler, no EINTR anywhere else. The shim's thread blocks
// every signal, so SIGINT/SIGTERM still reach the program's own sigwait.
// A benchmark aid, not a library: glibc only (malloc_trim), Linux only.
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace {

int64_t interval_ms = 1000;
int log_level = 1;
bool idle_only = false;
int64_t idle_cpu_pct = 5;
int64_t last_cpu_us = 0;  // TrimLoop's only
bool dirty = false;       // TrimLoop's only: busy since the last trim

int64_t MonotonicUs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000 + ts.tv_nsec / 1000;
}

// CPU time of the whole process (every thread), in microseconds.
int64_t ProcessCpuUs() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return int64_t{ts.tv_sec} * 1000000 + ts.tv_nsec / 1000;
}

// Resident KiB from /proc/self/statm (no allocation); -1 on error.
int64_t RssKib() {
  int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  char buf[128];
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = '\0';
  // "size resident shared ...", in pages.
  const char* p = buf;
  while (*p != '\0' && *p != ' ') ++p;  // skip size
  while (*p == ' ') ++p;
  int64_t resident = 0;
  bool digits = false;
  for (; *p >= '0' && *p <= '9'; ++p, digits = true) resident = resident * 10 + (*p - '0');
  if (!digits) return -1;
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

void Log(const char* text, int len) {
  if (len <= 0) return;
  ssize_t unused = write(STDERR_FILENO, text, static_cast<size_t>(len));
  (void)unused;
}

void* TrimLoop(void*) {
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  for (int n = 1;; ++n) {
    int got;
    if (interval_ms > 0) {
      timespec timeout = {static_cast<time_t>(interval_ms / 1000),
                          static_cast<decltype(timespec::tv_nsec)>(interval_ms % 1000) * 1000000};
      got = sigtimedwait(&usr1, nullptr, &timeout);
    } else {
      got = sigwaitinfo(&usr1, nullptr);
    }
    if (got < 0 && errno == EINTR) {
      --n;
      continue;
    }
    const bool by_signal = got == SIGUSR1;
    if (idle_only && !by_signal) {
      // Trim once per busy-then-idle transition: skip busy ticks and idle
      // ticks with nothing new since the last trim.
      const int64_t cpu = ProcessCpuUs();
      const bool busy = cpu - last_cpu_us > interval_ms * 1000 * idle_cpu_pct / 100;
      last_cpu_us = cpu;
      if (busy) dirty = true;
      if (busy || !dirty) {
        --n;
        continue;
      }
    }
    dirty = false;
    const int64_t rss_before = RssKib();
    const int64_t t0 = MonotonicUs();
    const int released = malloc_trim(0);
    const int64_t took_us = MonotonicUs() - t0;
    const int64_t rss_after = RssKib();
    // What the program still holds (all arenas, mmapped chunks included) and
    // what glibc keeps as free chunks, after the trim.
    const struct mallinfo2 info = mallinfo2();
    const int64_t in_use_kib = static_cast<int64_t>((info.uordblks + info.hblkhd) / 1024);
    const int64_t free_kib = static_cast<int64_t>(info.fordblks / 1024);
    if (log_level >= 2 || (log_level == 1 && (by_signal || idle_only || took_us >= 1000 ||
                                              rss_before - rss_after >= 1024))) {
      char line[256];
      int len = std::snprintf(line, sizeof(line),
                              "malloc_trim_shim: trim n=%d cause=%s took_us=%lld "
                              "rss_before_kib=%lld rss_after_kib=%lld released=%d "
                              "in_use_kib=%lld free_kib=%lld\n",
                              n, by_signal ? "signal" : (idle_only ? "idle" : "timer"),
                              static_cast<long long>(took_us), static_cast<long long>(rss_before),
                              static_cast<long long>(rss_after), released,
                              static_cast<long long>(in_use_kib), static_cast<long long>(free_kib));
      Log(line, len);
    }
  }
  return nullptr;
}

__attribute__((constructor)) void StartTrimThread() {
  if (const char* v = std::getenv("MALLOC_TRIM_SHIM_INTERVAL_MS")) interval_ms = std::atoll(v);
  if (const char* v = std::getenv("MALLOC_TRIM_SHIM_LOG")) log_level = std::atoi(v);
  if (const char* v = std::getenv("MALLOC_TRIM_SHIM_IDLE")) idle_only = std::atoi(v) != 0;
  if (const char* v = std::getenv("MALLOC_TRIM_SHIM_IDLE_CPU_PCT")) idle_cpu_pct = std::atoll(v);
  if (interval_ms < 0) interval_ms = 0;

  // SIGUSR1 stays blocked in this (the main) thread and every thread created
  // later; only TrimLoop takes it.
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &usr1, nullptr);

  // The trim thread inherits an all-blocked mask.
  sigset_t all, saved;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &saved);
  pthread_t thread;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  const int rc = pthread_create(&thread, &attr, TrimLoop, nullptr);
  pthread_attr_destroy(&attr);
  pthread_sigmask(SIG_SETMASK, &saved, nullptr);

  char line[160];
  int len = rc == 0
                ? std::snprintf(line, sizeof(line),
                                "malloc_trim_shim: malloc_trim(0) every %ld ms (0: only on "
                                "SIGUSR1) and on SIGUSR1\n",
                                interval_ms)
                : std::snprintf(line, sizeof(line),
                                "malloc_trim_shim: cannot start the trim thread (error %d)\n", rc);
  Log(line, len);
}

}  // namespace
