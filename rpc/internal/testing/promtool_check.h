// PromtoolCheck: runs `promtool check metrics` on Prometheus exposition text,
// for tests.
//
//   absl::Status s = PromtoolCheck(text);   // kUnavailable when no promtool
//
// Thread safety: safe from any thread (each call uses its own temporary file).
#ifndef RPC_INTERNAL_TESTING_PROMTOOL_CHECK_H_
#define RPC_INTERNAL_TESTING_PROMTOOL_CHECK_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace nprpc {
namespace testing {

inline constexpr char kPromtoolPath[] = "/usr/bin/promtool";

// OK when promtool accepts `text` without a single complaint (parse errors
// and lint problems alike); kUnavailable when promtool is not installed;
// kInvalidArgument with promtool's output otherwise.
absl::Status PromtoolCheck(absl::string_view text);

}  // namespace testing
}  // namespace nprpc

#endif  // RPC_INTERNAL_TESTING_PROMTOOL_CHECK_H_
