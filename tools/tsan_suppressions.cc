// ThreadSanitizer suppressions, linked into every binary built with
// --config=tsan (through --custom_malloc in .bazelrc, which adds this library
// to every link without changing the allocator).
//
// Debian's Abseil is a prebuilt shared library, not compiled with
// -fsanitize=thread: the atomic reference counts inside absl::Status and
// absl::Cord are invisible to TSan, so freeing a Status rep that two threads
// shared looks like a race. Project code synchronizes through netpoll::Mutex
// (annotated for TSan, see netpoll/mutex.h); these entries cover only what
// happens inside the uninstrumented libraries.
// NOLINTNEXTLINE(bugprone-reserved-identifier): the name the TSan runtime looks up.
extern "C" const char* __tsan_default_suppressions() {
  // race:<module> matches a report with any frame in that library.
  return "called_from_lib:libabsl_status.so\n"
         "called_from_lib:libabsl_cord.so\n"
         "race:libabsl_status.so\n"
         "race:libabsl_cord.so\n"
         "race:libabsl_cord_internal.so\n"
         // A Status' last reference dropped in the .so (uninstrumented: the
         // atomic count that orders it after other threads' reads of the
         // message is invisible to TSan), also when that frame is inlined
         // away from the report's stack.
         "race:UnrefNonInlined\n"
         // Debian's gRPC C++ (the peer of the gRPC interop tests), likewise
         // uninstrumented: its event engine and call state race only with
         // themselves as TSan sees them.
         "called_from_lib:libgrpc.so\n"
         "called_from_lib:libgpr.so\n"
         "race:libgrpc.so\n"
         "race:libgpr.so\n"
         "race:libgrpc++.so\n"
         // gRPC C++'s header templates (its call ops), compiled into the test
         // binaries that use a gRPC C++ client, over the same uninstrumented
         // core: no frame of the report is in libgrpc*.so.
         "race:grpc::internal::\n"
         // absl::Mutex, which gRPC locks with (project code uses
         // netpoll::Mutex, which TSan sees).
         "race:libabsl_graphcycles_internal.so\n"
         "race:libabsl_synchronization.so\n"
         // Debian's libcrypto (OpenSSL 3.0), uninstrumented: a certificate's
         // extension cache (key identifiers, flags) is filled once under the
         // certificate's lock and then read through a lock-free fast path
         // (an acquire load of x->ex_cached in ossl_x509v3_cache_extensions),
         // which TSan cannot see. Two loops handshaking with one context (a
         // pooled or multi-endpoint mTLS channel) then show the key
         // identifier comparison of chain building as a race.
         "race:ASN1_STRING_cmp\n"
         // The same libcrypto frees an object (a key, a certificate store
         // shared by a context and the contexts derived from it) when its
         // reference count, an atomic TSan cannot see, drops to zero; the
         // lock inside it is then destroyed on the thread that let go last
         // after another thread's release had locked it.
         "race:CRYPTO_THREAD_lock_free\n";
}
