// FileNamingService: endpoints listed in a file ("file:///path"), followed
// as the file changes.
//
//   # /etc/nprpc/backends: one endpoint per line
//   10.0.0.1:8000
//   10.0.0.2:8000  weight=3  tag=canary    # weight 1..100 (default 1)
//   [fd00::5]:8000
//
//   auto channel = nprpc::Channel::Create("file:///etc/nprpc/backends", options);
//
// The directory is watched with inotify, so both ways of changing a file
// are seen: rewriting it in place (IN_CLOSE_WRITE) and writing a new file
// and renaming it over the old one (IN_MOVED_TO; what editors and config
// tools do). Each change is read whole and parsed; a file that cannot be
// read or parsed (or lists no endpoint, as a half-written file may) keeps
// the previous list and logs why. Removing the file keeps the list too.
//
// Thread safety: every method is safe from any thread. Watchers run on the
// service's own thread (the first one on the thread calling Watch()). The
// destructor stops that thread.
#ifndef RPC_FILE_NAMING_SERVICE_H_
#define RPC_FILE_NAMING_SERVICE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "netpoll/mutex.h"
#include "rpc/naming_service.h"

namespace nprpc {

// Parses a server file (format above). Errors name the line.
absl::StatusOr<std::vector<ServerNode>> ParseServerFile(absl::string_view contents);

class FileNamingService final : public NamingService {
 public:
  // Reads and parses `path` now (its errors are Create's) and starts
  // following it.
  static absl::StatusOr<std::unique_ptr<FileNamingService>> Create(std::string path);
  ~FileNamingService() override;
  FileNamingService(const FileNamingService&) = delete;
  FileNamingService& operator=(const FileNamingService&) = delete;

  std::vector<ServerNode> Nodes() const override { return list_.Nodes(); }
  void Watch(Watcher watcher) override { list_.Watch(std::move(watcher)); }

  // Changed contents read since Create (good and bad ones), and how many of
  // them were rejected.
  int64_t reloads() const;
  int64_t rejected() const;

 private:
  FileNamingService(std::string path, std::string directory, std::string name, int inotify_fd,
                    int stop_fd, std::string contents, const std::vector<ServerNode>& nodes);
  void Run();
  // Reads the file; publishes its list when its contents changed and parse.
  void Reload();

  // Constant after construction.
  const std::string path_;
  const std::string directory_;
  const std::string name_;  // the file's name inside directory_
  const int inotify_fd_;    // owned
  const int stop_fd_;       // owned (eventfd)

  StaticNamingService list_;  // the current list and its watchers
  // The contents last read, good or bad (a bad file is reported once).
  // Service thread only (and Create).
  std::string last_contents_;

  mutable netpoll::Mutex mu_;
  int64_t reloads_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t rejected_ ABSL_GUARDED_BY(mu_) = 0;

  std::thread thread_;  // started last, joined by the destructor
};

}  // namespace nprpc

#endif  // RPC_FILE_NAMING_SERVICE_H_
