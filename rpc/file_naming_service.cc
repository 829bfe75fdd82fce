#include "rpc/file_naming_service.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "netpoll/logging.h"

namespace nprpc {
namespace {

constexpr int kMaxWeight = 100;
// A server file larger than this is refused (a list of endpoints is small).
constexpr size_t kMaxFileBytes = size_t{4} << 20;

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path, ": ", strerror(errno)));
  std::string contents;
  char buffer[8192];
  while (in.read(buffer, sizeof(buffer)) || in.gcount() > 0) {
    contents.append(buffer, static_cast<size_t>(in.gcount()));
    if (contents.size() > kMaxFileBytes) {
      return absl::ResourceExhaustedError(
          absl::StrCat(path, " is larger than ", kMaxFileBytes, " bytes"));
    }
  }
  if (in.bad()) return absl::DataLossError(absl::StrCat("cannot read ", path));
  return contents;
}

}  // namespace

absl::StatusOr<std::vector<ServerNode>> ParseServerFile(absl::string_view contents) {
  std::vector<ServerNode> nodes;
  absl::flat_hash_set<std::string> seen;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(contents, '\n')) {
    ++line_number;
    if (size_t hash = line.find('#'); hash != absl::string_view::npos) line = line.substr(0, hash);
    std::vector<absl::string_view> words =
        absl::StrSplit(line, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
    if (words.empty()) continue;
    auto error = [&](absl::string_view what) {
      return absl::InvalidArgumentError(absl::StrCat("line ", line_number, ": ", what));
    };
    ServerNode node;
    node.address = std::string(words[0]);
    if (!absl::StartsWith(node.address, "unix:") && node.address.find(':') == std::string::npos) {
      return error(absl::StrCat("'", node.address, "' has no port (host:port)"));
    }
    for (size_t i = 1; i < words.size(); ++i) {
      absl::string_view option = words[i];
      if (absl::ConsumePrefix(&option, "weight=") || absl::ConsumePrefix(&option, "w=")) {
        if (!absl::SimpleAtoi(option, &node.weight) || node.weight < 1 ||
            node.weight > kMaxWeight) {
          return error(absl::StrCat("bad weight '", words[i], "' (1..", kMaxWeight, ")"));
        }
      } else if (absl::ConsumePrefix(&option, "tag=")) {
        node.tag = std::string(option);
      } else {
        return error(absl::StrCat("unknown option '", words[i], "' (weight=N, tag=T)"));
      }
    }
    if (!seen.insert(node.address).second) {
      return error(absl::StrCat("'", node.address, "' is listed twice"));
    }
    nodes.push_back(std::move(node));
  }
  if (nodes.empty()) return absl::InvalidArgumentError("no endpoint in the file");
  return nodes;
}

absl::StatusOr<std::unique_ptr<FileNamingService>> FileNamingService::Create(std::string path) {
  if (path.empty()) return absl::InvalidArgumentError("file naming needs a path (file:///path)");
  absl::StatusOr<std::string> contents = ReadWholeFile(path);
  if (!contents.ok()) return contents.status();
  absl::StatusOr<std::vector<ServerNode>> nodes = ParseServerFile(*contents);
  if (!nodes.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", nodes.status().message()));
  }
  std::string directory = ".";
  std::string name = path;
  if (size_t slash = path.rfind('/'); slash != std::string::npos) {
    directory = slash == 0 ? "/" : path.substr(0, slash);
    name = path.substr(slash + 1);
  }
  int inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (inotify_fd < 0) return absl::InternalError(absl::StrCat("inotify_init1: ", strerror(errno)));
  // Events on the directory, so a file renamed over ours is seen as well as
  // ours written in place.
  if (inotify_add_watch(inotify_fd, directory.c_str(),
                        IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM) < 0) {
    int error = errno;
    close(inotify_fd);
    return absl::InternalError(
        absl::StrCat("inotify_add_watch(", directory, "): ", strerror(error)));
  }
  int stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (stop_fd < 0) {
    int error = errno;
    close(inotify_fd);
    return absl::InternalError(absl::StrCat("eventfd: ", strerror(error)));
  }
  auto service = std::unique_ptr<FileNamingService>(
      new FileNamingService(std::move(path), std::move(directory), std::move(name), inotify_fd,
                            stop_fd, std::move(*contents), *nodes));
  service->thread_ = std::thread([raw = service.get()] { raw->Run(); });
  return service;
}

FileNamingService::FileNamingService(std::string path, std::string directory, std::string name,
                                     int inotify_fd, int stop_fd, std::string contents,
                                     const std::vector<ServerNode>& nodes)
    : path_(std::move(path)),
      directory_(std::move(directory)),
      name_(std::move(name)),
      inotify_fd_(inotify_fd),
      stop_fd_(stop_fd),
      list_(nodes),
      last_contents_(std::move(contents)) {}

FileNamingService::~FileNamingService() {
  uint64_t one = 1;
  if (write(stop_fd_, &one, sizeof(one)) < 0) {
    NP_LOG(ERROR) << "file naming " << path_ << ": cannot wake the watcher thread";
  }
  if (thread_.joinable()) thread_.join();
  close(inotify_fd_);
  close(stop_fd_);
}

int64_t FileNamingService::reloads() const {
  netpoll::MutexLock lock(&mu_);
  return reloads_;
}

int64_t FileNamingService::rejected() const {
  netpoll::MutexLock lock(&mu_);
  return rejected_;
}

void FileNamingService::Run() {
  alignas(struct inotify_event) char buffer[16 * 1024];
  for (;;) {
    struct pollfd fds[2] = {{.fd = inotify_fd_, .events = POLLIN, .revents = 0},
                            {.fd = stop_fd_, .events = POLLIN, .revents = 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      NP_LOG(ERROR) << "file naming " << path_ << ": poll: " << strerror(errno)
                    << "; no longer following the file";
      return;
    }
    if (fds[1].revents != 0) return;
    bool ours = false;
    bool removed = false;
    for (;;) {
      ssize_t n = read(inotify_fd_, buffer, sizeof(buffer));
      if (n <= 0) break;  // EAGAIN: drained
      for (char* p = buffer; p < buffer + n;) {
        auto* event = reinterpret_cast<struct inotify_event*>(p);
        p += sizeof(struct inotify_event) + event->len;
        if (event->len == 0 || name_ != event->name) continue;
        ours = true;
        removed |= (event->mask & (IN_DELETE | IN_MOVED_FROM)) != 0 &&
                   (event->mask & (IN_CLOSE_WRITE | IN_MOVED_TO)) == 0;
      }
    }
    if (!ours) continue;
    if (removed && access(path_.c_str(), F_OK) != 0) {
      NP_LOG(WARNING) << "file naming " << path_ << " was removed; keeping the previous list";
      continue;
    }
    Reload();
  }
}

void FileNamingService::Reload() {
  absl::StatusOr<std::string> contents = ReadWholeFile(path_);
  if (contents.ok() && *contents == last_contents_) return;  // nothing new (or the same bad file)
  absl::StatusOr<std::vector<ServerNode>> nodes =
      contents.ok() ? ParseServerFile(*contents) : contents.status();
  if (contents.ok()) last_contents_ = std::move(*contents);
  {
    netpoll::MutexLock lock(&mu_);
    ++reloads_;
    if (!nodes.ok()) ++rejected_;
  }
  if (!nodes.ok()) {
    NP_LOG(WARNING) << "file naming " << path_
                    << ": keeping the previous list: " << nodes.status().message();
    return;
  }
  NP_LOG(INFO) << "file naming " << path_ << " -> " << nodes->size() << " endpoints";
  list_.Update(*nodes);
}

}  // namespace nprpc
