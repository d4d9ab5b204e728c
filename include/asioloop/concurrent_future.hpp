//
// asioloop/concurrent_future.hpp
//
// Distributed under the Boost Software License, Version 1.0.
//

// event_loop.hpp comes first, outside the include guard: it ends by
// including future.hpp and task.hpp, which this header builds on.
#include <asioloop/event_loop.hpp>

#ifndef ASIOLOOP_CONCURRENT_FUTURE_HPP
#define ASIOLOOP_CONCURRENT_FUTURE_HPP

#include <asioloop/detail/asio_compat.hpp>
#include <asioloop/detail/completion.hpp>
#include <asioloop/error.hpp>
#include <asioloop/event_loop.hpp>
#include <asioloop/future.hpp>
#include <asioloop/task.hpp>

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/core/demangle.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

namespace asioloop {

template <typename T>
class concurrent_future;

namespace detail {

/// A done callback of a concurrent_future, type-erased; run once, on the
/// thread that completes the future (or the one that adds it to a done one).
class cf_callback
{
public:
  virtual ~cf_callback() = default;
  virtual void run(class cf_state_base& st) = 0;
  /// For error reports: the callable's type.
  virtual const std::type_info& type() const noexcept = 0;
};

/// Lets the producer of a future's result take part in a blocking wait for
/// it. A wait()/wait_until() calls it before it sleeps: a process pool uses
/// it to read the worker's reply on the waiting thread itself, sparing the
/// round trip a wake-up of the pool's thread (6-15 us on a virtual machine,
/// a third of the round trip). Whatever it does, the wait goes on as usual
/// when it returns, so it may give up at any time.
class cf_waiter
{
public:
  /// Called by a thread about to block on @c st, which is not done; should
  /// return once it is done, by @c deadline, or when it cannot help.
  virtual void wait_for(class cf_state_base& st,
      std::chrono::steady_clock::time_point deadline) noexcept = 0;

protected:
  ~cf_waiter() = default;
};

/// The state a concurrent_future's handles share, whatever T is. Any thread
/// may use it: the status is atomic (done() takes no lock), the rest is
/// guarded by the mutex; the value is written once, before the status turns
/// finished, and only read after.
class cf_state_base : public std::enable_shared_from_this<cf_state_base>
{
public:
  enum status : int
  {
    pending,
    running,
    finished,
    cancelled
  };

  cf_state_base() = default;
  cf_state_base(const cf_state_base&) = delete;
  cf_state_base& operator=(const cf_state_base&) = delete;
  virtual ~cf_state_base() = default;

  int load_status() const noexcept { return status_.load(std::memory_order_acquire); }
  bool is_done() const noexcept { return load_status() >= finished; }

  /// Blocks until done. @c what names the call, for the error thrown when
  /// the calling thread runs the loop that must complete this future.
  void wait(const char* what);

  /// Blocks until done or @c deadline; returns false on timeout.
  bool wait_until(const char* what, std::chrono::steady_clock::time_point deadline);

  /// Waits as wait()/wait_until() (no deadline if @c timeout is null), then
  /// throws timeout_error or, if cancelled, cancelled_error.
  void wait_for_result(const char* what, const std::chrono::steady_clock::duration* timeout);

  /// Cancels a pending future; true if it is (or already was) cancelled.
  bool cancel(std::string message);

  /// concurrent.futures' set_running_or_notify_cancel().
  bool set_running_or_notify_cancel();

  /// Completes with @c e; false if already done.
  bool try_set_exception(std::exception_ptr e);

  /// The exception stored, or null; rethrows cancelled_error if cancelled.
  /// Only once done.
  std::exception_ptr failure() const;

  /// Runs @c cb now if done (on this thread), else keeps it for completion.
  void add_callback(std::unique_ptr<cf_callback> cb);

  /// Writes the repr's state part ("pending", "cancelled", "finished ...").
  void print_state(std::ostream& os, void (*print_value)(std::ostream&, const cf_state_base&)) const;

  /// Sets the waiter that blocking waits call first (see cf_waiter); only
  /// before the future is shared with another thread. A weak reference: the
  /// waiter (an executor) need not outlive its futures.
  void set_waiter(std::weak_ptr<cf_waiter> w) noexcept { waiter_ = std::move(w); }

  /// Called (once, outside the lock) when cancel() succeeds: a
  /// run_coroutine_threadsafe future cancels its task here.
  virtual void on_cancel() noexcept {}

  /// The loop whose work completes this future, if one does: result() from
  /// that loop's own thread would wait forever, and throws instead.
  const event_loop* home_ = nullptr;

protected:
  /// Sets the status (the value, if any, is already stored under the lock),
  /// wakes the waiters, unlocks, and runs the callbacks.
  void finish(std::unique_lock<std::mutex> lk, status s) noexcept;

  std::mutex mutex_;

private:
  void check_not_home(const char* what) const;
  void call_waiter(std::chrono::steady_clock::time_point deadline) noexcept;

  std::atomic<int> status_{pending};
  std::condition_variable cv_;
  int waiters_ = 0;
  std::exception_ptr error_;
  std::string cancel_message_;
  std::vector<std::unique_ptr<cf_callback>> callbacks_;
  std::weak_ptr<cf_waiter> waiter_; // set before sharing, then only read

  template <typename T>
  friend class cf_state;
};

/// What result() returns: `const T&`, or `void`.
template <typename T>
struct cf_ref
{
  using type = const T&;
};

template <>
struct cf_ref<void>
{
  using type = void;
};

/// Fails @c st with loop_closed_error.
void fail_closed(cf_state_base& st) noexcept;

template <typename T>
struct cf_value
{
  std::optional<T> value_;
};

template <>
struct cf_value<void>
{
};

template <typename T>
class cf_state : public cf_state_base, public cf_value<T>
{
public:
  template <typename... U>
  bool try_set_value(U&&... v)
  {
    std::unique_lock lk(mutex_);
    if (status_.load(std::memory_order_relaxed) >= finished)
      return false;
    if constexpr (!std::is_void_v<T>)
      this->value_.emplace(std::forward<U>(v)...);
    finish(std::move(lk), finished);
    return true;
  }

  std::shared_ptr<cf_state> share()
  {
    return std::static_pointer_cast<cf_state>(shared_from_this());
  }
};

template <typename T, typename F, typename... Args>
class cf_bound_callback final : public cf_callback
{
public:
  template <typename F2, typename... A>
  explicit cf_bound_callback(F2&& f, A&&... a)
    : f_(std::forward<F2>(f)), args_(std::forward<A>(a)...)
  {
  }

  void run(cf_state_base& st) override
  {
    concurrent_future<T> fut(static_cast<cf_state<T>&>(st).share());
    std::apply(
        [&](Args&... a) { std::invoke(std::move(f_), fut, std::move(a)...); },
        args_);
  }

  const std::type_info& type() const noexcept override { return typeid(F); }

private:
  F f_;
  std::tuple<Args...> args_;
};

/// Keeps a loop-affine object (a future's state) alive from another thread,
/// and makes sure that its last reference is dropped on the loop's thread:
/// destroyed elsewhere, it ships the reference to the loop.
template <typename S>
class loop_owned
{
public:
  loop_owned(std::shared_ptr<S> s, std::weak_ptr<loop_core> core) noexcept
    : s_(std::move(s)), core_(std::move(core))
  {
  }
  loop_owned(loop_owned&&) noexcept = default;
  loop_owned& operator=(loop_owned&&) = delete;
  ~loop_owned() { release(); }

  std::shared_ptr<S> take() noexcept { return std::move(s_); }
  const std::weak_ptr<loop_core>& core() const noexcept { return core_; }

private:
  void release() noexcept
  {
    if (!s_)
      return;
    auto c = core_.lock();
    if (!c || running_core == c.get())
      return; // the loop is gone (all its resources were dropped) or here
    try
    {
      c->post(1, [s = std::move(s_)] {});
    }
    catch (...)
    {
      // Out of memory: dropping it here is the lesser evil.
    }
  }

  std::shared_ptr<S> s_;
  std::weak_ptr<loop_core> core_;
};

/// The loop side of `co_await cf` inside loop work: delivers the
/// concurrent_future's outcome into a loop future, through the loop's
/// thread-safe queue, as asyncio's wrap_future does.
template <typename T>
class cf_deliver final : public cf_callback
{
public:
  cf_deliver(std::shared_ptr<future_state<T>> fut, std::weak_ptr<loop_core> core)
    : fut_(std::move(fut), std::move(core))
  {
  }

  void run(cf_state_base& base) override
  {
    auto core = fut_.core().lock();
    if (!core)
      return;
    auto& st = static_cast<cf_state<T>&>(base);
    std::exception_ptr e;
    bool was_cancelled = false;
    try
    {
      e = st.failure();
    }
    catch (...)
    {
      e = std::current_exception();
      was_cancelled = true;
    }
    // The value is copied: other handles of the concurrent_future may read
    // it too.
    std::optional<std::conditional_t<std::is_void_v<T>, bool, T>> v;
    if (!e)
    {
      if constexpr (std::is_void_v<T>)
        v.emplace(true);
      else
        v.emplace(*st.value_);
    }
    core->post(1,
        [f = fut_.take(), e = std::move(e), v = std::move(v), was_cancelled]() mutable {
          future<T> fut(std::move(f));
          if (fut.done())
            return; // the awaiting task was cancelled meanwhile
          if (was_cancelled)
          {
            try
            {
              std::rethrow_exception(e);
            }
            catch (const std::exception& c)
            {
              fut.cancel_now(std::string_view(c.what()) == "cancelled" ? "" : c.what());
            }
          }
          else if (e)
            fut.set_exception(std::move(e));
          else if constexpr (std::is_void_v<T>)
            fut.set_result();
          else
            fut.set_result(std::move(*v));
        });
  }

  const std::type_info& type() const noexcept override { return typeid(cf_deliver); }

private:
  loop_owned<future_state<T>> fut_;
};

/// Done callback of the loop future that stands for an awaited
/// concurrent_future: its cancellation (the awaiting task was cancelled)
/// cancels the concurrent_future. While the wait lasts it also counts as
/// outstanding work of an owned loop, so a virtual clock does not jump
/// ahead of a result that another thread is about to deliver.
template <typename T>
struct cf_cancel_back
{
  std::weak_ptr<cf_state<T>> cf;
  std::optional<boost::asio::executor_work_guard<
      boost::asio::io_context::executor_type>> work;

  void operator()(const future<T>& f)
  {
    if (f.cancelled())
      if (auto st = cf.lock())
        st->cancel({});
  }
};

/// Completes a handler that awaits a concurrent_future outside loop work
/// (a plain io_context's coroutine, a callback, use_future): on the
/// handler's executor, never inline on the completing thread unless that
/// executor allows it.
template <typename T, typename Handler>
class cf_dispatch final : public cf_callback
{
public:
  explicit cf_dispatch(Handler h)
    : work_(boost::asio::prefer(boost::asio::get_associated_executor(h),
          boost::asio::execution::outstanding_work.tracked)),
      handler_(std::move(h))
  {
  }

  void run(cf_state_base& base) override
  {
    auto& st = static_cast<cf_state<T>&>(base);
    std::exception_ptr e;
    try
    {
      e = st.failure();
    }
    catch (...)
    {
      e = std::current_exception();
    }
    auto work = std::move(work_);
    auto complete = [h = std::move(handler_), e, v = value_of(st, e)]() mutable {
      boost::asio::get_associated_cancellation_slot(h).clear();
      if constexpr (std::is_void_v<T>)
        std::move(h)(e);
      else
        std::move(h)(e, std::move(v));
    };
    boost::asio::dispatch(work, std::move(complete));
  }

  const std::type_info& type() const noexcept override { return typeid(Handler); }

private:
  static auto value_of(cf_state<T>& st, const std::exception_ptr& e)
  {
    if constexpr (std::is_void_v<T>)
      return 0;
    else
      return e ? T{} : T(*st.value_);
  }

  using work_type = std::decay_t<decltype(boost::asio::prefer(
      std::declval<boost::asio::associated_executor_t<Handler>>(),
      boost::asio::execution::outstanding_work.tracked))>;
  work_type work_;
  Handler handler_;
};

/// Installed in an outside waiter's cancellation slot: cancels the future.
template <typename T>
struct cf_canceller
{
  std::weak_ptr<cf_state<T>> cf;
  void operator()(boost::asio::cancellation_type_t type)
  {
    using boost::asio::cancellation_type;
    if ((type & (cancellation_type::terminal | cancellation_type::partial
                    | cancellation_type::total)) == cancellation_type::none)
      return;
    if (auto st = cf.lock())
      st->cancel({});
  }
};

/// A run_coroutine_threadsafe() call: the future, and once the loop has
/// started it, the task (while it is pending) and its loop.
template <typename T>
class rcts_state final : public cf_state<T>
{
public:
  void on_cancel() noexcept override
  {
    std::shared_ptr<loop_core> core;
    {
      std::lock_guard lk(this->mutex_);
      core = core_.lock();
    }
    // Not started yet: the starter sees the cancellation and starts nothing.
    if (!core)
      return;
    try
    {
      core->post(1, [self = this->share()] {
        std::optional<task_ref> t;
        {
          std::lock_guard lk(static_cast<rcts_state&>(*self).mutex_);
          t = static_cast<rcts_state&>(*self).task_;
        }
        if (t)
          t->cancel();
      });
    }
    catch (...)
    {
      // Out of memory: the future is cancelled; the task runs to its end.
    }
  }

  void started(std::weak_ptr<loop_core> core, task_ref t)
  {
    std::lock_guard lk(this->mutex_);
    core_ = std::move(core);
    task_.emplace(std::move(t));
  }

  void ended() noexcept
  {
    std::optional<task_ref> t;
    std::lock_guard lk(this->mutex_);
    t.swap(task_);
  }

  bool loop_closed() noexcept
  {
    std::lock_guard lk(this->mutex_);
    auto c = core_.lock();
    return !c || c->closed();
  }

private:
  std::weak_ptr<loop_core> core_;
  std::optional<task_ref> task_;
};

/// Fails the future of a run_coroutine_threadsafe() call unless it was
/// completed: held by the queued starter, then by the coroutine frame, so
/// that a loop closed first, or a task cancelled before its first step,
/// never leaves a caller blocked in result() for ever.
template <typename T>
class rcts_owner
{
public:
  explicit rcts_owner(std::shared_ptr<rcts_state<T>> st) noexcept : st_(std::move(st)) {}
  rcts_owner(rcts_owner&& o) noexcept
    : st_(std::move(o.st_)), started_(o.started_)
  {
  }
  rcts_owner& operator=(rcts_owner&&) = delete;
  ~rcts_owner()
  {
    if (!st_)
      return;
    st_->ended();
    // A task that ends cancelled (even before its first step) cancels the
    // future from its done callback, which knows the cancel message.
    if (!st_->is_done() && (!started_ || st_->loop_closed()))
      fail_closed(*st_);
  }

  rcts_state<T>& operator*() const noexcept { return *st_; }
  rcts_state<T>* operator->() const noexcept { return st_.get(); }
  void mark_started() noexcept { started_ = true; }
  const std::shared_ptr<rcts_state<T>>& state() const noexcept { return st_; }

private:
  std::shared_ptr<rcts_state<T>> st_;
  bool started_ = false;
};

/// The body of the task that run_coroutine_threadsafe() creates: runs the
/// coroutine and completes the future directly from the task's last step,
/// with no further trip through the loop.
template <typename T>
boost::asio::awaitable<void> rcts_body(boost::asio::awaitable<T> aw, rcts_owner<T> owner)
{
  std::exception_ptr e;
  try
  {
    if constexpr (std::is_void_v<T>)
    {
      co_await std::move(aw);
      owner->try_set_value();
    }
    else
      owner->try_set_value(co_await std::move(aw));
  }
  catch (...)
  {
    e = std::current_exception();
  }
  if (e)
  {
    // The task ends cancelled, and so does the future (rcts_cancelled), as
    // in asyncio.
    if (cancellation_message(e))
      std::rethrow_exception(e);
    // The future carries the exception: the task itself ends quietly, as
    // asyncio's retrieval of it through _chain_future does.
    owner->try_set_exception(std::move(e));
  }
  // The result is handed over: a loop closed before co_spawn's completion
  // (a step later, when the coroutine never suspended) must not report the
  // task as destroyed pending.
  if (running_task && *running_task)
    (*running_task)->returned_ = true;
}

/// Done callback of the task: a cancelled task cancels the future, with the
/// task's cancel message.
template <typename T>
struct rcts_cancelled
{
  std::shared_ptr<rcts_state<T>> st;

  void operator()(const future<void>& f) const
  {
    if (!f.cancelled() || st->is_done())
      return;
    try
    {
      f.result();
    }
    catch (const cancelled_error& e)
    {
      st->cancel(std::string_view(e.what()) == "cancelled" ? "" : e.what());
    }
  }
};

/// Queued by run_coroutine_threadsafe(): creates the task on the loop.
template <typename T>
struct rcts_starter
{
  boost::asio::awaitable<T> aw;
  rcts_owner<T> owner;

  void operator()()
  {
    if (owner->is_done())
      return; // cancelled before the loop got to it: nothing to start
    loop_core* core = running_core;
    std::shared_ptr<rcts_state<T>> st = owner.state();
    owner.mark_started();
    try
    {
      auto t = core->owner()->create_task(rcts_body<T>(std::move(aw), std::move(owner)));
      t.add_done_callback(rcts_cancelled<T>{st});
      st->started(core->weak_from_this(), t);
      // A cancel() that came before started() found no task to cancel.
      if (st->load_status() == cf_state_base::cancelled)
        t.cancel();
    }
    catch (...)
    {
      // create_task failed (out of memory).
      st->try_set_exception(std::current_exception());
    }
  }
};

} // namespace detail

/// The result of work done on another thread: concurrent.futures.Future.
/**
 * A concurrent_future is a cheap, copyable handle to state shared across
 * threads. run_coroutine_threadsafe() returns one; executors will too. Unlike
 * a loop's future<T>, every member may be called from any thread, and
 * result() blocks the calling thread until the result is there.
 *
 * It is also an Asio asynchronous operation with the completion signature
 * `void(std::exception_ptr, T)` (`void(std::exception_ptr)` for `void`):
 * `co_await std::move(cf)` inside a loop's task suspends the task, not the
 * loop, as `await asyncio.wrap_future(cf)` does; cancelling the task cancels
 * the concurrent_future.
 *
 * @par Thread Safety
 * Distinct objects: Safe. Shared objects: Safe.
 *
 * @par asyncio equivalent
 * `concurrent.futures.Future`
 */
template <typename T>
class concurrent_future
{
public:
  using value_type = T;

  /// Constructs a handle that refers to no future; only valid() may be used.
  concurrent_future() noexcept = default;

  /// Creates a new, pending future, for code that completes it itself
  /// (executors, tests) with set_result() or set_exception().
  /**
   * @par asyncio equivalent
   * `concurrent.futures.Future()`
   */
  static concurrent_future create()
  {
    return concurrent_future(std::make_shared<detail::cf_state<T>>());
  }

  /// Returns true if the handle refers to a future.
  bool valid() const noexcept { return st_ != nullptr; }

  /// Returns true once the future has a result or an exception, or is
  /// cancelled. Never blocks.
  bool done() const noexcept { return st_->is_done(); }

  /// Returns true if the future was cancelled.
  bool cancelled() const noexcept
  {
    return st_->load_status() == detail::cf_state_base::cancelled;
  }

  /// Returns true while an executor runs the call (set_running_or_notify_cancel()).
  bool running() const noexcept
  {
    return st_->load_status() == detail::cf_state_base::running;
  }

  /// Waits for the result and returns it, or rethrows the exception.
  /**
   * @throws cancelled_error if the future was cancelled.
   * @throws invalid_state_error if called, before the result is there, from
   * the thread that runs the loop which is to produce it: that wait could
   * never end (asyncio would hang); `co_await std::move(f)` instead.
   *
   * @par asyncio equivalent
   * `future.result()`
   */
  typename detail::cf_ref<T>::type result() const&
  {
    st_->wait_for_result("result", nullptr);
    return stored();
  }

  /// As result(), on a temporary: returns the value by value, so that
  /// `auto v = run_coroutine_threadsafe(c(), loop).result();` is safe.
  /// A copyable value is moved out when this is the last handle, else
  /// copied; a move-only one is always moved out, as std::future::get()
  /// does (other handles then see a moved-from value).
  std::conditional_t<std::is_void_v<T>, void, T> result() &&
  {
    st_->wait_for_result("result", nullptr);
    return take();
  }

  /// Waits at most @c timeout for the result.
  /**
   * @throws timeout_error if the result is not there in time (the future
   * stays pending: wait again, or cancel() it).
   * @throws cancelled_error, invalid_state_error as result().
   *
   * @par asyncio equivalent
   * `future.result(timeout=...)`
   */
  template <typename Rep, typename Period>
  typename detail::cf_ref<T>::type result(
      std::chrono::duration<Rep, Period> timeout) const&
  {
    const auto d = std::chrono::ceil<std::chrono::steady_clock::duration>(timeout);
    st_->wait_for_result("result", &d);
    return stored();
  }

  template <typename Rep, typename Period>
  std::conditional_t<std::is_void_v<T>, void, T> result(
      std::chrono::duration<Rep, Period> timeout) &&
  {
    const auto d = std::chrono::ceil<std::chrono::steady_clock::duration>(timeout);
    st_->wait_for_result("result", &d);
    return take();
  }

  /// Waits for the future; returns its exception, or null for a result.
  /**
   * @throws cancelled_error if the future was cancelled.
   * @throws invalid_state_error as result().
   *
   * @par asyncio equivalent
   * `future.exception()`
   */
  std::exception_ptr exception() const
  {
    st_->wait("exception");
    return st_->failure();
  }

  /// As exception(), waiting at most @c timeout.
  /**
   * @throws timeout_error if the future is not done in time.
   */
  template <typename Rep, typename Period>
  std::exception_ptr exception(std::chrono::duration<Rep, Period> timeout) const
  {
    const auto d = std::chrono::ceil<std::chrono::steady_clock::duration>(timeout);
    if (!st_->wait_until("exception", std::chrono::steady_clock::now() + d))
      throw timeout_error("exception() timed out: the future is not done; "
                          "wait longer, or cancel() it");
    return st_->failure();
  }

  /// Blocks until the future is done (no exception for a failed one).
  void wait() const { st_->wait("wait"); }

  /// Blocks until the future is done or @c timeout passes; returns done().
  template <typename Rep, typename Period>
  bool wait_for(std::chrono::duration<Rep, Period> timeout) const
  {
    return st_->wait_until("wait_for", std::chrono::steady_clock::now()
            + std::chrono::ceil<std::chrono::steady_clock::duration>(timeout));
  }

  /// Cancels the future if it is pending (not running, not done).
  /**
   * Waiters wake with cancelled_error and the done callbacks run, on this
   * thread. A future from run_coroutine_threadsafe() also cancels its task
   * inside the loop (the task sees cancelled_error at its next suspension).
   *
   * @returns true if the future is cancelled, false if it is running or done.
   *
   * @par asyncio equivalent
   * `future.cancel()`
   */
  bool cancel(std::string message = {}) { return st_->cancel(std::move(message)); }

  /// Adds a callback, called as `cb(f, args...)` once the future is done.
  /**
   * As in concurrent.futures, it runs on the thread that completes the
   * future, or at once, on this thread, if the future is done already; in
   * the order added. An exception escaping it is written to stderr and
   * ignored. The arguments are stored by value.
   *
   * @par asyncio equivalent
   * `future.add_done_callback(functools.partial(cb, *args))`
   */
  template <typename F, typename... Args>
  void add_done_callback(F&& cb, Args&&... args)
  {
    static_assert(std::is_invocable_v<std::decay_t<F>, const concurrent_future&,
                      std::decay_t<Args>...>,
        "asioloop: a done callback is called as cb(future, args...)");
    st_->add_callback(std::make_unique<detail::cf_bound_callback<T,
            std::decay_t<F>, std::decay_t<Args>...>>(
        std::forward<F>(cb), std::forward<Args>(args)...));
  }

  /// Sets the result; for code that completes the future (executors, tests).
  /**
   * @throws invalid_state_error if the future is done or cancelled.
   *
   * @par asyncio equivalent
   * `future.set_result(value)`
   */
  template <typename... U>
    requires(std::is_void_v<T> ? sizeof...(U) == 0 : std::is_constructible_v<T, U&&...>)
  void set_result(U&&... value)
  {
    if (!st_->try_set_value(std::forward<U>(value)...))
      throw invalid_state_error("set_result() on a concurrent_future that is "
                                "already done or cancelled");
  }

  /// Sets an exception.
  /**
   * @throws invalid_state_error if the future is done or cancelled.
   * @throws std::invalid_argument if @c e is null.
   */
  void set_exception(std::exception_ptr e)
  {
    if (!e)
      throw std::invalid_argument("set_exception() needs an exception");
    if (!st_->try_set_exception(std::move(e)))
      throw invalid_state_error("set_exception() on a concurrent_future that "
                                "is already done or cancelled");
  }

  /// Marks the future running, unless it was cancelled: an executor calls
  /// this before running the job, and skips the job if it returns false.
  /**
   * @throws invalid_state_error if the future is running or done.
   *
   * @par asyncio equivalent
   * `future.set_running_or_notify_cancel()`
   */
  bool set_running_or_notify_cancel() { return st_->set_running_or_notify_cancel(); }

  /// Waits for the future as an Asio asynchronous operation.
  /**
   * Inside loop work the handler resumes as loop work, through the loop's
   * thread-safe queue; the loop goes on meanwhile, and cancelling the wait
   * (cancelling the awaiting task) cancels the future. Elsewhere the handler
   * is dispatched to its associated executor.
   *
   * @par Completion Signature
   * @code void(std::exception_ptr, T) @endcode
   *
   * @par asyncio equivalent
   * `await asyncio.wrap_future(future)`
   */
  template <boost::asio::completion_token_for<detail::future_signature<T>>
          Token = boost::asio::deferred_t>
  auto operator()(Token&& token = Token{}) const
  {
    return boost::asio::async_initiate<Token, detail::future_signature<T>>(
        initiate_wait{st_}, token);
  }

  friend bool operator==(const concurrent_future& a, const concurrent_future& b) noexcept
  {
    return a.st_ == b.st_;
  }

  /// Prints `<concurrent_future state=pending>`, `state=running`,
  /// `state=cancelled`, `state=finished result='A'` or
  /// `state=finished exception=std::runtime_error('boom')`.
  friend std::ostream& operator<<(std::ostream& os, const concurrent_future& f)
  {
    os << "<concurrent_future state=";
    f.st_->print_state(os, &print_value);
    return os << '>';
  }

  /// Constructs a handle to @c st. (Internal.)
  explicit concurrent_future(std::shared_ptr<detail::cf_state<T>> st) noexcept
    : st_(std::move(st))
  {
  }

private:
  typename detail::cf_ref<T>::type stored() const
  {
    if constexpr (!std::is_void_v<T>)
      return *st_->value_;
  }

  std::conditional_t<std::is_void_v<T>, void, T> take()
  {
    if constexpr (!std::is_void_v<T>)
    {
      // A copyable value is moved out only by the last handle: no one else
      // can read it. A move-only one is handed over, as std::future::get()
      // does: other handles then see a moved-from value.
      if constexpr (std::is_copy_constructible_v<T>)
      {
        if (st_.use_count() != 1)
          return *st_->value_;
      }
      return std::move(*st_->value_);
    }
  }

  static void print_value(std::ostream& os, const detail::cf_state_base& base)
  {
    if constexpr (std::is_void_v<T>)
      os << "None";
    else
    {
      const T& v = *static_cast<const detail::cf_state<T>&>(base).value_;
      if constexpr (std::is_convertible_v<const T&, std::string_view>)
        os << '\'' << std::string_view(v) << '\'';
      else if constexpr (requires { os << v; })
        os << v;
      else
        os << '<' << boost::core::demangle(typeid(T).name()) << '>';
    }
  }

  struct initiate_wait
  {
    std::shared_ptr<detail::cf_state<T>> st;

    template <typename Handler>
    void operator()(Handler&& handler) const
    {
      static_assert(std::is_void_v<T>
              || (std::is_default_constructible_v<T> && std::is_copy_constructible_v<T>),
          "asioloop: awaiting a concurrent_future<T> needs a copyable, "
          "default-constructible T (as co_spawn's)");
      using handler_type = std::decay_t<Handler>;
      auto ex = boost::asio::get_associated_executor(handler);
      detail::loop_core* core = detail::running_core;
      std::shared_ptr<detail::task_link> task;
      if (core && core->owner() && !core->closed() && detail::runs_inline(ex, *core, task))
        return wait_in_loop(*core, handler_type(std::forward<Handler>(handler)));
      auto slot = boost::asio::get_associated_cancellation_slot(handler);
      if (slot.is_connected())
        slot.template emplace<detail::cf_canceller<T>>(detail::cf_canceller<T>{st});
      st->add_callback(std::make_unique<detail::cf_dispatch<T, handler_type>>(
          handler_type(std::forward<Handler>(handler))));
    }

    // asyncio's wrap_future: a loop future stands for the concurrent one,
    // so the waiting coroutine is loop work like any other — resumed through
    // the loop's queue, dropped if the loop closes first.
    template <typename Handler>
    void wait_in_loop(detail::loop_core& core, Handler handler) const
    {
      wrap(st, core)(std::move(handler));
    }

    static std::shared_ptr<detail::future_state<T>> state_of(const future<T>& f)
    {
      struct access : future<T>
      {
        static const std::shared_ptr<detail::future_state<T>>& get(const future<T>& f)
        {
          return (f.*(&access::state_ptr))();
        }
      };
      return access::get(f);
    }
  };

  /// A loop future completed with @c st's outcome, through the loop's
  /// thread-safe queue; cancelling it cancels @c st. While it is pending, an
  /// owned loop counts it as outstanding work (virtual time waits for it).
  static future<T> wrap(const std::shared_ptr<detail::cf_state<T>>& st,
      detail::loop_core& core)
  {
    auto fut = core.owner()->template create_future<T>();
    detail::cf_cancel_back<T> back{st, std::nullopt};
    if (!core.embedded())
      back.work.emplace(boost::asio::make_work_guard(
          static_cast<boost::asio::io_context&>(core.context())));
    fut.add_done_callback(std::move(back));
    std::shared_ptr<detail::future_state<T>> fs = initiate_wait::state_of(fut);
    st->add_callback(std::make_unique<detail::cf_deliver<T>>(
        std::move(fs), core.weak_from_this()));
    return fut;
  }

  template <typename U>
  friend future<U> wrap_future(const concurrent_future<U>& cf, event_loop& loop);

  std::shared_ptr<detail::cf_state<T>> st_;
};

/// Returns a future of @c loop that completes with @c cf's outcome.
/**
 * Cancelling the returned future cancels @c cf. `co_await std::move(cf)`
 * inside loop work does this for you.
 *
 * @throws loop_closed_error if @c loop is closed.
 *
 * @par asyncio equivalent
 * `asyncio.wrap_future(cf, loop=loop)`
 */
template <typename T>
future<T> wrap_future(const concurrent_future<T>& cf, event_loop& loop)
{
  return concurrent_future<T>::wrap(cf.st_, detail::core_of(loop));
}

/// Submits a coroutine to a loop from any thread: asyncio's
/// run_coroutine_threadsafe().
/**
 * The coroutine becomes a task of @c loop, created on the loop's next
 * iteration; the returned concurrent_future completes when it ends, from
 * the task's last step. cancel() on the future cancels the task. If the
 * loop is closed before the task ends, the future fails with
 * loop_closed_error instead of waiting for ever.
 *
 * @param coro The coroutine, not yet started.
 * @param loop A loop that is running, or will run; it must outlive this
 * call (see loop_thread for a safe owner).
 *
 * @throws loop_closed_error if @c loop is closed.
 *
 * @par Thread Safety
 * Any thread, including the loop's own (but do not block there on the
 * result: `co_await` it).
 *
 * @par asyncio equivalent
 * `asyncio.run_coroutine_threadsafe(coro, loop)`
 *
 * @par Example
 * @code
 * asioloop::loop_thread t;
 * auto f = asioloop::run_coroutine_threadsafe(a(), t.loop());
 * std::cout << f.result(2s) << '\n';
 * @endcode
 */
template <typename T>
concurrent_future<T> run_coroutine_threadsafe(
    boost::asio::awaitable<T> coro, event_loop& loop)
{
  auto st = std::make_shared<detail::rcts_state<T>>();
  st->home_ = &loop;
  loop.call_soon_threadsafe(detail::rcts_starter<T>{std::move(coro), detail::rcts_owner<T>(st)});
  return concurrent_future<T>(std::move(st));
}

} // namespace asioloop

#endif // ASIOLOOP_CONCURRENT_FUTURE_HPP
