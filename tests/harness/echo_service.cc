#include "tests/harness/echo_service.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "netpoll/logging.h"
#include "proto/echo.pb.h"
#include "rpc/errors.h"

namespace nprpc::testing {

namespace {

using example::EchoRequest;
using example::EchoResponse;

absl::Status Echo(ServerContext& ctx, const EchoRequest& req, EchoResponse* resp) {
  resp->set_message(req.message());
  ctx.response_attachment() = std::move(ctx.request_attachment());
  ctx.response_user_fields() = ctx.request_user_fields();
  if (req.code() == kGzipResponseCode) ctx.set_response_compress_type(CompressType::kGzip);
  return absl::OkStatus();
}

absl::Status Fail(ServerContext&, const EchoRequest& req, EchoResponse*) {
  return MakeRpcError(req.code() != 0 ? req.code() : EINTERNAL,
                      absl::StrCat("deliberate failure: ", req.message()));
}

absl::Status Missing(ServerContext&, const EchoRequest&, EchoResponse*) {
  return MakeRpcError(ENOMETHOD, "not here");
}

}  // namespace

std::unique_ptr<Service> NewEchoService() {
  // echo.proto has no cc_generic_services: take the descriptor from its file.
  const google::protobuf::ServiceDescriptor* descriptor =
      EchoRequest::descriptor()->file()->FindServiceByName("EchoService");
  NP_CHECK(descriptor != nullptr);
  auto service = std::make_unique<Service>(descriptor);
  NP_CHECK(service->AddMethod("Echo", TypedUnary<EchoRequest, EchoResponse>(Echo)).ok());
  NP_CHECK(service->AddMethod("Fail", TypedUnary<EchoRequest, EchoResponse>(Fail)).ok());
  NP_CHECK(service->AddMethod("Missing", TypedUnary<EchoRequest, EchoResponse>(Missing)).ok());
  return service;
}

}  // namespace nprpc::testing
