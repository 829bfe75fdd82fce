// Task<T>: the C++20 coroutine type of nprpc, and what it needs to await
// RPCs: StartDetached(), CallMethodAsync(), WhenAll(), BlockOn(), and the
// propagation of an incoming call's context to the calls made for it.
//
//   nprpc::Task<absl::StatusOr<int>> Sum(Stub& stub, const Request& req) {
//     auto [b, c] = co_await nprpc::WhenAll(stub.BAsync(req), stub.CAsync(req));
//     if (!b.ok()) co_return b.status();
//     if (!c.ok()) co_return c.status();
//     co_return b->value() + c->value();
//   }
//
// A Task is lazy: calling a coroutine that returns Task<T> only creates its
// frame; the body starts when the task is awaited (co_await), started with
// StartDetached(), or run with BlockOn(). A task that finishes after
// suspending resumes its awaiter by symmetric transfer; one that finishes
// synchronously lets its awaiter go on without suspending, so neither a long
// chain of completions nor a loop of synchronous awaits grows the stack. A
// Task is
// move-only and owns its frame; destroying a task that never started frees it.
//
// No exceptions: nprpc is built exception-free (errors are absl::Status), so
// an exception escaping a coroutine body aborts the process.
//
// Threads: a coroutine runs on whichever thread resumes it. It starts on the
// thread that awaits (or starts) it, and after `co_await CallMethodAsync(...)`
// (or a generated stub's `FooAsync(...)`) it continues on the I/O loop
// thread of the channel that completed the call, so code after an await must
// not block (no sync stub calls, no long computations: hand those to a pool).
// After `co_await WhenAll(...)` it continues on the thread that completed the
// last of the awaited tasks.
//
// Context propagation: a Task carries a `const ServerContext*` (the incoming
// call it works for, or null). CallMethodAsync() merges that context into its
// CallOptions (PropagateContext(): deadline, trace context, forwarded user fields). A task
// takes its context, in order: from the task that awaits it, when it has none
// of its own; otherwise from CurrentServerContext() of the thread that created
// it. The generated server bases make the incoming call current while a
// handler runs (ScopedServerContext), so the calls a handler makes, directly
// or through nested tasks, inherit its deadline and trace context without any
// plumbing. Generated stubs opt out with StubOptions::propagate_context =
// false; CallMethodAsync with `propagate = false`.
//
// Lifetimes: arguments a coroutine takes by reference must outlive its
// completion. `co_await stub.EchoAsync(request)` and
// `co_await WhenAll(stub.BAsync(b), stub.CAsync(c))` are safe (temporaries of
// a full expression live until its co_await completes); storing a task that
// refers to a temporary and awaiting it later is not.
//
// g++ 12 caveat (observed with 12.2 at every -O level): a brace-initialized
// aggregate temporary that lives across the suspension of a co_await
// expression is copied bitwise into the frame, so one holding a std::string
// (CallOptions, say) frees a bad pointer later. Write
// `co_await stub.EchoAsync(request, options)` with a named `options`, or
// `CallOptions()`, never `{.timeout = ...}` inside the co_await. Defaults in
// this header and in generated code use `CallOptions()` for this reason.
//
// Thread safety: a Task is used by one thread at a time. WhenAll's children
// may complete concurrently on different threads.
#ifndef RPC_TASK_H_
#define RPC_TASK_H_

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <cstdlib>
#include <memory>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"
#include "netpoll/mutex.h"
#include "rpc/context_propagation.h"
#include "rpc/server_context.h"

namespace nprpc {

template <typename T = void>
class Task;

namespace task_internal {

// What every nprpc coroutine promise carries: the context of the call it
// works for.
class PromiseBase {
 public:
  PromiseBase() : context_(CurrentServerContext()) {}
  const ServerContext* context() const { return context_; }
  void set_context(const ServerContext* context) { context_ = context; }
  void InheritContext(const ServerContext* context) {
    if (context_ == nullptr) context_ = context;
  }
  // -fno-exceptions semantics: nothing may escape a coroutine body.
  void unhandled_exception() noexcept { std::abort(); }

 private:
  const ServerContext* context_;
};

// The context of the coroutine behind `handle`: its promise's when it is an
// nprpc promise, otherwise the thread's current one.
template <typename Promise>
const ServerContext* ContextOf(std::coroutine_handle<Promise> handle) {
  if constexpr (std::is_base_of_v<PromiseBase, Promise>) {
    return handle.promise().context();
  } else {
    return CurrentServerContext();
  }
}

template <typename T>
class TaskPromise;

// Resumes the awaiting coroutine when a task finishes, unless the awaiter is
// still inside its await_suspend (the task finished synchronously): then the
// awaiter goes on by itself. Either way no frame nests in another.
struct FinalAwaiter {
  bool await_ready() const noexcept { return false; }
  template <typename Promise>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> self) noexcept {
    Promise& promise = self.promise();
    std::coroutine_handle<> next = promise.continuation();
    if (next && promise.Arrive()) return next;  // symmetric transfer
    return std::noop_coroutine();
  }
  void await_resume() const noexcept {}
};

template <typename T>
class TaskPromiseStorage : public PromiseBase {
 public:
  template <typename U>
  void return_value(U&& value) {
    value_.emplace(std::forward<U>(value));
  }
  T TakeResult() { return std::move(*value_); }

 private:
  std::optional<T> value_;
};

template <>
class TaskPromiseStorage<void> : public PromiseBase {
 public:
  void return_void() {}
  void TakeResult() {}
};

template <typename T>
class TaskPromise : public TaskPromiseStorage<T> {
 public:
  Task<T> get_return_object() noexcept;
  std::suspend_always initial_suspend() const noexcept { return {}; }
  FinalAwaiter final_suspend() const noexcept { return {}; }

  std::coroutine_handle<> continuation() const { return continuation_; }
  void set_continuation(std::coroutine_handle<> c) { continuation_ = c; }
  // The awaiter's await_suspend and the task's end meet here; the second to
  // arrive (true) continues the awaiter.
  bool Arrive() { return rendezvous_.exchange(true, std::memory_order_acq_rel); }

 private:
  std::coroutine_handle<> continuation_;
  std::atomic<bool> rendezvous_{false};
};

}  // namespace task_internal

// ------------------------------------------------------------------ Task

template <typename T>
class [[nodiscard]] Task {
 public:
  using promise_type = task_internal::TaskPromise<T>;
  using value_type = T;

  Task() = default;  // empty: may only be destroyed, assigned or tested
  Task(Task&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      if (handle_) handle_.destroy();
      handle_ = std::exchange(other.handle_, {});
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() {
    if (handle_) handle_.destroy();
  }

  // False for a default-constructed or moved-from task.
  bool valid() const { return static_cast<bool>(handle_); }

  // Sets the context the task's body sees unless it has one already.
  void InheritContext(const ServerContext* context) {
    if (handle_) handle_.promise().InheritContext(context);
  }

  // co_await task: starts the body, resumes the awaiter when it finishes, and
  // yields its co_return value. Await a task once.
  class Awaiter {
   public:
    explicit Awaiter(std::coroutine_handle<promise_type> handle) : handle_(handle) {}
    bool await_ready() const noexcept { return false; }
    // Runs the task's body until it finishes or suspends. A task that
    // finished synchronously continues the awaiter without suspending it,
    // so loops of synchronous awaits keep a flat stack (g++ makes a returned
    // coroutine_handle a tail call only with -foptimize-sibling-calls, i.e.
    // from -O2: debug and sanitizer builds would grow the stack otherwise).
    template <typename Promise>
    bool await_suspend(std::coroutine_handle<Promise> awaiting) {
      handle_.promise().InheritContext(task_internal::ContextOf(awaiting));
      handle_.promise().set_continuation(awaiting);
      handle_.resume();
      return !handle_.promise().Arrive();
    }
    T await_resume() { return handle_.promise().TakeResult(); }

   private:
    std::coroutine_handle<promise_type> handle_;
  };
  Awaiter operator co_await() && noexcept { return Awaiter(handle_); }

 private:
  friend class task_internal::TaskPromise<T>;
  explicit Task(std::coroutine_handle<promise_type> handle) : handle_(handle) {}

  std::coroutine_handle<promise_type> handle_;
};

namespace task_internal {

template <typename T>
Task<T> TaskPromise<T>::get_return_object() noexcept {
  return Task<T>(std::coroutine_handle<TaskPromise<T>>::from_promise(*this));
}

// An eager coroutine that frees itself when it finishes. Its parameters keep
// the task it awaits and the callback alive.
struct DetachedCoroutine {
  struct promise_type : PromiseBase {
    DetachedCoroutine get_return_object() const noexcept { return {}; }
    std::suspend_never initial_suspend() const noexcept { return {}; }
    std::suspend_never final_suspend() const noexcept { return {}; }
    void return_void() const noexcept {}
  };
};

template <typename T>
DetachedCoroutine RunDetached(Task<T> task, absl::AnyInvocable<void(T)> on_done) {
  T result = co_await std::move(task);
  if (on_done) std::move(on_done)(std::move(result));
}

inline DetachedCoroutine RunDetached(Task<void> task, absl::AnyInvocable<void()> on_done) {
  co_await std::move(task);
  if (on_done) std::move(on_done)();
}

}  // namespace task_internal

// Starts `task` now, on this thread, without an awaiter; `on_done` runs with
// its result on the thread that finishes it (this one if it never suspends).
// The task's frame is freed after `on_done` returns.
template <typename T>
void StartDetached(Task<T> task, absl::AnyInvocable<void(T)> on_done = nullptr) {
  task_internal::RunDetached(std::move(task), std::move(on_done));
}
inline void StartDetached(Task<void> task, absl::AnyInvocable<void()> on_done = nullptr) {
  task_internal::RunDetached(std::move(task), std::move(on_done));
}

// Runs `task` and blocks this thread until it finishes. For main(), tests and
// other threads outside the framework; never on an I/O loop thread (the task
// may need that loop to finish) nor on a server worker.
template <typename T>
T BlockOn(Task<T> task) {
  netpoll::Notification done;
  std::optional<T> result;
  StartDetached(std::move(task), absl::AnyInvocable<void(T)>([&](T value) {
                  result.emplace(std::move(value));
                  done.Notify();
                }));
  done.WaitForNotification();
  return std::move(*result);
}
inline void BlockOn(Task<void> task) {
  netpoll::Notification done;
  StartDetached(std::move(task), absl::AnyInvocable<void()>([&] { done.Notify(); }));
  done.WaitForNotification();
}

// ------------------------------------------------------------------ Awaiting calls

// co_await nprpc::CurrentTaskContext(): the context of the running coroutine
// (see "Context propagation" above), or null. Never suspends.
struct CurrentTaskContext {
  bool await_ready() const noexcept { return false; }
  template <typename Promise>
  bool await_suspend(std::coroutine_handle<Promise> handle) noexcept {
    context_ = task_internal::ContextOf(handle);
    return false;
  }
  const ServerContext* await_resume() const noexcept { return context_; }

 private:
  const ServerContext* context_ = nullptr;
};

// ------------------------------------------------------------------ WhenAll

namespace task_internal {

// Counts the children of one WhenAll still running, plus one for the awaiter
// itself; whoever brings it to zero resumes the parent.
struct WhenAllLatch {
  explicit WhenAllLatch(size_t children) : remaining(children + 1) {}
  // True for the last arrival.
  bool Arrive() { return remaining.fetch_sub(1, std::memory_order_acq_rel) == 1; }

  std::atomic<size_t> remaining;
  std::coroutine_handle<> parent;
};

template <typename T>
DetachedCoroutine RunChild(Task<T> task, std::optional<T>* slot, WhenAllLatch* latch) {
  slot->emplace(co_await std::move(task));
  if (latch->Arrive()) latch->parent.resume();
}

template <typename... T>
class WhenAllTupleAwaiter {
 public:
  explicit WhenAllTupleAwaiter(std::tuple<Task<T>...> tasks)
      : tasks_(std::move(tasks)), latch_(sizeof...(T)) {}
  bool await_ready() const noexcept { return false; }
  template <typename Promise>
  bool await_suspend(std::coroutine_handle<Promise> parent) {
    latch_.parent = parent;
    const ServerContext* context = ContextOf(parent);
    StartAll(context, std::index_sequence_for<T...>{});
    return !latch_.Arrive();
  }
  std::tuple<T...> await_resume() { return TakeAll(std::index_sequence_for<T...>{}); }

 private:
  template <size_t... I>
  void StartAll(const ServerContext* context, std::index_sequence<I...>) {
    (std::get<I>(tasks_).InheritContext(context), ...);
    (RunChild(std::move(std::get<I>(tasks_)), &std::get<I>(results_), &latch_), ...);
  }
  template <size_t... I>
  std::tuple<T...> TakeAll(std::index_sequence<I...>) {
    return std::tuple<T...>(std::move(*std::get<I>(results_))...);
  }

  std::tuple<Task<T>...> tasks_;
  std::tuple<std::optional<T>...> results_;
  WhenAllLatch latch_;
};

template <typename T>
class WhenAllVectorAwaiter {
 public:
  explicit WhenAllVectorAwaiter(std::vector<Task<T>> tasks)
      : tasks_(std::move(tasks)), results_(tasks_.size()), latch_(tasks_.size()) {}
  bool await_ready() const noexcept { return false; }
  template <typename Promise>
  bool await_suspend(std::coroutine_handle<Promise> parent) {
    latch_.parent = parent;
    const ServerContext* context = ContextOf(parent);
    for (size_t i = 0; i < tasks_.size(); ++i) {
      tasks_[i].InheritContext(context);
      RunChild(std::move(tasks_[i]), &results_[i], &latch_);
    }
    return !latch_.Arrive();
  }
  std::vector<T> await_resume() {
    std::vector<T> out;
    out.reserve(results_.size());
    for (std::optional<T>& r : results_) out.push_back(std::move(*r));
    return out;
  }

 private:
  std::vector<Task<T>> tasks_;
  std::vector<std::optional<T>> results_;
  WhenAllLatch latch_;
};

}  // namespace task_internal

// Runs every task concurrently: each starts in turn on the awaiting thread
// and runs until its first suspension; the awaiter resumes, on the thread
// that finished the last one, with all results in argument order. Tasks of
// non-void types only (wrap a Task<void> in one returning absl::Status).
template <typename... T>
Task<std::tuple<T...>> WhenAll(Task<T>... tasks) {
  static_assert(sizeof...(T) > 0, "WhenAll needs at least one task");
  static_assert((!std::is_void_v<T> && ...), "WhenAll takes tasks with values");
  co_return co_await task_internal::WhenAllTupleAwaiter<T...>(
      std::tuple<Task<T>...>(std::move(tasks)...));
}

// The same over a vector (results in the same order). An empty vector yields
// an empty vector without suspending.
template <typename T>
Task<std::vector<T>> WhenAll(std::vector<Task<T>> tasks) {
  static_assert(!std::is_void_v<T>, "WhenAll takes tasks with values");
  co_return co_await task_internal::WhenAllVectorAwaiter<T>(std::move(tasks));
}

}  // namespace nprpc

#endif  // RPC_TASK_H_
