//
// asioloop/thread_pool.hpp
//
// Distributed under the Boost Software License, Version 1.0.
//

// event_loop.hpp comes first, outside the include guard: it ends by
// including future.hpp and task.hpp, which this header builds on.
#include <asioloop/event_loop.hpp>

#ifndef ASIOLOOP_THREAD_POOL_HPP
#define ASIOLOOP_THREAD_POOL_HPP

#include <asioloop/concurrent_future.hpp>
#include <asioloop/error.hpp>

#include <boost/asio/awaitable.hpp>

#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <stop_token>
#include <tuple>
#include <type_traits>
#include <utility>

namespace asioloop {

namespace detail {

/// A job in a pool's queue.
class pool_job
{
public:
  virtual ~pool_job() = default;

  /// Runs the job on a worker thread; completes its future, never throws.
  virtual void run(std::stop_token pool_stop) noexcept = 0;

  /// The pool shut down with cancel_futures: the job will not run.
  virtual void cancel() noexcept = 0;

  pool_job* next_ = nullptr;
};

/// The queue and the workers of a thread_pool_executor. (lib/thread_pool.cpp)
class thread_pool_core;

/// True if @c F is called with a std::stop_token before its arguments.
template <typename F, typename... Args>
inline constexpr bool takes_stop_token_v =
    std::is_invocable_v<F&, std::stop_token, Args&...>;

template <typename F, typename... Args>
struct job_result
{
  using type = std::invoke_result_t<F&, Args&...>;
};

template <typename F, typename... Args>
  requires takes_stop_token_v<F, Args...>
struct job_result<F, Args...>
{
  using type = std::invoke_result_t<F&, std::stop_token, Args&...>;
};

/// What `fn(args...)` returns, with the optional leading std::stop_token.
template <typename F, typename... Args>
using job_result_t = typename job_result<std::decay_t<F>, std::decay_t<Args>...>::type;

/// Calls @c f with @c args, passing @c stop first if @c f takes it.
template <typename F, typename... Args>
decltype(auto) invoke_job(F& f, std::stop_token stop, Args&... args)
{
  if constexpr (takes_stop_token_v<F, Args...>)
    return std::invoke(f, std::move(stop), args...);
  else
  {
    (void)stop;
    return std::invoke(f, args...);
  }
}

/// A function bound to its arguments and the future it completes.
template <typename R, typename F, typename... Args>
class bound_job final : public pool_job
{
public:
  template <typename F2, typename... A>
  bound_job(concurrent_future<R> cf, F2&& f, A&&... a)
    : cf_(std::move(cf)), f_(std::forward<F2>(f)), args_(std::forward<A>(a)...)
  {
  }

  void run(std::stop_token pool_stop) noexcept override
  {
    try
    {
      if (!cf_.set_running_or_notify_cancel())
        return; // cancelled while queued: the function never runs
    }
    catch (const invalid_state_error&)
    {
      return; // its owner completed the future by hand: nothing to run for
    }
    std::exception_ptr failure;
    try
    {
      if constexpr (std::is_void_v<R>)
      {
        std::apply([&](Args&... a) { invoke_job(f_, pool_stop, a...); }, args_);
        settle([&] { cf_.set_result(); });
      }
      else
      {
        R r = std::apply(
            [&](Args&... a) -> R { return invoke_job(f_, pool_stop, a...); }, args_);
        settle([&] { cf_.set_result(std::move(r)); });
      }
    }
    catch (...)
    {
      failure = std::current_exception();
    }
    if (failure)
      settle([&] { cf_.set_exception(failure); });
  }

  void cancel() noexcept override { cf_.cancel(); }

private:
  /// Completes the future, unless its owner already did (set_result() on
  /// the future it was handed); run() must not throw.
  template <typename Set>
  void settle(Set set) noexcept
  {
    try
    {
      set();
    }
    catch (const invalid_state_error&)
    {
    }
    catch (...)
    {
      try
      {
        cf_.set_exception(std::current_exception()); // moving the result threw
      }
      catch (...)
      {
      }
    }
  }

  concurrent_future<R> cf_;
  F f_;
  std::tuple<Args...> args_;
};

} // namespace detail

/// A pool of threads that run functions: Python's ThreadPoolExecutor.
/**
 * Threads are started as jobs arrive, up to @c max_workers, and wait for
 * more when idle. A burst of short jobs stays on the threads already
 * running jobs while they keep up; a job that waits 200 µs behind busy
 * threads gets another thread, so jobs may wait for each other, up to
 * @c max_workers of them. A job's exception is carried to its future,
 * never to std::terminate. A function whose first parameter is a
 * `std::stop_token` receives one, which shutdown(…, cancel_futures = true)
 * triggers.
 *
 * @par Thread Safety
 * Every member function may be called from any thread.
 *
 * @par asyncio equivalent
 * `concurrent.futures.ThreadPoolExecutor(max_workers)`
 */
class thread_pool_executor
{
public:
  /// Constructs a pool of at most @c max_workers threads.
  /**
   * @throws std::invalid_argument if @c max_workers is 0.
   */
  explicit thread_pool_executor(std::size_t max_workers = default_max_workers());

  /// Shuts down (waiting for the queued jobs) and joins the threads.
  ~thread_pool_executor();

  thread_pool_executor(const thread_pool_executor&) = delete;
  thread_pool_executor& operator=(const thread_pool_executor&) = delete;

  /// `min(32, cores + 4)`, as Python's default.
  static std::size_t default_max_workers() noexcept;

  /// Returns the maximum number of threads.
  std::size_t max_workers() const noexcept;

  /// Queues `fn(args...)` and returns the future of its result.
  /**
   * @c fn and @c args are copied (or moved) into the job.
   *
   * @throws broken_executor_error after shutdown().
   *
   * @par asyncio equivalent
   * `executor.submit(fn, *args)`
   */
  template <typename F, typename... Args>
  concurrent_future<detail::job_result_t<F, Args...>> submit(F&& fn, Args&&... args)
  {
    using R = detail::job_result_t<F, Args...>;
    auto cf = concurrent_future<R>::create();
    push(std::make_unique<detail::bound_job<R, std::decay_t<F>, std::decay_t<Args>...>>(
        cf, std::forward<F>(fn), std::forward<Args>(args)...));
    return cf;
  }

  /// Stops taking jobs.
  /**
   * @param wait Wait for the queued and running jobs to end and join the
   * threads; otherwise return at once (the destructor joins).
   * @param cancel_futures Cancel the futures of the jobs not yet started
   * (they never run), and request a stop from the running jobs that take a
   * `std::stop_token`.
   *
   * @par asyncio equivalent
   * `executor.shutdown(wait=True, cancel_futures=False)`
   */
  void shutdown(bool wait = true, bool cancel_futures = false);

private:
  void push(std::unique_ptr<detail::pool_job> job);

  std::shared_ptr<detail::thread_pool_core> core_;
};

namespace detail {

/// The job run_in_executor submits for a function that takes a
/// std::stop_token: its token is stopped by the pool's (shutdown) and by
/// the loop future's cancellation.
template <typename F>
struct stoppable_job
{
  std::shared_ptr<std::stop_source> stop;
  F fn;

  template <typename... A>
  decltype(auto) operator()(std::stop_token pool_stop, A&... args)
  {
    std::stop_callback link(pool_stop, [s = stop] { s->request_stop(); });
    return std::invoke(fn, stop->get_token(), args...);
  }
};

} // namespace detail

template <typename Executor, typename F, typename... Args>
auto event_loop::run_in_executor(Executor& executor, F&& fn, Args&&... args)
{
  if (is_closed())
    throw loop_closed_error("run_in_executor");
  if constexpr (detail::takes_stop_token_v<std::decay_t<F>, std::decay_t<Args>...>)
  {
    auto stop = std::make_shared<std::stop_source>();
    auto cf = executor.submit(
        detail::stoppable_job<std::decay_t<F>>{stop, std::forward<F>(fn)},
        std::forward<Args>(args)...);
    auto fut = wrap_future(cf, *this);
    using R = typename decltype(fut)::value_type;
    fut.add_done_callback([stop](const future<R>& f) {
      if (f.cancelled())
        stop->request_stop();
    });
    return fut;
  }
  else
    return wrap_future(
        executor.submit(std::forward<F>(fn), std::forward<Args>(args)...), *this);
}

template <typename F, typename... Args>
auto event_loop::run_in_executor(std::nullptr_t, F&& fn, Args&&... args)
{
  return run_in_executor(
      default_executor(), std::forward<F>(fn), std::forward<Args>(args)...);
}

/// Runs `fn(args...)` on the running loop's default executor.
/**
 * @throws no_running_loop_error outside loop work.
 *
 * @par Example
 * @code
 * std::string page = co_await asioloop::to_thread(fetch_blocking, url);
 * @endcode
 *
 * @par asyncio equivalent
 * `await asyncio.to_thread(fn, *args)`
 */
template <typename F, typename... Args>
auto to_thread(F&& fn, Args&&... args)
{
  return get_running_loop().run_in_executor(
      nullptr, std::forward<F>(fn), std::forward<Args>(args)...);
}

} // namespace asioloop

#endif // ASIOLOOP_THREAD_POOL_HPP
