#include "rpc/internal/grpc_client_protocol.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "netpoll/dialer.h"
#include "netpoll/logging.h"

namespace nprpc {
namespace {

// The client connection preface and an empty SETTINGS frame (RFC 9113 3.4).
constexpr char kPrefaceBytes[] =
    "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    "\x00\x00\x00\x04\x00\x00\x00\x00\x00";
constexpr absl::string_view kPreface(kPrefaceBytes, sizeof(kPrefaceBytes) - 1);
constexpr size_t kFrameHeaderSize = 9;
constexpr char kSettingsType = 0x04;

// One probe: dial, send the preface, wait for the server's first frame.
// Loop thread only; `done` runs once.
class GrpcProbe : public std::enable_shared_from_this<GrpcProbe> {
 public:
  GrpcProbe(netpoll::EventLoop* loop, std::string address, absl::Duration timeout,
            const GrpcTransportOptions& transport, absl::AnyInvocable<void(absl::Status)> done)
      : loop_(loop),
        address_(std::move(address)),
        timeout_(timeout),
        tls_(transport.tls),
        tcp_keepalive_(transport.tcp_keepalive),
        done_(std::move(done)) {}

  void Start() {
    std::weak_ptr<GrpcProbe> weak = weak_from_this();
    auto self = shared_from_this();
    timer_ = loop_->RunAfter(timeout_, [self] {
      self->timer_ = netpoll::kInvalidTimerId;
      self->Done(absl::DeadlineExceededError(absl::StrCat("no HTTP/2 SETTINGS from ",
                                                          self->address_, " within ",
                                                          absl::FormatDuration(self->timeout_))));
    });
    netpoll::DialOptions dial;
    dial.timeout = timeout_;
    dial.keepalive = tcp_keepalive_;
    dial.connection.tls = tls_;
    auto callbacks = std::make_shared<netpoll::ConnectionCallbacks>();
    callbacks->on_request = [weak](const netpoll::ConnectionPtr&, netpoll::LinkBuffer& in) {
      if (auto self = weak.lock()) self->OnInput(in);
    };
    callbacks->on_disconnect = [weak](const netpoll::ConnectionPtr&, const absl::Status& why) {
      if (auto self = weak.lock()) {
        self->Done(absl::UnavailableError(absl::StrCat(
            self->address_,
            " closed the probe: ", why.ok() ? "closed by the server" : why.message())));
      }
    };
    dial.callbacks = std::move(callbacks);
    netpoll::Dialer::Dial(loop_, address_, dial,
                          [self](absl::StatusOr<netpoll::ConnectionPtr> conn) {
                            if (!conn.ok()) {
                              self->Done(conn.status());
                              return;
                            }
                            self->conn_ = *conn;
                            if (self->finished_) {
                              self->conn_->Close();
                              return;
                            }
                            if (absl::Status s = self->conn_->Write(kPreface); !s.ok()) {
                              self->Done(s);
                            }
                          });
  }

 private:
  void OnInput(netpoll::LinkBuffer& in) {
    if (in.Len() < kFrameHeaderSize) return;
    char header[kFrameHeaderSize];
    in.PeekCopy(kFrameHeaderSize, header);
    (void)in.Skip(in.Len());
    if (header[3] == kSettingsType) {
      Done(absl::OkStatus());
    } else {
      Done(absl::UnavailableError(
          absl::StrCat(address_, " does not speak HTTP/2 (its first frame is not SETTINGS)")));
    }
  }

  void Done(absl::Status status) {
    if (finished_) return;
    finished_ = true;
    if (timer_ != netpoll::kInvalidTimerId) loop_->Cancel(timer_);
    if (conn_) conn_->Close();
    std::exchange(done_, nullptr)(std::move(status));
  }

  netpoll::EventLoop* const loop_;
  const std::string address_;
  const absl::Duration timeout_;
  const std::shared_ptr<const netpoll::TlsContext> tls_;
  const netpoll::TcpKeepAliveOptions tcp_keepalive_;
  absl::AnyInvocable<void(absl::Status)> done_;
  netpoll::ConnectionPtr conn_;
  netpoll::TimerId timer_ = netpoll::kInvalidTimerId;
  bool finished_ = false;
};

}  // namespace

absl::StatusOr<std::unique_ptr<ClientProtocol>> GrpcClientProtocol::Create(
    const ClientProtocolOptions& options) {
  NP_CHECK(options.loops != nullptr) << "a client protocol needs loops";
  std::unique_ptr<GrpcClientProtocol> protocol(new GrpcClientProtocol(options));
  if (options.tls != nullptr) {
    absl::StatusOr<std::shared_ptr<netpoll::TlsContext>> h2 = options.tls->WithAlpn({"h2"});
    if (!h2.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("grpc over TLS: cannot offer ALPN h2: ", h2.status().message()));
    }
    protocol->transport_options_.tls = *std::move(h2);
  }
  return std::unique_ptr<ClientProtocol>(std::move(protocol));
}

GrpcClientProtocol::GrpcClientProtocol(const ClientProtocolOptions& options) : options_(options) {
  transport_options_.connect_timeout = options.connect_timeout;
  transport_options_.reconnect_backoff = options.reconnect_backoff;
  transport_options_.max_reconnect_backoff = options.max_reconnect_backoff;
  transport_options_.max_receive_message_size = options.max_receive_message_size;
  transport_options_.max_unwritten_bytes = options.max_unwritten_bytes;
  transport_options_.write_timeout = options.write_timeout;
  transport_options_.keepalive_time = options.keepalive_time;
  transport_options_.keepalive_timeout = options.keepalive_timeout;
  transport_options_.tcp_keepalive = options.tcp_keepalive;
}

std::shared_ptr<Transport> GrpcClientProtocol::NewTransport(const std::string& address) {
  return GrpcClientTransport::Create(address, options_.loops->Next(), transport_options_);
}

void GrpcClientProtocol::Probe(const std::string& address,
                               absl::AnyInvocable<void(absl::Status)> done) {
  netpoll::EventLoop* loop = options_.loops->Next();
  auto probe = std::make_shared<GrpcProbe>(loop, address, options_.connect_timeout,
                                           transport_options_, std::move(done));
  // Queued, so that `done` never runs inside Probe().
  loop->QueueInLoop([probe] { probe->Start(); });
}

}  // namespace nprpc
