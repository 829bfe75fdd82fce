# The files CMake compiles, mirroring the non-test Bazel targets:
#   NPRPC_NETPOLL_SOURCES  //netpoll/...        -> nprpc::netpoll
#   NPRPC_RUNTIME_SOURCES  //rpc/...            -> nprpc::nprpc
#   NPRPC_RUNTIME_PROTOS   //proto:rpc_meta_proto (compiled into nprpc::nprpc)
#   NPRPC_PLUGIN_SOURCES   //codegen/...        -> protoc-gen-nprpc
# BUILD.bazel is the source of truth: tools/check_cmake_sources.py (run by
# .ci/run) fails when a list differs from `bazel query`, and `--print` writes
# the lists it wants.

set(NPRPC_NETPOLL_SOURCES
  netpoll/busy_poll_budget.cc
  netpoll/connection.cc
  netpoll/connection_pool.cc
  netpoll/dialer.cc
  netpoll/epoll_poller.cc
  netpoll/event_loop.cc
  netpoll/event_loop_group.cc
  netpoll/internal/block_cache.cc
  netpoll/internal/loop_watchdog.cc
  netpoll/link_buffer.cc
  netpoll/logging.cc
  netpoll/memory_budget.cc
  netpoll/poller.cc
  netpoll/server.cc
  netpoll/socket.cc
  netpoll/socket_address.cc
  netpoll/stats.cc
  netpoll/timer_queue.cc
  netpoll/tls_context.cc
  netpoll/tls_session.cc
  netpoll/udp_socket.cc
  netpoll/zero_copy_stream.cc
)

set(NPRPC_RUNTIME_SOURCES
  rpc/call_options.cc
  rpc/channel.cc
  rpc/channel_async.cc
  rpc/context_propagation.cc
  rpc/errors.cc
  rpc/internal/adaptive_placement.cc
  rpc/internal/baidu_std_client_codec.cc
  rpc/internal/baidu_std_client_protocol.cc
  rpc/internal/baidu_std_protocol.cc
  rpc/internal/builtin_pages.cc
  rpc/internal/call_controller.cc
  rpc/internal/channel_core.cc
  rpc/internal/client_call.cc
  rpc/internal/client_protocols.cc
  rpc/internal/compression.cc
  rpc/internal/consistent_hash.cc
  rpc/internal/crc32c.cc
  rpc/internal/frame_codec.cc
  rpc/internal/gate.cc
  rpc/internal/grpc_client_protocol.cc
  rpc/internal/grpc_client_transport.cc
  rpc/internal/grpc_protocol.cc
  rpc/internal/grpc_wire.cc
  rpc/internal/http_message.cc
  rpc/internal/http_protocol.cc
  rpc/internal/http_request_decoder.cc
  rpc/internal/json_quote.cc
  rpc/internal/latency_histogram.cc
  rpc/internal/load_balancer.cc
  rpc/internal/memory_releaser.cc
  rpc/internal/metrics_sampler.cc
  rpc/internal/outlier_detector.cc
  rpc/internal/pooled_transport.cc
  rpc/internal/process_metrics.cc
  rpc/internal/prometheus_writer.cc
  rpc/internal/server_call.cc
  rpc/internal/server_connection.cc
  rpc/internal/server_core.cc
  rpc/internal/sharded_counter.cc
  rpc/internal/single_connection_transport.cc
  rpc/internal/transport.cc
  rpc/internal/transport_metrics.cc
  rpc/internal/worker_pool.cc
  rpc/method_handlers.cc
  rpc/dns_naming_service.cc
  rpc/file_naming_service.cc
  rpc/metrics.cc
  rpc/naming_service.cc
  rpc/naming_services.cc
  rpc/retry_policy.cc
  rpc/server.cc
  rpc/server_context.cc
  rpc/trace_context.cc
  rpc/tracing.cc
  rpc/server_options.cc
  rpc/health_service.cc
  rpc/reflection_service.cc
  rpc/service.cc
  rpc/stream_core.cc
  rpc/stub_core.cc
)

set(NPRPC_RUNTIME_PROTOS
  proto/rpc_meta.proto
)

set(NPRPC_PLUGIN_SOURCES
  codegen/comments.cc
  codegen/file_printer.cc
  codegen/generator.cc
  codegen/names.cc
  codegen/parameters.cc
  codegen/plugin_main.cc
  codegen/service_printer.cc
  codegen/validate.cc
)
