#include "rpc/server.h"

#include <algorithm>
#include <any>
#include <functional>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "netpoll/connection.h"
#include "netpoll/event_loop_group.h"
#include "netpoll/link_buffer.h"
#include "netpoll/logging.h"
#include "netpoll/server.h"
#include "netpoll/tls_context.h"
#include "rpc/health_service.h"
#include "rpc/internal/baidu_std_protocol.h"
#include "rpc/internal/builtin_pages.h"
#include "rpc/internal/grpc_protocol.h"
#include "rpc/internal/http_protocol.h"
#include "rpc/internal/http_request_decoder.h"
#include "rpc/internal/memory_releaser.h"
#include "rpc/internal/server_connection.h"
#include "rpc/internal/server_core.h"
#include "rpc/internal/transport_metrics.h"
#include "rpc/internal/worker_pool.h"
#include "rpc/metrics.h"
#include "rpc/reflection_service.h"
#include "rpc/registration.h"

namespace nprpc {

Server::Server(ServerOptions options)
    : options_(std::move(options)),
      core_(std::make_shared<ServerCore>(options_)),
      health_(options_.serve_health ? std::make_unique<HealthService>() : nullptr) {
  core_->AddProtocol(BaiduStdProtocol::Get());
  if (options_.serve_http) core_->AddProtocol(HttpProtocol::Get());
  if (options_.serve_grpc) core_->AddProtocol(GrpcProtocol::Get());
}

Server::Server(ServerOptions options, AdminTag)
    : options_(std::move(options)), core_(std::make_shared<ServerCore>(options_)), is_admin_(true) {
  core_->AddProtocol(HttpProtocol::Get());
}

std::shared_ptr<const HttpPages> Server::MakePages() {
  BuiltinPages::Source source;
  // The pages are served only while this server's connections (or its
  // admin server's, shut down first) are open, so `this` outlives them.
  source.serving = [this] { return !core_->stopping(); };
  source.stats = [this] { return Stats(); };
  source.listen_address = [this] { return listen_address().ToString(); };
  source.connections = [this] {
    std::vector<BuiltinPages::ConnectionRow> rows;
    netpoll::MutexLock state_lock(&state_mu_);
    if (transport_ == nullptr) return rows;
    for (const netpoll::ConnectionPtr& conn : transport_->Connections()) {
      BuiltinPages::ConnectionRow row;
      row.peer = conn->peer_address().ToString();
      row.created_at = conn->created_at();
      row.bytes_read = conn->bytes_read();
      row.bytes_written = conn->bytes_written();
      if (ServerConnection* state = ServerConnection::Find(*conn); state != nullptr) {
        if (const ServerProtocol* protocol = state->protocol(); protocol != nullptr) {
          row.protocol = std::string(protocol->name());
        }
        row.calls_in_flight = state->calls_in_flight();
      }
      rows.push_back(std::move(row));
    }
    return rows;
  };
  source.started_at = started_at_;
  return std::make_shared<BuiltinPages>(std::move(source));
}

Server::~Server() { Shutdown(options_.shutdown_grace); }

absl::Status Server::AddService(std::unique_ptr<Service> service) {
  if (service == nullptr) return absl::InvalidArgumentError("null service");
  absl::Status s = AddService(service.get());
  if (s.ok()) {
    netpoll::MutexLock lock(&mu_);
    owned_services_.push_back(std::move(service));
  }
  return s;
}

absl::Status Server::AddService(Service* service) {
  if (service == nullptr) return absl::InvalidArgumentError("null service");
  netpoll::MutexLock lock(&mu_);
  if (started_) return absl::FailedPreconditionError("AddService after Start");
  return core_->AddService(service);
}

absl::Status Server::AddStandardServices() {
  if (health_ != nullptr && !core_->HasService(HealthService::kServiceName)) {
    if (absl::Status s = core_->AddService(health_.get()); !s.ok()) return s;
  }
  if (options_.serve_reflection && !is_admin_ &&
      !core_->HasService(ReflectionService::kServiceName)) {
    std::vector<std::string> names = core_->service_names();
    names.emplace_back(ReflectionService::kServiceName);
    std::sort(names.begin(), names.end());
    reflection_ = std::make_unique<ReflectionService>(std::move(names));
    if (absl::Status s = core_->AddService(reflection_.get()); !s.ok()) return s;
  }
  if (health_ != nullptr) {
    health_->SetServingStatus("", true);
    for (const std::string& name : core_->service_names()) health_->SetServingStatus(name, true);
  }
  return absl::OkStatus();
}

absl::Status Server::AddRegistration(std::unique_ptr<Registration> registration) {
  if (registration == nullptr) return absl::InvalidArgumentError("null registration");
  netpoll::MutexLock lock(&mu_);
  if (shut_down_) return absl::FailedPreconditionError("AddRegistration after Shutdown");
  registrations_.push_back(std::move(registration));
  return absl::OkStatus();
}

absl::Status Server::Start(absl::string_view address) {
  absl::StatusOr<netpoll::SocketAddress> parsed = netpoll::SocketAddress::Parse(address);
  if (!parsed.ok()) return parsed.status();
  return Start(*parsed);
}

absl::Status Server::Start(const netpoll::SocketAddress& address) {
  netpoll::MutexLock lock(&mu_);
  if (started_) return absl::FailedPreconditionError("server already started");
  if (options_.num_io_loops < 0 || options_.num_worker_threads < 0) {
    return absl::InvalidArgumentError("num_io_loops and num_worker_threads must be >= 0");
  }
  const int cores = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  const int io_loops = options_.num_io_loops > 0 ? options_.num_io_loops : DefaultIoLoops(cores);
  const int workers =
      options_.num_worker_threads > 0 ? options_.num_worker_threads : DefaultWorkerThreads(cores);
  if (options_.max_in_flight_per_connection < 1) {
    return absl::InvalidArgumentError("max_in_flight_per_connection must be >= 1");
  }
  if (absl::Status s = AddStandardServices(); !s.ok()) return s;
  started_at_ = absl::Now();
  using BuiltinPagesWhere = ServerOptions::BuiltinPages;
  if (!is_admin_ && options_.serve_http &&
      options_.builtin_pages == BuiltinPagesWhere::kServingPort) {
    core_->set_http_pages(MakePages());
  }
  if (!is_admin_ && options_.builtin_pages == BuiltinPagesWhere::kAdminPort) {
    if (options_.admin_address.empty()) {
      return absl::InvalidArgumentError("builtin_pages is kAdminPort but admin_address is empty");
    }
    // One loop that sleeps when idle, answering on the loop: the pages
    // cost the server nothing until an operator looks.
    ServerOptions admin;
    admin.num_io_loops = 1;
    admin.io_busy_poll = absl::ZeroDuration();
    admin.handler_threads = ServerOptions::HandlerThreads::kIoLoop;
    admin.release_memory_after_bursts = false;
    admin.memory_budget_bytes = size_t{64} << 20;
    admin.idle_timeout = absl::Minutes(5);
    admin.builtin_pages = BuiltinPagesWhere::kOff;
    if (options_.admin_tls != nullptr) {
      if (!options_.admin_tls->is_server()) {
        return absl::InvalidArgumentError(
            "admin_tls needs a server context (netpoll::TlsContext::NewServer)");
      }
      // HTTP/1.1 only: a client offered h2 (curl does) must not get it.
      absl::StatusOr<std::shared_ptr<netpoll::TlsContext>> http1 =
          options_.admin_tls->WithAlpn({"http/1.1"});
      if (!http1.ok()) {
        return absl::Status(http1.status().code(),
                            absl::StrCat("admin_tls: ", http1.status().message()));
      }
      admin.tls = *std::move(http1);
      admin.tls_required = options_.admin_tls_required;
    } else if (options_.admin_tls_required) {
      return absl::InvalidArgumentError("admin_tls_required without admin_tls");
    }
    admin_ = std::unique_ptr<Server>(new Server(admin, AdminTag()));
    admin_->core_->set_http_pages(MakePages());
    if (absl::Status s = admin_->Start(options_.admin_address); !s.ok()) {
      admin_.reset();
      return absl::Status(s.code(), absl::StrCat("admin port: ", s.message()));
    }
    netpoll::MutexLock state_lock(&state_mu_);
    admin_address_ = admin_->listen_address();
  }
  if (options_.handler_threads != ServerOptions::HandlerThreads::kIoLoop) {
    absl::StatusOr<std::unique_ptr<WorkerPool>> pool = WorkerPool::Create(
        {.num_threads = workers,
         .max_queued_tasks = options_.max_queued_calls,
         .name = "nprpc-worker",
         .busy_poll = options_.worker_busy_poll,
         // A worker idle for a second after a burst gives
         // its cached blocks back (the MemoryReleaser then
         // returns them to the system).
         .on_idle = options_.release_memory_after_bursts
                        ? std::function<void()>(&netpoll::LinkBuffer::TrimThreadCache)
                        : nullptr});
    if (!pool.ok()) return pool.status();
    pool_ = std::move(*pool);
    core_->set_pool(pool_.get());
  }
  absl::StatusOr<std::unique_ptr<netpoll::EventLoopGroup>> group = netpoll::EventLoopGroup::Create(
      {.num_loops = io_loops, .name = "nprpc-io", .busy_poll = options_.io_busy_poll});
  if (!group.ok()) return group.status();
  group_ = std::move(*group);
  if (options_.release_memory_after_bursts) {
    std::weak_ptr<ServerCore> weak_core = core_;
    releaser_ = std::make_unique<MemoryReleaser>(
        group_.get(), core_->shared_budget(), MemoryReleaserOptions{.on_release = [weak_core] {
          if (std::shared_ptr<ServerCore> core = weak_core.lock()) core->CountMemoryRelease();
        }});
    releaser_->Start();
  }

  netpoll::ServerOptions transport;
  transport.group = group_.get();
  transport.connection.idle_timeout = options_.idle_timeout;
  transport.connection.read_timeout = options_.read_timeout;
  transport.connection.write_timeout = options_.write_timeout;
  transport.connection.memory_budget = core_->shared_budget();
  transport.connection.output_high_watermark = options_.output_high_watermark;
  transport.connection.output_low_watermark = options_.output_low_watermark;
  transport.connection.pause_read_above_high_watermark = true;
  transport.connection.tls = options_.tls;
  transport.connection.tls_required = options_.tls_required;
  // A whole frame of the largest allowed body must fit in the input buffer,
  // and no more: with the frames queued behind max_in_flight_per_connection,
  // this bounds what one connection can make the server hold.
  transport.connection.max_input_bytes = options_.max_body_size + 2 * kBaiduStdHeaderSize;
  if (options_.serve_http) {
    // An HTTP request stays in the input until whole (HttpRequestDecoder).
    transport.connection.max_input_bytes = std::max(
        transport.connection.max_input_bytes,
        HttpRequestDecoder::MaxRequestBytes({.max_header_bytes = options_.max_http_header_size,
                                             .max_body_bytes = options_.max_body_size}));
  }
  std::weak_ptr<ServerCore> weak = core_;
  transport.callbacks->on_prepare = [weak](netpoll::Connection&) -> absl::StatusOr<std::any> {
    std::shared_ptr<ServerCore> core = weak.lock();
    if (core == nullptr || core->stopping()) {
      return absl::UnavailableError("server is stopping");
    }
    return std::any(std::make_shared<ServerConnection>(std::move(core)));
  };
  transport.callbacks->on_request = [](const netpoll::ConnectionPtr& conn,
                                       netpoll::LinkBuffer& input) {
    ServerConnection::Of(*conn).OnInput(conn, input);
  };
  // A client that half-closes after its last request still gets every
  // answer: the connection closes when the last one is written.
  transport.callbacks->on_peer_closed = [](const netpoll::ConnectionPtr& conn) {
    ServerConnection::Of(*conn).OnPeerClosed(conn);
  };
  transport.callbacks->on_output_watermark = [weak](const netpoll::ConnectionPtr&, bool above) {
    if (!above) return;
    if (std::shared_ptr<ServerCore> core = weak.lock()) core->CountOutputPause();
  };
  transport.callbacks->on_disconnect = [](const netpoll::ConnectionPtr& conn,
                                          const absl::Status& /*reason*/) {
    ServerConnection::Of(*conn).OnClosed(conn);
  };
  absl::StatusOr<std::unique_ptr<netpoll::Server>> server = netpoll::Server::Create(transport);
  if (!server.ok()) return server.status();
  // The address is published before the first connection can be accepted:
  // answers read the error prefix from it.
  absl::Status started = (*server)->Start(address, [this](const netpoll::SocketAddress& bound) {
    core_->set_listen_address(bound);
    netpoll::MutexLock state_lock(&state_mu_);
    listen_address_ = bound;
  });
  {
    netpoll::MutexLock state_lock(&state_mu_);
    transport_ = std::move(*server);
    stats_pool_ = pool_.get();
  }
  if (!started.ok()) return started;
  if (!is_admin_) {
    metrics_collector_ = MetricsRegistry::Default().AddCollector(
        [this](PrometheusWriter& writer) { WriteMetrics(writer); });
  }
  started_ = true;
  return absl::OkStatus();
}

void Server::WriteMetrics(PrometheusWriter& writer) const {
  netpoll::TransportStatsSnapshot loops;
  const ServerStats stats = StatsAndLoops(&loops);
  const std::string address = listen_address().ToString();
  const PrometheusWriter::Labels labels = {{"server", address}};
  WriteTransportStats(writer, "nprpc_server", labels, loops);
  using W = PrometheusWriter;
  auto write = [&](absl::string_view name, W::Type type, absl::string_view help, int64_t value) {
    writer.Family(name, type, help);
    writer.Sample(labels, static_cast<double>(value));
  };
  write("nprpc_server_protocol_errors_total", W::kCounter,
        "Connections closed for a protocol error.", stats.protocol_errors);
  write("nprpc_server_auth_failures_total", W::kCounter,
        "Connections refused by the authenticator (ERPCAUTH, then closed).", stats.auth_failures);
  write("nprpc_server_queued_calls", W::kGauge, "Calls waiting in the worker pool's queue.",
        stats.queued_calls);
  write("nprpc_server_memory_held_bytes", W::kGauge,
        "Memory held for peers (the memory budget's use).", stats.memory_held_bytes);
  write("nprpc_server_memory_budget_bytes", W::kGauge, "The memory budget's limit.",
        static_cast<int64_t>(stats.memory_budget_bytes));
  write("nprpc_server_frames_refused_total", W::kCounter,
        "Frames refused from their header for the memory budget.", stats.frames_refused);
  write("nprpc_server_output_pauses_total", W::kCounter,
        "Connections whose reading paused because their answers were not read.",
        stats.output_pauses);
}

void Server::Shutdown(absl::Duration grace) {
  netpoll::MutexLock lock(&mu_);
  if (shut_down_) return;
  shut_down_ = true;
  // Out of the naming systems first: clients stop picking this server while
  // it still serves whoever picked it already.
  if (!registrations_.empty()) {
    for (const std::unique_ptr<Registration>& registration : registrations_) {
      if (absl::Status s = registration->Deregister(); !s.ok()) {
        NP_LOG(WARNING) << "deregistering: " << s;
      }
    }
    registrations_.clear();
    absl::SleepFor(std::min(options_.deregistration_delay, grace));
  }
  const absl::Time deadline = absl::Now() + grace;
  // Health checkers hear NOT_SERVING first (and their watches end), while
  // calls are still taken.
  if (health_ != nullptr) health_->Shutdown();
  // New calls get ELOGOFF, new connections are refused in on_prepare.
  core_->BeginStopping();
  if (metrics_collector_ != 0) {
    MetricsRegistry::Default().RemoveCollector(metrics_collector_);
    metrics_collector_ = 0;
  }
  netpoll::Server* transport;
  {
    netpoll::MutexLock state_lock(&state_mu_);
    transport = transport_.get();  // reset below, only here, under mu_
  }
  if (transport != nullptr) {
    // 0. Peers that can be told (HTTP/2: GOAWAY) stop sending new calls.
    for (const netpoll::ConnectionPtr& conn : transport->Connections()) {
      conn->loop()->RunInLoop([conn] {
        if (ServerConnection* state = ServerConnection::Find(*conn); state != nullptr) {
          state->OnServerStopping(conn);
        }
      });
    }
    // 1. Calls in flight may finish.
    if (int64_t left = core_->WaitForCalls(deadline); left > 0) {
      NP_LOG(WARNING) << "shutting down with " << left << " calls still in flight";
    }
    // 2. Flush the answers and close the connections (forced at the deadline).
    transport->Shutdown(std::max(absl::ZeroDuration(), deadline - absl::Now()));
  }
  // 3. Run what is still queued (each sees its closed connection and is
  //    answered without running), join the workers.
  if (pool_ != nullptr) pool_->Stop();
  // 4. Late completions from now on drop their answer: the loops go away.
  core_->CloseLoops();
  if (releaser_ != nullptr) releaser_->Stop();
  if (group_ != nullptr) group_->Stop();
  {
    netpoll::MutexLock state_lock(&state_mu_);
    transport_.reset();
    stats_pool_ = nullptr;
  }
  core_->set_pool(nullptr);
  pool_.reset();
  releaser_.reset();
  group_.reset();
  if (admin_ != nullptr) admin_->Shutdown(absl::ZeroDuration());
}

netpoll::SocketAddress Server::admin_address() const {
  netpoll::MutexLock state_lock(&state_mu_);
  return admin_address_;
}

netpoll::SocketAddress Server::listen_address() const {
  netpoll::MutexLock state_lock(&state_mu_);
  return listen_address_;
}

ServerStats Server::Stats() const { return StatsAndLoops(nullptr); }

ServerStats Server::StatsAndLoops(netpoll::TransportStatsSnapshot* loops_out) const {
  ServerStats stats;
  core_->FillStats(stats);
  netpoll::MutexLock state_lock(&state_mu_);
  if (transport_ != nullptr) {
    stats.connections = static_cast<int64_t>(transport_->connection_count());
    const netpoll::TransportStatsSnapshot loops = transport_->Stats();
    stats.loop_handoffs = loops.handoffs;
    stats.connections_accepted = loops.connections_accepted;
    stats.bytes_read = loops.bytes_in;
    stats.bytes_written = loops.bytes_out;
    stats.busy_polls = loops.busy_polls;
    stats.wakeups = loops.wakeups;
    if (loops_out != nullptr) *loops_out = loops;
  }
  if (stats_pool_ != nullptr)
    stats.queued_calls = static_cast<int64_t>(stats_pool_->queued_tasks());
  return stats;
}

}  // namespace nprpc
