#include "netpoll/zero_copy_stream.h"

#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"

namespace netpoll {
namespace {

using google::protobuf::FileDescriptorProto;
using google::protobuf::util::MessageDifferencer;

// A message of roughly `messages` * 60 bytes once serialized.
FileDescriptorProto MakeFile(int messages) {
  FileDescriptorProto file;
  file.set_name("netpoll/test.proto");
  file.set_package("netpoll.test");
  for (int m = 0; m < messages; ++m) {
    auto* message = file.add_message_type();
    message->set_name("Message" + std::to_string(m));
    for (int f = 0; f < 2; ++f) {
      auto* field = message->add_field();
      field->set_name("field_" + std::to_string(f));
      field->set_number(f + 1);
      field->set_type(google::protobuf::FieldDescriptorProto::TYPE_STRING);
    }
  }
  return file;
}

std::vector<absl::string_view> Chunks(const LinkBuffer& buffer) {
  std::vector<absl::string_view> chunks;
  buffer.ForEachChunk([&](absl::string_view chunk) { chunks.push_back(chunk); });
  return chunks;
}

// Puts `bytes` into a buffer as references to separate blocks of `piece`
// bytes each.
LinkBuffer Fragmented(absl::string_view bytes, size_t piece) {
  LinkBuffer out;
  while (!bytes.empty()) {
    LinkBuffer part;
    part.WriteString(bytes.substr(0, piece));
    out.Append(std::move(part));
    bytes.remove_prefix(std::min(piece, bytes.size()));
  }
  return out;
}

TEST(LinkBufferOutputStream, SerializesTheSameBytesAsSerializeToString) {
  FileDescriptorProto file = MakeFile(2000);  // ~100 KiB: several blocks
  LinkBuffer buffer;
  {
    LinkBufferOutputStream out(&buffer);
    ASSERT_TRUE(file.SerializeToZeroCopyStream(&out));
    EXPECT_EQ(out.ByteCount(), static_cast<int64_t>(file.ByteSizeLong()));
  }
  EXPECT_GT(Chunks(buffer).size(), 1u);
  EXPECT_EQ(buffer.ToString(), file.SerializeAsString());
}

TEST(LinkBufferOutputStream, AppendsAfterExistingBytesInTheTailBlock) {
  FileDescriptorProto file = MakeFile(3);
  LinkBuffer buffer;
  buffer.WriteString("header");
  LinkBufferOutputStream out(&buffer);
  ASSERT_TRUE(file.SerializeToZeroCopyStream(&out));
  out.Flush();
  EXPECT_EQ(buffer.ToString(), "header" + file.SerializeAsString());
  EXPECT_EQ(Chunks(buffer).size(), 1u) << "serialized into the tail block's spare room";
  EXPECT_EQ(buffer.MallocLen(), 0u);
}

TEST(LinkBufferOutputStream, BackUpDropsTheUnusedTailAndNextContinuesAfterIt) {
  LinkBuffer buffer;
  LinkBufferOutputStream out(&buffer);
  void* data;
  int size;
  ASSERT_TRUE(out.Next(&data, &size));
  ASSERT_GE(size, 10);
  std::memcpy(data, "0123456789", 10);
  out.BackUp(size - 10);
  EXPECT_EQ(out.ByteCount(), 10);
  EXPECT_EQ(buffer.ToString(), "0123456789") << "readable after BackUp()";

  void* more;
  ASSERT_TRUE(out.Next(&more, &size));
  EXPECT_EQ(more, static_cast<char*>(data) + 10);
  std::memcpy(more, "ab", 2);
  out.BackUp(size - 2);
  EXPECT_EQ(out.ByteCount(), 12);
  EXPECT_EQ(buffer.ToString(), "0123456789ab");
  EXPECT_EQ(Chunks(buffer).size(), 1u);
}

TEST(LinkBufferOutputStream, FlushAndDestructionMakeEveryByteReadable) {
  LinkBuffer buffer;
  {
    LinkBufferOutputStream out(&buffer);
    void* data;
    int size;
    ASSERT_TRUE(out.Next(&data, &size));
    std::memset(data, 'x', size);
    EXPECT_EQ(buffer.Len(), 0u) << "the chunk being written is not readable yet";
    out.Flush();
    EXPECT_EQ(buffer.Len(), static_cast<size_t>(size));
    ASSERT_TRUE(out.Next(&data, &size));
    std::memset(data, 'y', size);
  }
  EXPECT_EQ(buffer.MallocLen(), 0u);
  EXPECT_EQ(buffer.Len(), buffer.ToString().size());
  EXPECT_EQ(buffer.ToString().back(), 'y');
}

TEST(LinkBufferInputStream, RoundTripsAMessageAndConsumesIt) {
  FileDescriptorProto file = MakeFile(2000);
  LinkBuffer buffer;
  {
    LinkBufferOutputStream out(&buffer);
    ASSERT_TRUE(file.SerializeToZeroCopyStream(&out));
  }
  FileDescriptorProto parsed;
  {
    LinkBufferInputStream in(&buffer);
    ASSERT_TRUE(parsed.ParseFromZeroCopyStream(&in));
    EXPECT_EQ(in.ByteCount(), static_cast<int64_t>(file.ByteSizeLong()));
  }
  EXPECT_TRUE(MessageDifferencer::Equals(parsed, file));
  EXPECT_TRUE(buffer.empty());
}

TEST(LinkBufferInputStream, ParsesAcrossManySmallBlocks) {
  FileDescriptorProto file = MakeFile(200);
  for (size_t piece : {1u, 7u, 100u, 5000u}) {
    LinkBuffer buffer = Fragmented(file.SerializeAsString(), piece);
    FileDescriptorProto parsed;
    LinkBufferInputStream in(&buffer);
    ASSERT_TRUE(parsed.ParseFromZeroCopyStream(&in)) << piece;
    EXPECT_TRUE(MessageDifferencer::Equals(parsed, file)) << piece;
  }
}

TEST(LinkBufferInputStream, NextYieldsBlockBytesWithoutCopy) {
  LinkBuffer buffer = Fragmented("abcdefgh", 3);
  std::vector<absl::string_view> chunks = Chunks(buffer);
  LinkBufferInputStream in(&buffer);
  const void* data;
  int size;
  for (absl::string_view chunk : chunks) {
    ASSERT_TRUE(in.Next(&data, &size));
    EXPECT_EQ(data, chunk.data());
    EXPECT_EQ(size, static_cast<int>(chunk.size()));
  }
  EXPECT_FALSE(in.Next(&data, &size));
  EXPECT_EQ(in.ByteCount(), 8);
}

TEST(LinkBufferInputStream, BackUpReturnsBytesToTheNextNext) {
  LinkBuffer buffer = Fragmented("abcdefgh", 4);
  {
    LinkBufferInputStream in(&buffer);
    const void* data;
    int size;
    ASSERT_TRUE(in.Next(&data, &size));
    ASSERT_EQ(size, 4);
    in.BackUp(3);
    EXPECT_EQ(in.ByteCount(), 1);
    const void* again;
    ASSERT_TRUE(in.Next(&again, &size));
    EXPECT_EQ(again, static_cast<const char*>(data) + 1);
    EXPECT_EQ(absl::string_view(static_cast<const char*>(again), size), "bcd");
    ASSERT_TRUE(in.Next(&data, &size));
    in.BackUp(2);
    EXPECT_EQ(in.ByteCount(), 6);
  }
  EXPECT_EQ(buffer.ToString(), "gh") << "backed-up bytes stay in the buffer";
}

TEST(LinkBufferInputStream, SkipCrossesBlocksAndStopsAtTheEnd) {
  LinkBuffer buffer = Fragmented("abcdefghij", 3);
  LinkBufferInputStream in(&buffer);
  EXPECT_TRUE(in.Skip(4));
  const void* data;
  int size;
  ASSERT_TRUE(in.Next(&data, &size));
  EXPECT_EQ(absl::string_view(static_cast<const char*>(data), size), "ef");
  EXPECT_FALSE(in.Skip(100));
  EXPECT_EQ(in.ByteCount(), 10);
  EXPECT_TRUE(buffer.empty());
}

TEST(LinkBufferInputStream, LimitStopsAtAMessageBoundary) {
  FileDescriptorProto first = MakeFile(50);
  FileDescriptorProto second = MakeFile(7);
  LinkBuffer buffer;
  buffer.WriteString(first.SerializeAsString());
  buffer.WriteString(second.SerializeAsString());

  FileDescriptorProto parsed;
  {
    LinkBufferInputStream in(&buffer, static_cast<int64_t>(first.ByteSizeLong()));
    ASSERT_TRUE(parsed.ParseFromZeroCopyStream(&in));
    const void* data;
    int size;
    EXPECT_FALSE(in.Next(&data, &size)) << "the limit is reached";
  }
  EXPECT_TRUE(MessageDifferencer::Equals(parsed, first));
  EXPECT_EQ(buffer.Len(), second.ByteSizeLong());
  {
    LinkBufferInputStream in(&buffer);
    ASSERT_TRUE(parsed.ParseFromZeroCopyStream(&in));
  }
  EXPECT_TRUE(MessageDifferencer::Equals(parsed, second));
}

TEST(LinkBufferInputStream, LimitCapsSkip) {
  LinkBuffer buffer;
  buffer.WriteString("abcdef");
  {
    LinkBufferInputStream in(&buffer, 4);
    EXPECT_FALSE(in.Skip(5));
    EXPECT_EQ(in.ByteCount(), 4);
  }
  EXPECT_EQ(buffer.ToString(), "ef");
}

TEST(ZeroCopyStreams, CodedStreamsFrameSeveralMessages) {
  std::vector<FileDescriptorProto> messages = {MakeFile(1), MakeFile(300), MakeFile(0)};
  LinkBuffer buffer;
  {
    LinkBufferOutputStream out(&buffer);
    google::protobuf::io::CodedOutputStream coded(&out);
    for (const FileDescriptorProto& message : messages) {
      coded.WriteVarint32(static_cast<uint32_t>(message.ByteSizeLong()));
      ASSERT_TRUE(message.SerializeToCodedStream(&coded));
    }
  }
  LinkBufferInputStream in(&buffer);
  google::protobuf::io::CodedInputStream coded(&in);
  for (const FileDescriptorProto& expected : messages) {
    uint32_t size;
    ASSERT_TRUE(coded.ReadVarint32(&size));
    auto limit = coded.PushLimit(static_cast<int>(size));
    FileDescriptorProto parsed;
    ASSERT_TRUE(parsed.ParseFromCodedStream(&coded));
    coded.PopLimit(limit);
    EXPECT_TRUE(MessageDifferencer::Equals(parsed, expected));
  }
  uint32_t tag;
  EXPECT_FALSE(coded.ReadVarint32(&tag));
}

}  // namespace
}  // namespace netpoll
