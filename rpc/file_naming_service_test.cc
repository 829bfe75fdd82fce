#include "rpc/file_naming_service.h"

#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "netpoll/testing/wait.h"

namespace nprpc {
namespace {

using netpoll::testing::WaitFor;

TEST(ParseServerFile, ReadsAddressesWeightsTagsAndComments) {
  auto nodes = ParseServerFile(
      "# backends\n"
      "10.0.0.1:80\n"
      "\n"
      "  10.0.0.2:80  weight=3 tag=canary   # the new build\n"
      "[fd00::1]:80 w=2\r\n"
      "unix:/run/x.sock\n");
  ASSERT_TRUE(nodes.ok()) << nodes.status();
  ASSERT_EQ(nodes->size(), 4u);
  EXPECT_EQ((*nodes)[0], (ServerNode{"10.0.0.1:80", 1, ""}));
  EXPECT_EQ((*nodes)[1], (ServerNode{"10.0.0.2:80", 3, "canary"}));
  EXPECT_EQ((*nodes)[2], (ServerNode{"[fd00::1]:80", 2, ""}));
  EXPECT_EQ((*nodes)[3], (ServerNode{"unix:/run/x.sock", 1, ""}));
}

TEST(ParseServerFile, ErrorsNameTheLine) {
  auto bad_weight = ParseServerFile("a:1\nb:2 weight=0\n");
  ASSERT_FALSE(bad_weight.ok());
  EXPECT_NE(bad_weight.status().message().find("line 2"), std::string::npos) << bad_weight.status();
  EXPECT_FALSE(ParseServerFile("a:1 color=red\n").ok());
  EXPECT_FALSE(ParseServerFile("nohost\n").ok());
  EXPECT_FALSE(ParseServerFile("a:1\na:1\n").ok());
  EXPECT_FALSE(ParseServerFile("a:1 weight=101\n").ok());
}

TEST(ParseServerFile, AFileWithoutEndpointsIsAnError) {
  EXPECT_FALSE(ParseServerFile("").ok());
  EXPECT_FALSE(ParseServerFile("# nothing yet\n\n").ok());
}

class FileNamingServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char templ[] = "/tmp/file_naming_XXXXXX";
    ASSERT_NE(mkdtemp(templ), nullptr);
    dir_ = templ;
    path_ = dir_ + "/backends";
  }
  void TearDown() override {
    naming_.reset();
    std::remove(path_.c_str());
    std::remove((dir_ + "/backends.tmp").c_str());
    rmdir(dir_.c_str());
  }
  // Rewrites the file in place (truncate + write + close).
  void WriteInPlace(const std::string& contents) {
    std::ofstream out(path_, std::ios::trunc);
    out << contents;
  }
  // Writes a new file and renames it over the old one, as editors do.
  void WriteAndRename(const std::string& contents) {
    std::string tmp = dir_ + "/backends.tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << contents;
    }
    ASSERT_EQ(std::rename(tmp.c_str(), path_.c_str()), 0);
  }
  std::vector<std::string> Addresses() {
    std::vector<std::string> out;
    for (const ServerNode& node : naming_->Nodes()) out.push_back(node.address);
    return out;
  }

  std::string dir_;
  std::string path_;
  std::unique_ptr<FileNamingService> naming_;
};

TEST_F(FileNamingServiceTest, MissingOrBadFileFailsCreate) {
  EXPECT_FALSE(FileNamingService::Create(path_).ok());
  WriteInPlace("a:1 weight=x\n");
  auto naming = FileNamingService::Create(path_);
  ASSERT_FALSE(naming.ok());
  EXPECT_NE(naming.status().message().find(path_), std::string::npos) << naming.status();
}

TEST_F(FileNamingServiceTest, FollowsInPlaceWritesAndRenamesOverTheFile) {
  WriteInPlace("10.0.0.1:80\n");
  auto naming = FileNamingService::Create(path_);
  ASSERT_TRUE(naming.ok()) << naming.status();
  naming_ = std::move(*naming);
  EXPECT_EQ(Addresses(), std::vector<std::string>{"10.0.0.1:80"});
  std::vector<size_t> sizes;
  netpoll::Mutex mu;
  naming_->Watch([&](const std::vector<ServerNode>& nodes) {
    netpoll::MutexLock lock(&mu);
    sizes.push_back(nodes.size());
  });
  WriteInPlace("10.0.0.1:80\n10.0.0.2:80\n");
  ASSERT_TRUE(WaitFor([&] { return Addresses().size() == 2; }));
  WriteAndRename("10.0.0.3:80\n");
  ASSERT_TRUE(WaitFor([&] { return Addresses() == std::vector<std::string>{"10.0.0.3:80"}; }));
  netpoll::MutexLock lock(&mu);
  EXPECT_EQ(sizes, (std::vector<size_t>{1, 2, 1}));
}

TEST_F(FileNamingServiceTest, BadOrRemovedFileKeepsThePreviousList) {
  WriteInPlace("10.0.0.1:80\n");
  auto naming = FileNamingService::Create(path_);
  ASSERT_TRUE(naming.ok());
  naming_ = std::move(*naming);
  WriteAndRename("10.0.0.2:80 weight=banana\n");
  ASSERT_TRUE(WaitFor([&] { return naming_->rejected() == 1; }));
  EXPECT_EQ(Addresses(), std::vector<std::string>{"10.0.0.1:80"});
  WriteInPlace("");  // an editor's truncation: no endpoints
  ASSERT_TRUE(WaitFor([&] { return naming_->rejected() == 2; }));
  EXPECT_EQ(Addresses(), std::vector<std::string>{"10.0.0.1:80"});
  ASSERT_EQ(std::remove(path_.c_str()), 0);
  WriteAndRename("10.0.0.4:80\n");  // back: followed again
  ASSERT_TRUE(WaitFor([&] { return Addresses() == std::vector<std::string>{"10.0.0.4:80"}; }));
}

}  // namespace
}  // namespace nprpc
