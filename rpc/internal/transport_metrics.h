// WriteTransportStats: the Prometheus families of a netpoll
// TransportStatsSnapshot (connections, bytes, loop wake-ups and busy polls),
// for server and channel collectors.
//
//   registry.AddCollector([server](PrometheusWriter& w) {
//     WriteTransportStats(w, "nprpc_server", {{"server", server->address()}},
//                         server->TransportStats());
//   });
//
// With prefix P, writes P_connections (gauge), P_connections_accepted_total,
// P_connections_dialed_total, P_connections_closed_total, P_read_bytes_total,
// P_written_bytes_total, P_timeouts_total, P_accept_errors_total,
// P_write_calls_total, P_loop_wakeups_total, P_loop_busy_polls_total,
// P_loop_busy_poll_hits_total, P_loop_may_block_tasks_total and
// P_loop_handoffs_total. Several collectors may write the same prefix with
// different labels: PrometheusWriter merges the families.
//
// Thread safety: as the writer (one thread per writer).
#ifndef RPC_INTERNAL_TRANSPORT_METRICS_H_
#define RPC_INTERNAL_TRANSPORT_METRICS_H_

#include "absl/strings/string_view.h"
#include "netpoll/stats.h"
#include "rpc/internal/prometheus_writer.h"

namespace nprpc {

void WriteTransportStats(PrometheusWriter& writer, absl::string_view prefix,
                         const PrometheusWriter::Labels& labels,
                         const netpoll::TransportStatsSnapshot& stats);

}  // namespace nprpc

#endif  // RPC_INTERNAL_TRANSPORT_METRICS_H_
