// stream_bench: streaming throughput of nprpc's gRPC protocol on one stream,
// with the flags and output of grpc_stream_bench (its gRPC C++ baseline).
// One call of nprpc.interop.TestService (tests/interop/interop.proto) moves
// --messages messages of --payload bytes:
//   --direction=server  StreamingOutputCall: the server writes, we read
//   --direction=client  StreamingInputCall: we write, the server counts
// after --warmup_messages in a first call. Prints messages/s and MB/s (one
// JSON line with --json), checking every message's size.
//
//   stream_bench --server=127.0.0.1:41235 --direction=server --payload=16
//                --messages=200000 [--json]
//
// Drives the stream through its callbacks (rpc/stream_core.h): each read or
// write completion, on the channel's loop, starts the next one, so the
// stream is never idle on our side. Loopback only.
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "netpoll/mutex.h"
#include "rpc/channel.h"
#include "rpc/stream_core.h"
#include "tests/interop/interop.pb.h"

ABSL_FLAG(std::string, server, "127.0.0.1:8000", "nprpc or gRPC server, loopback host:port");
ABSL_FLAG(std::string, direction, "server", "server (server streams to us) or client (we stream)");
ABSL_FLAG(int, payload, 16, "bytes per message");
ABSL_FLAG(int, messages, 200000, "messages in the measured call");
ABSL_FLAG(int, warmup_messages, 20000, "messages in the warm-up call");
ABSL_FLAG(bool, json, false, "print one JSON line");

namespace {

using nprpc::interop::StreamingInputCallRequest;
using nprpc::interop::StreamingInputCallResponse;
using nprpc::interop::StreamingOutputCallRequest;
using nprpc::interop::StreamingOutputCallResponse;

constexpr char kService[] = "nprpc.interop.TestService";

struct Outcome {
  netpoll::Notification done;
  absl::Status status;
  int count = 0;
};

// Reads until the end, then Finish()es.
struct Reader : std::enable_shared_from_this<Reader> {
  std::shared_ptr<nprpc::ClientStreamCore> stream;
  StreamingOutputCallResponse response;
  int payload = 0;
  Outcome* outcome = nullptr;

  void Next() {
    stream->Read(&response, [self = shared_from_this()](bool ok) {
      if (ok) {
        if (static_cast<int>(self->response.payload().size()) != self->payload) {
          self->stream->Cancel();
        } else {
          ++self->outcome->count;
        }
        self->Next();
        return;
      }
      self->stream->Finish([self](absl::Status status) {
        self->outcome->status = std::move(status);
        self->outcome->done.Notify();
      });
    });
  }
};

// Writes `left` messages, half-closes, reads the answer, Finish()es.
struct Writer : std::enable_shared_from_this<Writer> {
  std::shared_ptr<nprpc::ClientStreamCore> stream;
  StreamingInputCallRequest request;
  StreamingInputCallResponse response;
  int left = 0;
  Outcome* outcome = nullptr;

  void Next() {
    if (left == 0) {
      stream->WritesDone([self = shared_from_this()](bool) {
        self->stream->Read(&self->response, [self](bool) {
          self->outcome->count = self->response.message_count();
          self->stream->Finish([self](absl::Status status) {
            self->outcome->status = std::move(status);
            self->outcome->done.Notify();
          });
        });
      });
      return;
    }
    --left;
    stream->Write(request, [self = shared_from_this()](bool ok) {
      if (!ok) self->left = 0;
      self->Next();
    });
  }
};

// Seconds one call took, or a negative number on failure.
double RunCall(nprpc::Channel& channel, const std::string& direction, int payload, int messages) {
  Outcome outcome;
  const auto start = std::chrono::steady_clock::now();
  if (direction == "server") {
    auto reader = std::make_shared<Reader>();
    reader->stream = channel.NewStream(kService, "StreamingOutputCall");
    reader->payload = payload;
    reader->outcome = &outcome;
    StreamingOutputCallRequest request;
    for (int i = 0; i < messages; ++i) request.add_response_parameters()->set_size(payload);
    // One Write at a time, and WritesDone after it; the reads run meanwhile.
    reader->stream->Write(request,
                          [stream = reader->stream](bool) { stream->WritesDone([](bool) {}); });
    reader->Next();
  } else {
    auto writer = std::make_shared<Writer>();
    writer->stream = channel.NewStream(kService, "StreamingInputCall");
    writer->request.set_payload(std::string(static_cast<size_t>(payload), 'x'));
    writer->left = messages;
    writer->outcome = &outcome;
    writer->Next();
  }
  outcome.done.WaitForNotification();
  const auto end = std::chrono::steady_clock::now();
  if (!outcome.status.ok() || outcome.count != messages) {
    std::fprintf(stderr, "stream_bench: %d of %d messages, status %s\n", outcome.count, messages,
                 outcome.status.ToString().c_str());
    return -1;
  }
  return std::chrono::duration<double>(end - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string direction = absl::GetFlag(FLAGS_direction);
  const int payload = absl::GetFlag(FLAGS_payload);
  const int messages = absl::GetFlag(FLAGS_messages);
  if (direction != "server" && direction != "client") {
    std::fprintf(stderr, "stream_bench: --direction must be server or client\n");
    return 2;
  }
  nprpc::ChannelOptions options;
  options.protocol = "grpc";
  options.timeout = absl::Minutes(5);
  absl::StatusOr<std::unique_ptr<nprpc::Channel>> channel =
      nprpc::Channel::Create(absl::GetFlag(FLAGS_server), options);
  if (!channel.ok()) {
    std::fprintf(stderr, "stream_bench: %s\n", channel.status().ToString().c_str());
    return 2;
  }
  if (RunCall(**channel, direction, payload, absl::GetFlag(FLAGS_warmup_messages)) < 0) return 1;
  const double seconds = RunCall(**channel, direction, payload, messages);
  if (seconds <= 0) return 1;
  const double rate = messages / seconds;
  const double mbps = rate * payload / 1e6;
  if (absl::GetFlag(FLAGS_json)) {
    std::printf(
        "{\"tool\":\"stream_bench\",\"direction\":\"%s\",\"payload\":%d,\"messages\":%d,"
        "\"seconds\":%.4f,\"messages_per_second\":%.0f,\"mb_per_second\":%.2f}\n",
        direction.c_str(), payload, messages, seconds, rate, mbps);
  } else {
    std::printf("stream_bench %s streaming, %d B: %d messages in %.3f s = %.0f msg/s, %.1f MB/s\n",
                direction.c_str(), payload, messages, seconds, rate, mbps);
  }
  return 0;
}
