//
// asioloop/event_loop.hpp
//
// Distributed under the Boost Software License, Version 1.0.
//

#ifndef ASIOLOOP_EVENT_LOOP_HPP
#define ASIOLOOP_EVENT_LOOP_HPP

#include <asioloop/clock.hpp>
#include <asioloop/detail/callback.hpp>
#include <asioloop/detail/loop_core.hpp>
#include <asioloop/error.hpp>
#include <asioloop/handle.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/execution/blocking.hpp>
#include <boost/asio/execution/context.hpp>
#include <boost/asio/execution_context.hpp>

#include <chrono>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>

namespace asioloop {

class event_loop;
class thread_pool_executor;

namespace detail {

/// The core of @c loop: for asioloop's own operations that make futures of
/// their own kind (gather's, for one).
loop_core& core_of(event_loop& loop) noexcept;

} // namespace detail

template <typename T>
class future;

template <typename T>
class task;

/// What the exception handler is told about an error in loop work.
/**
 * @par asyncio equivalent
 * The `context` dict passed to `loop.call_exception_handler()`.
 */
struct error_context
{
  /// What went wrong, for a person to read.
  std::string message;

  /// The exception that escaped, or null.
  std::exception_ptr exception;
};

/// The executor of an event_loop: work submitted through it is loop work.
/**
 * Handlers run in the loop's one FIFO of ready callbacks, after everything
 * that was ready before them, never inline (the executor is
 * `blocking.never`) and never concurrently with other loop work. Coroutines
 * spawned on it, and I/O objects created on it, complete as loop work, so
 * get_running_loop() works inside them.
 *
 * Work submitted after the loop was closed is discarded: Asio submits
 * handlers from places where an exception could not be reported.
 *
 * @par Thread Safety
 * Distinct objects: Safe. Shared objects: Safe.
 */
class loop_executor
{
public:
  explicit loop_executor(detail::loop_core& core) noexcept : core_(&core) {}

  /// Queues @c f as loop work.
  template <typename F>
  void execute(F&& f) const
  {
    if (core_->closed())
      return;
    core_->post(1, std::forward<F>(f));
  }

  /// The Asio execution context whose reactor serves this loop.
  boost::asio::execution_context& query(
      boost::asio::execution::context_t) const noexcept
  {
    return core_->context();
  }

  static constexpr boost::asio::execution::blocking_t query(
      boost::asio::execution::blocking_t) noexcept
  {
    return boost::asio::execution::blocking.never;
  }

  loop_executor require(
      boost::asio::execution::blocking_t::never_t) const noexcept
  {
    return *this;
  }

  /// The loop this executor submits to.
  event_loop& loop() const noexcept { return *core_->owner(); }

  friend bool operator==(const loop_executor& a, const loop_executor& b) noexcept
  {
    return a.core_ == b.core_;
  }

  friend bool operator!=(const loop_executor& a, const loop_executor& b) noexcept
  {
    return a.core_ != b.core_;
  }

private:
  detail::loop_core* core_;
};


/// An asyncio event loop on Boost.Asio.
/**
 * An event_loop keeps one FIFO queue of ready callbacks and runs it in
 * batches: each iteration runs the callbacks that were ready when it began.
 * `call_soon`, `call_soon_threadsafe`, handlers posted to get_executor() and
 * coroutine wake-ups all go through that queue.
 *
 * It works in one of two modes:
 *
 * @li Owned (`event_loop loop;`): the loop has its own single-threaded
 * `io_context`, run by the thread that calls run_forever() or
 * run_until_complete().
 *
 * @li Embedded (`event_loop loop{ioc.get_executor()};`): the loop runs on a
 * host executor; the host runs its `io_context` on any number of threads.
 * Loop work still forms one FIFO and never runs concurrently. The loop counts
 * as running from construction to close(); run_forever(),
 * run_until_complete() and stop() throw.
 *
 * @par Thread Safety
 * Distinct objects: Safe. Shared objects: Unsafe, except for
 * call_soon_threadsafe() and get_executor(), which any thread may call.
 * Everything else is for loop work, or for the thread that owns an owned loop
 * while it is not running.
 *
 * @par asyncio equivalent
 * `asyncio.AbstractEventLoop`
 */
class event_loop
{
public:
  using executor_type = loop_executor;

  /// Receives errors reported by loop work.
  using exception_handler =
      std::function<void(event_loop&, const error_context&)>;

  /// Creates an owned loop, with an `io_context` of its own.
  /**
   * @par asyncio equivalent
   * `asyncio.new_event_loop()`
   */
  event_loop();

  /// Creates a loop embedded in a host executor.
  /**
   * @param host The executor the loop's work is posted to, for example
   * `ioc.get_executor()` or a strand. The loop must be destroyed before the
   * host's execution context. Tasks still waiting in operations of the
   * host then are destroyed with the host's context (docs/design.md, "What
   * runs where").
   */
  explicit event_loop(const boost::asio::any_io_executor& host);

  /// Creates an owned loop on virtual time.
  /**
   * The loop's clock starts at the real time of construction and then moves
   * only when the loop is idle — nothing ready, no Asio operation pending on
   * its `io_context` — by jumping to the next due timer, or by advance().
   * call_later(), call_at() and sleep() follow it; Asio's own timers do not.
   * A test of `call_later(10s, ...)` runs at once and deterministically.
   */
  explicit event_loop(virtual_clock_t);

  /// Closes the loop; queued callbacks are destroyed without running.
  ~event_loop();

  event_loop(const event_loop&) = delete;
  event_loop& operator=(const event_loop&) = delete;

  /// Creates a future that belongs to this loop. (Defined in future.hpp.)
  template <typename T = void>
  future<T> create_future();

  /// Schedules a coroutine as a task. (Defined in task.hpp.)
  template <typename T>
  task<T> create_task(boost::asio::awaitable<T> coro, std::string name = {});

  /// Runs the loop until a future or task is done. (Defined in task.hpp.)
  template <typename T>
  T run_until_complete(future<T> f);

  /// Returns the loop's Asio executor.
  executor_type get_executor() noexcept { return executor_type{*core_}; }

  /// Schedules `cb(args...)` to run on the next iteration of the loop.
  /**
   * Callbacks run in the order they were scheduled, never inline. The
   * arguments are stored by value and passed as rvalues.
   *
   * @returns A handle that can cancel the call.
   *
   * @throws loop_closed_error if the loop is closed.
   *
   * @par Thread Safety
   * For loop work. From other threads use call_soon_threadsafe().
   *
   * @par asyncio equivalent
   * `loop.call_soon(cb, *args)`
   *
   * @par Example
   * @code
   * loop.call_soon([](int n) { std::cout << n << '\n'; }, 42);
   * @endcode
   */
  template <typename F, typename... Args>
  handle call_soon(F&& cb, Args&&... args)
  {
    check_affinity("call_soon", typeid(std::decay_t<F>));
    return schedule("call_soon", std::forward<F>(cb), std::forward<Args>(args)...);
  }

  /// Like call_soon(), from any thread; wakes the loop if it is waiting.
  /**
   * Callbacks from one thread keep their order.
   *
   * @throws loop_closed_error if the loop is closed.
   *
   * @par Thread Safety
   * Safe from any thread, while the loop object exists.
   *
   * @par asyncio equivalent
   * `loop.call_soon_threadsafe(cb, *args)`
   */
  template <typename F, typename... Args>
  handle call_soon_threadsafe(F&& cb, Args&&... args)
  {
    return schedule("call_soon_threadsafe", std::forward<F>(cb),
        std::forward<Args>(args)...);
  }

  /// Returns the current time on the loop's clock.
  /**
   * Reads `steady_clock` at each call, or, on a virtual-time loop, returns
   * the loop's virtual now.
   *
   * @par asyncio equivalent
   * `loop.time()`
   */
  clock::time_point time() const noexcept { return core_->now(); }

  /// Moves a virtual-time loop's clock forward by @c d.
  /**
   * Timers that become due run on the loop's next iteration.
   *
   * @throws std::logic_error if the loop is not on virtual time.
   */
  void advance(clock::duration d);

  /// Returns true if the loop runs on virtual time.
  bool is_virtual_time() const noexcept { return core_->is_virtual(); }

  /// Schedules `cb(args...)` to run @c delay from now.
  /**
   * The callback is due at `time() + delay`, never runs before, and runs in
   * the first iteration after that. A negative delay is due in the past and
   * runs on the next iteration, before later due times. Callbacks due at the
   * same time run in the order they were scheduled.
   *
   * @param delay Any `std::chrono::duration`.
   *
   * @returns A handle that can cancel the call and tells when it is due.
   *
   * @throws loop_closed_error if the loop is closed.
   *
   * @par Thread Safety
   * For loop work. (From another thread it is safe, but debug mode reports
   * it, as asyncio would refuse it.)
   *
   * @par asyncio equivalent
   * `loop.call_later(delay, cb, *args)`
   *
   * @par Example
   * @code
   * loop.call_later(2s, [](const char* s) { std::cout << s << '\n'; }, "Hello");
   * @endcode
   */
  template <typename Rep, typename Period, typename F, typename... Args>
  timer_handle call_later(std::chrono::duration<Rep, Period> delay, F&& cb,
      Args&&... args)
  {
    check_affinity("call_later", typeid(std::decay_t<F>));
    return schedule_at("call_later",
        time() + std::chrono::duration_cast<clock::duration>(delay),
        std::forward<F>(cb), std::forward<Args>(args)...);
  }

  /// Schedules `cb(args...)` to run at @c when, on the loop's clock.
  /**
   * As call_later(), with `h.when() == when` exactly.
   *
   * @par asyncio equivalent
   * `loop.call_at(when, cb, *args)`
   */
  template <typename F, typename... Args>
  timer_handle call_at(clock::time_point when, F&& cb, Args&&... args)
  {
    check_affinity("call_at", typeid(std::decay_t<F>));
    return schedule_at("call_at", when, std::forward<F>(cb),
        std::forward<Args>(args)...);
  }

  /// Turns debug mode on or off.
  /**
   * In debug mode the loop reports, through the exception handler, each
   * callback that runs longer than #slow_callback_duration (naming its
   * type), and each loop-affine call (call_soon, call_later, call_at) made
   * from outside loop work while the loop runs. Off, it costs a branch.
   *
   * @par asyncio equivalent
   * `loop.set_debug(enabled)`
   */
  void set_debug(bool enabled) noexcept { core_->debug_ = enabled; }

  /// Returns true in debug mode.
  bool get_debug() const noexcept { return core_->debug_; }

  /// In debug mode, callbacks that run longer than this are reported.
  /**
   * @par asyncio equivalent
   * `loop.slow_callback_duration`
   */
  clock::duration slow_callback_duration = std::chrono::milliseconds(100);

  /// Runs the loop until stop() is called. Owned mode only.
  /**
   * @throws std::runtime_error if the loop is embedded, already running, or
   * if the calling thread is running another loop.
   * @throws loop_closed_error if the loop is closed.
   *
   * @par asyncio equivalent
   * `loop.run_forever()`
   */
  void run_forever();

  /// Runs the loop until @c aw completes, and returns its result.
  /**
   * The coroutine is wrapped in a task (create_task()); it starts on the
   * loop's next iteration. Its exception is rethrown here. (Defined in
   * task.hpp, which this header includes.)
   *
   * @throws std::runtime_error "Event loop stopped before Future completed."
   * if stop() ends the run first; the coroutine stays queued and goes on
   * with the next run. Also the errors of run_forever().
   *
   * @par asyncio equivalent
   * `loop.run_until_complete(coro)`
   */
  template <typename T>
  T run_until_complete(boost::asio::awaitable<T> aw);

  /// Stops a running owned loop once the current batch of callbacks is done.
  /**
   * Callbacks they schedule run on the next run. Called while the loop is not
   * running, the next run performs one iteration and stops.
   *
   * @throws std::runtime_error if the loop is embedded.
   *
   * @par Thread Safety
   * For loop work. From other threads:
   * `loop.call_soon_threadsafe([&] { loop.stop(); })`.
   *
   * @par asyncio equivalent
   * `loop.stop()`
   */
  void stop();

  /// Returns true while an owned loop runs, and for an embedded loop until
  /// it is closed.
  bool is_running() const noexcept;

  /// Closes the loop: queued callbacks are destroyed without running, and
  /// further scheduling throws loop_closed_error. A second close does nothing.
  /**
   * An embedded loop may be closed at any time from its own loop work, or
   * from any thread while the host is not running loop work; the rest of
   * the current batch is then dropped.
   *
   * @throws std::runtime_error if an owned loop is running.
   *
   * @par asyncio equivalent
   * `loop.close()`
   */
  void close();

  /// Runs `fn(args...)` on @c executor and returns a future of this loop
  /// for its result.
  /**
   * @c executor is a thread_pool_executor, a process_pool_executor, or any
   * type whose `submit(fn, args...)` returns a concurrent_future. Cancelling
   * the returned future takes a job that has not started off the queue (it
   * never runs); a running job whose function takes a `std::stop_token` as
   * its first parameter gets a stop request. While the job is pending, a
   * virtual-time loop waits for it rather than jumping its clock.
   *
   * Defined in `<asioloop/thread_pool.hpp>`.
   *
   * @par asyncio equivalent
   * `loop.run_in_executor(executor, fn, *args)`
   */
  template <typename Executor, typename F, typename... Args>
  auto run_in_executor(Executor& executor, F&& fn, Args&&... args);

  /// Runs `fn(args...)` on the default executor: a thread_pool_executor
  /// created on first use, or the one given to set_default_executor().
  /**
   * @throws loop_closed_error if the loop is closed.
   *
   * @par asyncio equivalent
   * `loop.run_in_executor(None, fn, *args)`
   */
  template <typename F, typename... Args>
  auto run_in_executor(std::nullptr_t, F&& fn, Args&&... args);

  /// Makes @c executor the default executor of run_in_executor(nullptr, …).
  /**
   * @par asyncio equivalent
   * `loop.set_default_executor(executor)`
   */
  void set_default_executor(std::shared_ptr<thread_pool_executor> executor);

  /// Returns the default executor, creating it on first use.
  /**
   * @throws loop_closed_error if the loop is closed and has none.
   */
  thread_pool_executor& default_executor();

  /// Shuts the default executor down, if there is one, waiting for its
  /// jobs: asioloop::run() does this before closing the loop.
  /**
   * @par asyncio equivalent
   * `await loop.shutdown_default_executor()` (this one blocks)
   */
  void shutdown_default_executor();

  /// Returns true once close() has been called.
  bool is_closed() const noexcept { return core_->closed(); }

  /// Returns true if the loop runs on a host executor.
  bool is_embedded() const noexcept { return core_->embedded(); }

  /// Replaces the exception handler; an empty function restores the default.
  void set_exception_handler(exception_handler h);

  /// Reports an error through the exception handler.
  /**
   * An exception thrown by the handler itself is reported through
   * default_exception_handler(), never propagated.
   */
  void call_exception_handler(const error_context& ctx) noexcept;

  /// Writes the message and the exception, if any, to standard error.
  void default_exception_handler(const error_context& ctx) noexcept;

  /// Runs `cb(args...)` as loop work each time signal @c sig arrives.
  /**
   * Replaces a previous handler of the same signal. The arguments are copied
   * for each call. Uses `boost::asio::signal_set`.
   *
   * @throws boost::system::system_error if the signal cannot be handled.
   * @throws loop_closed_error if the loop is closed.
   *
   * @par asyncio equivalent
   * `loop.add_signal_handler(sig, cb, *args)`
   */
  template <typename F, typename... Args>
  void add_signal_handler(int sig, F&& cb, Args&&... args)
  {
    add_signal_handler_impl(sig,
        [cb = std::forward<F>(cb), ... args = std::forward<Args>(args)]() mutable
        { std::invoke(cb, args...); });
  }

  /// Removes the handler of signal @c sig; returns true if there was one.
  bool remove_signal_handler(int sig);

private:
  template <typename F, typename... Args>
  handle schedule(const char* what, F&& cb, Args&&... args)
  {
    if (core_->closed())
      throw loop_closed_error(what);
    return handle{
        core_->post(2, std::forward<F>(cb), std::forward<Args>(args)...)};
  }

  template <typename F, typename... Args>
  timer_handle schedule_at(
      const char* what, clock::time_point when, F&& cb, Args&&... args)
  {
    if (core_->closed())
      throw loop_closed_error(what);
    auto* n = core_->make_node(2, std::forward<F>(cb), std::forward<Args>(args)...);
    core_->add_timer(when, n);
    return timer_handle{n, when};
  }

  void check_affinity(const char* what, const std::type_info& cb) noexcept
  {
    if (core_->debug_ && detail::running_core != core_.get() && is_running())
      core_->report_foreign_call(what, cb);
  }

  void check_can_run(const char* what) const;
  void run_virtual();
  void add_signal_handler_impl(int sig, std::function<void()> fn);

  friend detail::loop_core& detail::core_of(event_loop& loop) noexcept;

  struct signals;

  std::unique_ptr<boost::asio::io_context> ctx_;
  std::shared_ptr<detail::loop_core> core_;
  exception_handler exception_handler_;
  std::unique_ptr<signals> signals_;
  std::shared_ptr<thread_pool_executor> default_executor_;
  bool running_ = false;
};

/// Returns the loop whose work the calling thread is running.
/**
 * Works inside callbacks, inside handlers and coroutines running on the
 * loop's executor, and in owned mode inside anything that runs on the loop's
 * `io_context` while the loop runs.
 *
 * @throws no_running_loop_error outside loop work.
 *
 * @par asyncio equivalent
 * `asyncio.get_running_loop()`
 */
event_loop& get_running_loop();

inline detail::loop_core& detail::core_of(event_loop& loop) noexcept
{
  return *loop.core_;
}

} // namespace asioloop

// create_future(), create_task() and run_until_complete() are defined with
// future<T> and task<T>.
#include <asioloop/future.hpp>
#include <asioloop/task.hpp>

#endif // ASIOLOOP_EVENT_LOOP_HPP
