#include "tests/harness/scripted_server.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "netpoll/logging.h"
#include "proto/echo.pb.h"
#include "rpc/errors.h"
#include "rpc/internal/frame_codec.h"

namespace nprpc::testing {
namespace {

void Answer(const netpoll::ConnectionPtr& conn, const DecodedFrame& request,
            const example::EchoRequest& echo, int32_t error_code = 0,
            int64_t correlation_id_offset = 0) {
  ResponseHeader header;
  header.correlation_id = request.meta.correlation_id() + correlation_id_offset;
  netpoll::LinkBuffer payload;
  netpoll::LinkBuffer attachment;
  if (error_code != 0) {
    header.error_code = error_code;
    header.error_text = absl::StrCat("scripted failure: ", echo.message());
  } else {
    for (const auto& field : request.meta.user_fields()) {
      header.user_fields.push_back({field.key(), field.value()});
    }
    example::EchoResponse response;
    response.set_message(echo.message());
    (void)SerializeToLinkBuffer(response, payload);
    attachment.WriteBinary(request.attachment.ToString());
  }
  netpoll::LinkBuffer out;
  absl::Status s = EncodeResponse(header, std::move(payload), std::move(attachment), out);
  NP_CHECK(s.ok()) << s;
  (void)conn->Write(std::move(out));
}

}  // namespace

ScriptedServer::ScriptedServer(std::shared_ptr<const netpoll::TlsContext> tls)
    : tls_(std::move(tls)) {
  netpoll::EventLoopGroupOptions options;
  options.num_loops = 1;
  options.name = "scripted";
  loops_ = std::move(*netpoll::EventLoopGroup::Create(options));
}

ScriptedServer::~ScriptedServer() {
  if (server_) server_->Shutdown(absl::ZeroDuration());
  server_.reset();
  loops_->Stop();
}

std::shared_ptr<netpoll::ConnectionCallbacks> ScriptedServer::MakeCallbacks() {
  auto callbacks = std::make_shared<netpoll::ConnectionCallbacks>();
  callbacks->on_request = [this](const netpoll::ConnectionPtr& conn, netpoll::LinkBuffer& input) {
    FrameDecoder decoder;
    while (conn->active()) {
      DecodeResult result = decoder.Decode(input);
      if (!result.has_frame()) {
        if (result.is_error()) conn->Close(result.status());
        return;
      }
      requests_++;
      DecodedFrame frame = result.TakeFrame();
      example::EchoRequest echo;
      (void)ParseFromLinkBuffer(frame.payload, echo);
      const std::string& method = frame.meta.request().method_name();
      if (method == "Whoami") echo.set_message(address());
      if (method == "Peer") {
        std::shared_ptr<const netpoll::TlsInfo> tls = conn->tls_info();
        echo.set_message(
            tls == nullptr
                ? "<plaintext>"
                : absl::StrCat(tls->peer_verified ? "verified|" : "anonymous|", tls->subject));
      }
      int64_t delay_ms = echo_delay_ms_.load();
      if ((method == "Echo" || method == "Whoami") && delay_ms > 0) {
        auto shared = std::make_shared<DecodedFrame>(std::move(frame));
        conn->loop()->RunAfter(absl::Milliseconds(delay_ms), [this, conn, shared, echo] {
          Answer(conn, *shared, echo);
          delayed_answers_++;
        });
      } else if (method == "Echo" || method == "Whoami" || method == "Peer") {
        Answer(conn, frame, echo);
      } else if (method == "Slow") {
        auto shared = std::make_shared<DecodedFrame>(std::move(frame));
        conn->loop()->RunAfter(absl::Milliseconds(echo.code()), [this, conn, shared, echo] {
          Answer(conn, *shared, echo);
          delayed_answers_++;
        });
      } else if (method == "Never") {
        // no answer
      } else if (method == "Close") {
        conn->Close(absl::AbortedError("scripted close"));
      } else if (method == "Reset") {
        conn->Abort(absl::AbortedError("scripted reset"));
      } else if (method == "Garbage") {
        (void)conn->Write("HTTP/1.1 400 Bad Request\r\n\r\n");
      } else if (method == "Stray") {
        Answer(conn, frame, echo, /*error_code=*/0, /*correlation_id_offset=*/int64_t{1} << 40);
        Answer(conn, frame, echo);
      } else if (method == "Twice") {
        Answer(conn, frame, echo);
        Answer(conn, frame, echo);
      } else if (method == "Fail") {
        Answer(conn, frame, echo, echo.code() == 0 ? EINTERNAL : echo.code());
      } else {
        Answer(conn, frame, echo, ENOMETHOD);
      }
    }
  };
  return callbacks;
}

absl::Status ScriptedServer::Start(int port) {
  netpoll::ServerOptions options;
  options.group = loops_.get();
  options.callbacks = MakeCallbacks();
  options.connection.tls = tls_;
  options.connection.tls_required = tls_ != nullptr;
  auto server = netpoll::Server::Create(options);
  if (!server.ok()) return server.status();
  server_ = std::move(*server);
  absl::Status started =
      server_->Start(*netpoll::SocketAddress::Parse(absl::StrCat("127.0.0.1:", port)));
  if (!started.ok()) return started;
  port_ = server_->listen_address().port();
  return absl::OkStatus();
}

void ScriptedServer::Kill() {
  if (server_) server_->Shutdown(absl::ZeroDuration());
  server_.reset();
}

absl::Status ScriptedServer::Restart() { return Start(port_); }

std::string ScriptedServer::address() const { return absl::StrCat("127.0.0.1:", port_); }

size_t ScriptedServer::connections() { return server_ ? server_->connection_count() : 0; }

int64_t ScriptedServer::connections_accepted() {
  return server_ ? server_->Stats().connections_accepted : 0;
}

}  // namespace nprpc::testing
