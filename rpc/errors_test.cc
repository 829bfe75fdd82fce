#include "rpc/errors.h"

#include <optional>
#include <string>

#include "gtest/gtest.h"

namespace nprpc {
namespace {

TEST(Errors, BrpcNumbersHaveTheirDocumentedValues) {
  EXPECT_EQ(ENOSERVICE, 1001);
  EXPECT_EQ(ENOMETHOD, 1002);
  EXPECT_EQ(EREQUEST, 1003);
  EXPECT_EQ(ERPCAUTH, 1004);
  EXPECT_EQ(ERPCTIMEDOUT, 1008);
  EXPECT_EQ(EFAILEDSOCKET, 1009);
  EXPECT_EQ(EOVERCROWDED, 1011);
  EXPECT_EQ(EINTERNAL, 2001);
  EXPECT_EQ(ERESPONSE, 2002);
  EXPECT_EQ(ELOGOFF, 2003);
  EXPECT_EQ(ELIMIT, 2004);
}

TEST(Errors, NumbersMapToCanonicalCodes) {
  EXPECT_EQ(StatusCodeForErrorCode(0), absl::StatusCode::kOk);
  EXPECT_EQ(StatusCodeForErrorCode(ENOSERVICE), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(StatusCodeForErrorCode(ENOMETHOD), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(StatusCodeForErrorCode(EREQUEST), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(StatusCodeForErrorCode(ERPCAUTH), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(StatusCodeForErrorCode(ERPCTIMEDOUT), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(StatusCodeForErrorCode(EFAILEDSOCKET), absl::StatusCode::kUnavailable);
  EXPECT_EQ(StatusCodeForErrorCode(EOVERCROWDED), absl::StatusCode::kUnavailable);
  EXPECT_EQ(StatusCodeForErrorCode(ELOGOFF), absl::StatusCode::kUnavailable);
  EXPECT_EQ(StatusCodeForErrorCode(ELIMIT), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(StatusCodeForErrorCode(EINTERNAL), absl::StatusCode::kInternal);
  EXPECT_EQ(StatusCodeForErrorCode(ERESPONSE), absl::StatusCode::kInternal);
  EXPECT_EQ(StatusCodeForErrorCode(4242), absl::StatusCode::kUnknown);
}

TEST(Errors, MakeRpcErrorKeepsTheExactNumberIncludingCustomOnes) {
  for (int32_t code :
       {1001, 1002, 1003, 1004, 1008, 1009, 1011, 2001, 2002, 2003, 2004, 4242, -1, 7}) {
    absl::Status s = MakeRpcError(code, "text");
    EXPECT_FALSE(s.ok());
    EXPECT_EQ(s.message(), "text");
    EXPECT_EQ(ErrorCodeOf(s), code);
    EXPECT_EQ(s.code(), StatusCodeForErrorCode(code));
  }
}

TEST(Errors, ZeroIsOk) {
  EXPECT_TRUE(MakeRpcError(0, "ignored").ok());
  EXPECT_EQ(ErrorCodeOf(absl::OkStatus()), 0);
}

TEST(Errors, StatusWithoutPayloadGetsNumberFromItsCode) {
  EXPECT_EQ(ErrorCodeOf(absl::UnimplementedError("x")), ENOMETHOD);
  EXPECT_EQ(ErrorCodeOf(absl::InvalidArgumentError("x")), EREQUEST);
  EXPECT_EQ(ErrorCodeOf(absl::UnauthenticatedError("x")), ERPCAUTH);
  EXPECT_EQ(ErrorCodeOf(absl::PermissionDeniedError("x")), ERPCAUTH);
  EXPECT_EQ(ErrorCodeOf(absl::DeadlineExceededError("x")), ERPCTIMEDOUT);
  EXPECT_EQ(ErrorCodeOf(absl::UnavailableError("x")), EFAILEDSOCKET);
  EXPECT_EQ(ErrorCodeOf(absl::ResourceExhaustedError("x")), ELIMIT);
  EXPECT_EQ(ErrorCodeOf(absl::InternalError("x")), EINTERNAL);
  EXPECT_EQ(ErrorCodeOf(absl::NotFoundError("x")), EINTERNAL);
  EXPECT_EQ(ErrorCodeOf(absl::UnknownError("x")), EINTERNAL);
}

TEST(Errors, EveryCanonicalCodeSurvivesNumberPlusField) {
  for (int c = 1; c <= 16; ++c) {
    const auto code = static_cast<absl::StatusCode>(c);
    const absl::Status sent(code, "m");
    const int32_t number = ErrorCodeOf(sent);
    std::optional<std::string> field = StatusCodeFieldFor(number, code);
    absl::Status received = MakeRpcError(number, "m", field ? &*field : nullptr);
    EXPECT_EQ(received.code(), code) << sent;
    EXPECT_EQ(ErrorCodeOf(received), number) << sent;
  }
}

TEST(Errors, FieldOnlyWhereTheNumberDoesNotImplyTheCode) {
  EXPECT_FALSE(StatusCodeFieldFor(ENOMETHOD, absl::StatusCode::kUnimplemented).has_value());
  EXPECT_FALSE(StatusCodeFieldFor(4242, absl::StatusCode::kUnknown).has_value());
  EXPECT_EQ(StatusCodeFieldFor(EINTERNAL, absl::StatusCode::kNotFound), "5");
  EXPECT_EQ(StatusCodeFieldFor(ERPCAUTH, absl::StatusCode::kPermissionDenied), "7");
}

TEST(Errors, BadStatusCodeFieldsAreIgnored) {
  for (std::string bad : {"", "x", "0", "17", "-3", "99999999999"}) {
    EXPECT_EQ(MakeRpcError(EINTERNAL, "m", &bad).code(), absl::StatusCode::kInternal) << bad;
  }
  EXPECT_EQ(MakeRpcError(EINTERNAL, "m", nullptr).code(), absl::StatusCode::kInternal);
  std::string ok = "5";
  EXPECT_TRUE(MakeRpcError(0, "m", &ok).ok());
}

TEST(Errors, BoundedQuoteKeepsShortTextsAndCutsLongOnes) {
  EXPECT_EQ(BoundedQuote("Echo", 8), "Echo");
  EXPECT_EQ(BoundedQuote("12345678", 8), "12345678");
  EXPECT_EQ(BoundedQuote("123456789", 8), "12345678...(9 bytes)");
  EXPECT_EQ(BoundedQuote(std::string(10 << 20, 'm'), kMaxQuotedName).size(),
            kMaxQuotedName + std::string("...(10485760 bytes)").size());
}

TEST(Errors, NamesKnownNumbersAndSpellsOthers) {
  EXPECT_EQ(ErrorCodeName(ENOMETHOD), "ENOMETHOD");
  EXPECT_EQ(ErrorCodeName(ELIMIT), "ELIMIT");
  EXPECT_EQ(ErrorCodeName(0), "OK");
  EXPECT_EQ(ErrorCodeName(4242), "E4242");
}

}  // namespace
}  // namespace nprpc
