#include "rpc/internal/server_connection.h"

#include <algorithm>
#include <any>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "netpoll/logging.h"
#include "rpc/internal/server_core.h"

namespace nprpc {
namespace {

// How many first bytes an "unknown protocol" error quotes.
constexpr size_t kQuotedPrefix = 8;

}  // namespace

ServerConnection& ServerConnection::Of(netpoll::Connection& conn) {
  auto* state = std::any_cast<std::shared_ptr<ServerConnection>>(&conn.context());
  NP_CHECK(state != nullptr && *state != nullptr) << "connection without server state";
  return **state;
}

ServerConnection* ServerConnection::Find(netpoll::Connection& conn) {
  auto* state = std::any_cast<std::shared_ptr<ServerConnection>>(&conn.context());
  return state == nullptr ? nullptr : state->get();
}

void ServerConnection::OnInput(const netpoll::ConnectionPtr& conn, netpoll::LinkBuffer& input) {
  conn->loop()->AssertInLoopThread();
  if (session_ == nullptr) {
    bool need_more = false;
    for (const ServerProtocol* protocol : core_->protocols()) {
      SniffResult r = protocol->Sniff(input);
      if (r == SniffResult::kMine) {
        session_ = protocol->NewSession(core_, conn);
        protocol_.store(protocol, std::memory_order_release);
        break;
      }
      need_more |= r == SniffResult::kNeedMore;
    }
    if (session_ == nullptr) {
      if (need_more) return;  // the read timeout bounds a peer that stalls here
      core_->CountProtocolError();
      char first[kQuotedPrefix];
      const size_t n = std::min(input.Len(), kQuotedPrefix);
      input.PeekCopy(n, first);
      absl::Status s = absl::InvalidArgumentError(
          absl::StrCat("unknown protocol (first bytes \"",
                       absl::CHexEscape(absl::string_view(first, n)), "\")"));
      NP_LOG(WARNING) << "closing connection from " << conn->peer_address().ToString() << ": " << s;
      conn->Close(s);
      return;
    }
  }
  session_->OnInput(conn, input);
}

void ServerConnection::OnPeerClosed(const netpoll::ConnectionPtr& conn) {
  conn->loop()->AssertInLoopThread();
  if (session_ != nullptr) {
    session_->OnPeerClosed(conn);
  } else {
    conn->CloseAfterFlush(absl::UnavailableError("connection closed by peer"));
  }
}

void ServerConnection::OnServerStopping(const netpoll::ConnectionPtr& conn) {
  conn->loop()->AssertInLoopThread();
  if (session_ != nullptr) session_->OnServerStopping(conn);
}

void ServerConnection::OnClosed(const netpoll::ConnectionPtr& conn) {
  if (session_ != nullptr) session_->OnClosed(conn);
}

}  // namespace nprpc
