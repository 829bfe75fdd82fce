// Gate: "stop new work, then wait for the work in flight" (Seastar's gate).
// Work enters with TryEnter() and leaves with Leave(); Close() makes every
// later TryEnter() fail; WaitUntilEmpty() waits for the holders to leave.
//
//   if (!gate.TryEnter()) return ELOGOFF;   // stopping: no new work
//   ... work ...
//   gate.Leave();
//
//   gate.Close();                           // shutdown
//   gate.WaitUntilEmpty(deadline);
//
// The server uses two: one for calls (admitted until shutdown begins, waited
// for up to the grace period) and one for the loops (writers that touch a
// connection, waited for before the loops stop).
//
// Thread safety: every method is safe from any thread.
#ifndef RPC_INTERNAL_GATE_H_
#define RPC_INTERNAL_GATE_H_

#include <cstdint>

#include "absl/time/time.h"
#include "netpoll/mutex.h"

namespace nprpc {

class Gate {
 public:
  Gate() = default;
  Gate(const Gate&) = delete;
  Gate& operator=(const Gate&) = delete;

  // Enters and returns true, or returns false once Close() was called.
  bool TryEnter();
  // Leaves; every successful TryEnter() is paired with one Leave().
  void Leave();
  // No new entries from now on. Idempotent.
  void Close();
  // Waits until no holder is inside, or until `deadline`. True when empty.
  bool WaitUntilEmpty(absl::Time deadline = absl::InfiniteFuture());

  bool closed() const;
  // Holders inside now.
  int64_t size() const;

 private:
  mutable netpoll::Mutex mu_;
  netpoll::CondVar empty_;  // signalled when size_ drops to 0
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  int64_t size_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace nprpc

#endif  // RPC_INTERNAL_GATE_H_
