// The client half of baidu_std shared by its transports (single, pooled,
// short): a ClientRequest becomes a request frame, a response frame becomes
// the attempt's response message, CallInfo and status.
//
// Thread safety: every function is safe from any thread on distinct buffers.
#ifndef RPC_INTERNAL_BAIDU_STD_CLIENT_CODEC_H_
#define RPC_INTERNAL_BAIDU_STD_CLIENT_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "netpoll/link_buffer.h"
#include "rpc/authenticator.h"
#include "rpc/call_options.h"
#include "rpc/internal/client_call.h"
#include "rpc/internal/frame_codec.h"
#include "rpc/internal/transport.h"

namespace nprpc {

// Appends the request frame of one attempt to `out`: `correlation_id` is the
// attempt's ClientCall::id(), `timeout` (InfiniteDuration: none) goes out as
// timeout_ms, rounded up to whole milliseconds (at least 1). The payload and
// attachment are cloned, not copied. EREQUEST error (and `out` unchanged)
// when the request cannot be encoded.
absl::Status EncodeBaiduStdRequest(int64_t correlation_id, const ClientRequest& request,
                                   absl::Duration timeout, netpoll::LinkBuffer& out);

// Rewrites `frame`, one request frame made by EncodeBaiduStdRequest(), so
// that its meta carries `credential` as authentication_data: the bytes are
// those EncodeBaiduStdRequest() would have written with the credential in its
// header (payload and attachment are moved, not copied). Used on the first
// request of a connection (Authenticator). EREQUEST error when `frame` is not
// one whole request frame (then `frame` is unspecified).
absl::Status AddBaiduStdCredential(std::string credential, netpoll::LinkBuffer& frame);

// Asks `authenticator` for the credential of a new connection: ERPCAUTH error
// ("Fail to generate credential: ...") when it fails.
absl::StatusOr<std::string> GenerateBaiduStdCredential(const Authenticator& authenticator);

// Completes `call` with a response frame: checksum, error code, response
// attachment and user fields, decompression and parsing (ERESPONSE errors).
// Returns false if the attempt had already completed.
bool CompleteWithBaiduStdResponse(ClientCall& call, DecodedFrame frame, size_t max_body_size);

// Logs a response no attempt on the connection is waiting for (a duplicate,
// an unknown correlation id), at most once per second per process with the
// number not logged since. Such answers are dropped, never fatal to the
// connection: correlation ids are never reused, so one cannot complete the
// wrong call, and the other calls on the connection stay unharmed.
void LogUnexpectedResponse(absl::string_view address, int64_t correlation_id);

// Responses dropped by LogUnexpectedResponse() in this process (for tests).
int64_t UnexpectedResponses();

}  // namespace nprpc

#endif  // RPC_INTERNAL_BAIDU_STD_CLIENT_CODEC_H_
