// example.EchoService (proto/echo.proto), implemented the way the brpc
// server that produced tests/data/baidu_std/ behaves, so that replaying those
// vectors against it reproduces brpc's answers:
//
//   Echo:    echoes `message`, the request attachment (moved, no copy) and
//            the request user_fields (into the response user_fields). When
//            the request's `code` is 7 the response payload is gzipped (the
//            echo_gzip_response vector).
//   Fail:    fails with error `code` (EINTERNAL 2001 when 0) and the text
//            "deliberate failure: <message>".
//   Missing: fails with ENOMETHOD 1002 "not here" (what the brpc server of
//            the no_method vector sent).
//
//   nprpc::Server server;
//   server.AddService(nprpc::testing::NewEchoService());
//
// Thread safety: the handlers are stateless; safe from any thread.
#ifndef TESTS_HARNESS_ECHO_SERVICE_H_
#define TESTS_HARNESS_ECHO_SERVICE_H_

#include <memory>

#include "rpc/service.h"

namespace nprpc::testing {

// The request `code` that makes Echo gzip its response.
inline constexpr int kGzipResponseCode = 7;

std::unique_ptr<Service> NewEchoService();

}  // namespace nprpc::testing

#endif  // TESTS_HARNESS_ECHO_SERVICE_H_
