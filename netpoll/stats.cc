#include "netpoll/stats.h"

namespace netpoll {

TransportStatsSnapshot& TransportStatsSnapshot::operator+=(const TransportStatsSnapshot& other) {
  connections_active += other.connections_active;
  connections_accepted += other.connections_accepted;
  connections_dialed += other.connections_dialed;
  connections_closed += other.connections_closed;
  bytes_in += other.bytes_in;
  bytes_out += other.bytes_out;
  timeouts += other.timeouts;
  accept_errors += other.accept_errors;
  write_calls += other.write_calls;
  wakeups += other.wakeups;
  busy_polls += other.busy_polls;
  busy_poll_hits += other.busy_poll_hits;
  may_block_tasks += other.may_block_tasks;
  handoffs += other.handoffs;
  return *this;
}

TransportStatsSnapshot LoopStats::Snapshot() const {
  TransportStatsSnapshot s;
  s.connections_active = connections_active.load(std::memory_order_relaxed);
  s.connections_accepted = connections_accepted.load(std::memory_order_relaxed);
  s.connections_dialed = connections_dialed.load(std::memory_order_relaxed);
  s.connections_closed = connections_closed.load(std::memory_order_relaxed);
  s.bytes_in = bytes_in.load(std::memory_order_relaxed);
  s.bytes_out = bytes_out.load(std::memory_order_relaxed);
  s.timeouts = timeouts.load(std::memory_order_relaxed);
  s.accept_errors = accept_errors.load(std::memory_order_relaxed);
  s.write_calls = write_calls.load(std::memory_order_relaxed);
  s.wakeups = wakeups.load(std::memory_order_relaxed);
  s.busy_polls = busy_polls.load(std::memory_order_relaxed);
  s.busy_poll_hits = busy_poll_hits.load(std::memory_order_relaxed);
  s.may_block_tasks = may_block_tasks.load(std::memory_order_relaxed);
  s.handoffs = handoffs.load(std::memory_order_relaxed);
  return s;
}

}  // namespace netpoll
