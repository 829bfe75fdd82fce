// brpc error numbers and their place in absl::Status.
//
// A baidu_std response carries a brpc error number (RpcResponseMeta.
// error_code) and a text. nprpc reports failures as absl::Status; this file
// maps the numbers onto canonical codes and keeps the exact number in the
// status as a payload, so that a number survives the trip
// wire -> Status -> wire unchanged, custom numbers included.
//
//   absl::Status s = nprpc::MakeRpcError(nprpc::ENOMETHOD, "no such method");
//   s.code();                // absl::StatusCode::kUnimplemented
//   nprpc::ErrorCodeOf(s);   // 1002
//
// Mapping (number -> code):
//   ENOSERVICE 1001, ENOMETHOD 1002     -> kUnimplemented
//   EREQUEST 1003                       -> kInvalidArgument
//   ERPCAUTH 1004                       -> kUnauthenticated
//   ERPCTIMEDOUT 1008                   -> kDeadlineExceeded
//   EFAILEDSOCKET 1009, ELOGOFF 2003,
//   EOVERCROWDED 1011                   -> kUnavailable
//   ELIMIT 2004                         -> kResourceExhausted
//   EINTERNAL 2001, ERESPONSE 2002      -> kInternal
//   0                                   -> kOk
//   any other number                    -> kUnknown
// A Status without the payload gets a number from its code (ErrorCodeOf):
//   kUnimplemented -> ENOMETHOD, kInvalidArgument -> EREQUEST,
//   kUnauthenticated and kPermissionDenied -> ERPCAUTH,
//   kDeadlineExceeded -> ERPCTIMEDOUT, kUnavailable -> EFAILEDSOCKET,
//   kResourceExhausted -> ELIMIT, every other error -> EINTERNAL.
//
// Between nprpc peers every canonical code survives the trip: when the number
// does not imply the status's code (kNotFound, kAlreadyExists,
// kFailedPrecondition, kAborted, kOutOfRange, kCancelled, kDataLoss, ... ->
// EINTERNAL; kPermissionDenied -> ERPCAUTH), the server also sends the code
// in the response user field kStatusCodeField, and the client restores it.
// brpc peers see the brpc number they expect and ignore the field.
//
// Thread safety: all functions are pure and safe from any thread.
#ifndef RPC_ERRORS_H_
#define RPC_ERRORS_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace nprpc {

// brpc's error numbers (brpc/errno.proto). Plain enumerators so that they
// compare with the int32 error_code of the wire.
enum ErrorCode : int32_t {
  ENOSERVICE = 1001,     // service not found
  ENOMETHOD = 1002,      // method not found (brpc also sends it for an unknown service)
  EREQUEST = 1003,       // bad request
  ERPCAUTH = 1004,       // authentication failed
  ERPCTIMEDOUT = 1008,   // RPC timed out
  EFAILEDSOCKET = 1009,  // the connection broke during the call
  EOVERCROWDED = 1011,   // too many bytes queued on the connection
  EINTERNAL = 2001,      // server-side internal error (brpc's default failure)
  ERESPONSE = 2002,      // bad response
  ELOGOFF = 2003,        // server is stopping
  ELIMIT = 2004,         // server's concurrency limit reached
};

// The status payload URL under which MakeRpcError() stores the number (as
// decimal text).
inline constexpr absl::string_view kErrorCodePayloadUrl = "type.nprpc/error_code";

// The response user field that carries the canonical code (decimal) of an
// error whose brpc number does not imply it. Reserved: not shown to callers
// as response metadata.
inline constexpr absl::string_view kStatusCodeField = "nprpc-status-code";

// The canonical code for a brpc error number (see the table above).
absl::StatusCode StatusCodeForErrorCode(int32_t error_code);

// A Status with code StatusCodeForErrorCode(error_code), message `text`, and
// the number kept as payload. error_code 0 yields OkStatus() (text dropped).
absl::Status MakeRpcError(int32_t error_code, absl::string_view text);

// The brpc error number of `status`: its payload when present, otherwise
// derived from its code (see above); 0 for OK.
int32_t ErrorCodeOf(const absl::Status& status);

// What an answer with brpc number `error_code` must carry in kStatusCodeField
// so that the peer restores `code`: the decimal code, or nullopt when the
// number already implies it (StatusCodeForErrorCode).
std::optional<std::string> StatusCodeFieldFor(int32_t error_code, absl::StatusCode code);

// MakeRpcError(error_code, text) whose canonical code is the one named by
// `status_code_field` (kStatusCodeField's value) when that is a valid error
// code; otherwise the number's own (a bad or absent field is ignored).
absl::Status MakeRpcError(int32_t error_code, absl::string_view text,
                          const std::string* status_code_field);

// How much of what a peer sent an error text quotes: names (service, method)
// and a received error_text. A peer cannot make an answer or a log line large.
inline constexpr size_t kMaxQuotedName = 256;
inline constexpr size_t kMaxErrorText = 4096;

// `text` when it is at most `max` bytes long; otherwise its first `max` bytes
// followed by "...(<size> bytes)".
std::string BoundedQuote(absl::string_view text, size_t max);

// "ENOMETHOD" for 1002, ..., "OK" for 0, "E<number>" for numbers not listed.
std::string ErrorCodeName(int32_t error_code);

}  // namespace nprpc

#endif  // RPC_ERRORS_H_
