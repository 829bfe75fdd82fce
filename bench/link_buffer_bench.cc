// Micro-benchmarks of LinkBuffer against a std::string used as a byte queue:
// append + consume, cutting frames out (Slice vs substr), Malloc/MallocAck, and
// protobuf serialization straight into the blocks.
//
//   bazel run --config=opt //bench:link_buffer_bench
#include <cstring>
#include <string>

#include "benchmark/benchmark.h"
#include "google/protobuf/descriptor.pb.h"
#include "netpoll/link_buffer.h"
#include "netpoll/zero_copy_stream.h"

namespace netpoll {
namespace {

// Append `range(0)` bytes, then consume them all.
void BM_LinkBufferAppendConsume(benchmark::State& state) {
  std::string payload(state.range(0), 'x');
  LinkBuffer buffer;
  for (auto _ : state) {
    buffer.WriteString(payload);
    benchmark::DoNotOptimize(buffer.Skip(buffer.Len()));
  }
  state.SetBytesProcessed(state.iterations() * payload.size());
}
BENCHMARK(BM_LinkBufferAppendConsume)->Arg(64)->Arg(1024)->Arg(16 * 1024)->Arg(256 * 1024);

void BM_StringAppendConsume(benchmark::State& state) {
  std::string payload(state.range(0), 'x');
  std::string buffer;
  for (auto _ : state) {
    buffer.append(payload);
    buffer.erase(0, buffer.size());
    benchmark::DoNotOptimize(buffer.data());
  }
  state.SetBytesProcessed(state.iterations() * payload.size());
}
BENCHMARK(BM_StringAppendConsume)->Arg(64)->Arg(1024)->Arg(16 * 1024)->Arg(256 * 1024);

// A 64 KiB read cut into frames of `range(0)` bytes, each frame handed off as
// its own buffer (the RPC decode path).
void BM_LinkBufferSliceFrames(benchmark::State& state) {
  const size_t frame = state.range(0);
  const std::string chunk(64 * 1024, 'x');
  LinkBuffer buffer;
  for (auto _ : state) {
    buffer.WriteString(chunk);
    while (buffer.Len() >= frame) {
      LinkBuffer slice = *buffer.Slice(frame);
      benchmark::DoNotOptimize(slice.Len());
    }
    benchmark::DoNotOptimize(buffer.Skip(buffer.Len()));
  }
  state.SetBytesProcessed(state.iterations() * chunk.size());
}
BENCHMARK(BM_LinkBufferSliceFrames)->Arg(128)->Arg(4096)->Arg(32 * 1024);

void BM_StringSubstrFrames(benchmark::State& state) {
  const size_t frame = state.range(0);
  const std::string chunk(64 * 1024, 'x');
  std::string buffer;
  for (auto _ : state) {
    buffer.append(chunk);
    size_t pos = 0;
    while (buffer.size() - pos >= frame) {
      std::string slice = buffer.substr(pos, frame);
      benchmark::DoNotOptimize(slice.data());
      pos += frame;
    }
    buffer.clear();
  }
  state.SetBytesProcessed(state.iterations() * chunk.size());
}
BENCHMARK(BM_StringSubstrFrames)->Arg(128)->Arg(4096)->Arg(32 * 1024);

// Reserve, fill, acknowledge, consume: the encode path.
void BM_LinkBufferMallocAck(benchmark::State& state) {
  const size_t n = state.range(0);
  LinkBuffer buffer;
  for (auto _ : state) {
    absl::Span<char> span = buffer.Malloc(n);
    std::memset(span.data(), 'x', n);
    buffer.MallocAck(n);
    benchmark::DoNotOptimize(buffer.Skip(n));
  }
  state.SetBytesProcessed(state.iterations() * n);
}
BENCHMARK(BM_LinkBufferMallocAck)->Arg(64)->Arg(1024)->Arg(16 * 1024);

// Referencing large user memory instead of copying it.
void BM_LinkBufferWriteBinaryReferenced(benchmark::State& state) {
  const std::string payload(state.range(0), 'x');
  LinkBuffer buffer;
  for (auto _ : state) {
    buffer.WriteBinary(payload, [] {});
    benchmark::DoNotOptimize(buffer.Skip(buffer.Len()));
  }
  state.SetBytesProcessed(state.iterations() * payload.size());
}
BENCHMARK(BM_LinkBufferWriteBinaryReferenced)->Arg(64 * 1024)->Arg(1024 * 1024);

google::protobuf::FileDescriptorProto MakeMessage() {
  google::protobuf::FileDescriptorProto file;
  file.set_name("bench.proto");
  for (int m = 0; m < 200; ++m) {
    auto* message = file.add_message_type();
    message->set_name("Message" + std::to_string(m));
    message->add_field()->set_name("field");
  }
  return file;
}

void BM_ProtobufSerializeIntoLinkBuffer(benchmark::State& state) {
  const google::protobuf::FileDescriptorProto file = MakeMessage();
  LinkBuffer buffer;
  for (auto _ : state) {
    {
      LinkBufferOutputStream out(&buffer);
      file.SerializeToZeroCopyStream(&out);
    }
    benchmark::DoNotOptimize(buffer.Skip(buffer.Len()));
  }
  state.SetBytesProcessed(state.iterations() * file.ByteSizeLong());
}
BENCHMARK(BM_ProtobufSerializeIntoLinkBuffer);

void BM_ProtobufSerializeToStringThenCopy(benchmark::State& state) {
  const google::protobuf::FileDescriptorProto file = MakeMessage();
  LinkBuffer buffer;
  for (auto _ : state) {
    std::string bytes = file.SerializeAsString();
    buffer.WriteString(bytes);
    benchmark::DoNotOptimize(buffer.Skip(buffer.Len()));
  }
  state.SetBytesProcessed(state.iterations() * file.ByteSizeLong());
}
BENCHMARK(BM_ProtobufSerializeToStringThenCopy);

void BM_ProtobufParseFromLinkBuffer(benchmark::State& state) {
  const std::string bytes = MakeMessage().SerializeAsString();
  LinkBuffer buffer;
  google::protobuf::FileDescriptorProto parsed;
  for (auto _ : state) {
    buffer.WriteString(bytes);
    LinkBufferInputStream in(&buffer);
    benchmark::DoNotOptimize(parsed.ParseFromZeroCopyStream(&in));
  }
  state.SetBytesProcessed(state.iterations() * bytes.size());
}
BENCHMARK(BM_ProtobufParseFromLinkBuffer);

}  // namespace
}  // namespace netpoll
