#include "rpc/internal/transport_metrics.h"

#include <cstdint>

#include "absl/strings/str_cat.h"

namespace nprpc {

void WriteTransportStats(PrometheusWriter& writer, absl::string_view prefix,
                         const PrometheusWriter::Labels& labels,
                         const netpoll::TransportStatsSnapshot& stats) {
  using W = PrometheusWriter;
  auto write = [&](absl::string_view suffix, W::Type type, absl::string_view help, int64_t value) {
    writer.Family(absl::StrCat(prefix, "_", suffix), type, help);
    writer.Sample(labels, static_cast<double>(value));
  };
  write("connections", W::kGauge, "Open connections.", stats.connections_active);
  write("connections_accepted_total", W::kCounter, "Connections accepted.",
        stats.connections_accepted);
  write("connections_dialed_total", W::kCounter, "Connections dialed.", stats.connections_dialed);
  write("connections_closed_total", W::kCounter, "Connections closed.", stats.connections_closed);
  write("read_bytes_total", W::kCounter, "Bytes read from sockets.", stats.bytes_in);
  write("written_bytes_total", W::kCounter, "Bytes written to sockets.", stats.bytes_out);
  write("timeouts_total", W::kCounter, "Read, write and idle timeouts that closed a connection.",
        stats.timeouts);
  write("accept_errors_total", W::kCounter, "accept() failures.", stats.accept_errors);
  write("write_calls_total", W::kCounter, "writev() calls that sent bytes.", stats.write_calls);
  write("loop_wakeups_total", W::kCounter, "Event-loop wake-ups by other threads.", stats.wakeups);
  write("loop_busy_polls_total", W::kCounter, "Event-loop busy-poll spins.", stats.busy_polls);
  write("loop_busy_poll_hits_total", W::kCounter,
        "Busy-poll spins that found an fd ready or work queued.", stats.busy_poll_hits);
  write("loop_may_block_tasks_total", W::kCounter, "Tasks run in blocking sections of a loop.",
        stats.may_block_tasks);
  write("loop_handoffs_total", W::kCounter,
        "Times a blocked section's loop moved to another thread.", stats.handoffs);
}

}  // namespace nprpc
