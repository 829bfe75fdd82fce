// Linked into a fuzz target (alwayslink), turns protobuf's logging off before
// main(): peers send invalid UTF-8 in string fields and malformed messages,
// and protobuf would log every one, which slows the fuzzer and buries its
// reports. Nothing to call.
#include "google/protobuf/stubs/logging.h"

namespace nprpc::fuzz {
namespace {

[[maybe_unused]] const bool kProtobufLogsOff = [] {
  google::protobuf::SetLogHandler(nullptr);
  return true;
}();

}  // namespace
}  // namespace nprpc::fuzz
