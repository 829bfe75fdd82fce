// FakeHttpPages: an HttpPages (rpc/internal/http_message.h) serving fixed
// pages by path, for tests of the HTTP routing without the real built-in
// pages.
//
//   auto pages = std::make_shared<FakeHttpPages>();
//   pages->Add("/health", {.status = 200, .content_type = "text/plain", .body = "OK\n"});
//   core->set_http_pages(pages);
//
// Thread safety: Add() before the pages are shared; Serve() and served()
// from any thread.
#ifndef RPC_INTERNAL_TESTING_FAKE_HTTP_PAGES_H_
#define RPC_INTERNAL_TESTING_FAKE_HTTP_PAGES_H_

#include <atomic>
#include <map>
#include <string>

#include "rpc/internal/http_message.h"

namespace nprpc::testing {

class FakeHttpPages : public HttpPages {
 public:
  // Serves `response` for GET and HEAD requests of `path` (query ignored).
  void Add(const std::string& path, HttpResponse response) { pages_[path] = std::move(response); }

  bool Serve(const HttpRequest& request, HttpResponse& response) const override {
    auto it = pages_.find(request.path);
    if (it == pages_.end()) return false;
    response = it->second;
    served_.fetch_add(1, std::memory_order_relaxed);
    return true;
  }

  // Requests answered with a page so far.
  int served() const { return served_.load(std::memory_order_relaxed); }

 private:
  std::map<std::string, HttpResponse> pages_;  // constant once shared
  mutable std::atomic<int> served_{0};
};

}  // namespace nprpc::testing

#endif  // RPC_INTERNAL_TESTING_FAKE_HTTP_PAGES_H_
