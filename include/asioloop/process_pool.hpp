//
// asioloop/process_pool.hpp
//
// Distributed under the Boost Software License, Version 1.0.
//

#ifndef ASIOLOOP_PROCESS_POOL_HPP
#define ASIOLOOP_PROCESS_POOL_HPP

#include <asioloop/concurrent_future.hpp>
#include <asioloop/error.hpp>
#include <asioloop/serializer.hpp>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace asioloop {

/// Options of a process_pool_executor.
struct process_pool_options
{
  /// Run once in each worker process before its first job (a free function
  /// or captureless lambda). If it throws, the pool is broken: pending and
  /// later calls fail with broken_executor_error naming its exception.
  void (*initializer)() = nullptr;

  /// A worker exits and is replaced after this many jobs; 0: never.
  std::size_t max_tasks_per_child = 0;

  /// The largest message (a call's arguments, or its result) in bytes. A
  /// larger one fails the call with std::length_error (arguments) or
  /// remote_error (result), and nothing crashes.
  std::size_t max_message_size = std::size_t(256) << 20;
};

namespace detail {

/// One call on its way through a process pool; the pool's implementation
/// (lib/process_pool.cpp) frames, sends and completes it.
class pp_job
{
public:
  explicit pp_job(cf_state_base& st) noexcept : state(&st) {}
  virtual ~pp_job() = default;

  /// set_running_or_notify_cancel(): false if the caller cancelled it.
  virtual bool start() = 0;
  /// Reads the result and completes the future.
  virtual void complete(wire_reader& result) = 0;
  virtual void fail(std::exception_ptr e) noexcept = 0;
  /// cancel() on the future (shutdown with cancel_futures).
  virtual void cancel() noexcept = 0;

  /// The message: a 4-byte length (filled in by the pool), a kind byte, the
  /// call's code references and its arguments.
  std::string request;
  bool started = false;
  /// Its future's state: a waiter on it is a waiter for this job.
  cf_state_base* const state;
};

template <typename R>
class pp_job_of final : public pp_job
{
public:
  pp_job_of() : pp_job_of(std::make_shared<cf_state<R>>()) {}

  concurrent_future<R> future;

  bool start() override { return future.set_running_or_notify_cancel(); }

  void complete(wire_reader& result) override
  {
    if constexpr (std::is_void_v<R>)
      future.set_result();
    else
      future.set_result(result.get<R>());
  }

  void fail(std::exception_ptr e) noexcept override
  {
    try
    {
      future.set_exception(std::move(e));
    }
    catch (...)
    {
      // Already done: nothing left to tell.
    }
  }

  void cancel() noexcept override { future.cancel(); }

private:
  explicit pp_job_of(std::shared_ptr<cf_state<R>> st) : pp_job(*st), future(std::move(st)) {}
};

/// The worker-side entry of a call: reads the arguments from @c in, calls
/// the function at @c fn (null for a lambda type), writes the result.
using pp_trampoline = void (*)(const void* fn, wire_reader& in, wire_writer& out);

/// Writes a reference to the code at @c addr: its module's build-id and its
/// offset in it, which the worker maps back, or refuses.
/**
 * @throws std::invalid_argument if no loaded module contains @c addr.
 */
void pp_write_code(wire_writer& w, const void* addr);

/// Lets the tests send hand-made requests (the wrong-function guard).
struct pp_test_access;

/// The size of the frame header pp_job::request starts with.
inline constexpr std::size_t pp_header_size = 5;

template <typename F>
struct pp_signature
{
};

template <typename R, typename... P>
struct pp_signature<R (*)(P...)>
{
  using result = R;
  using params = std::tuple<P...>;
};
template <typename R, typename... P>
struct pp_signature<R (*)(P...) noexcept> : pp_signature<R (*)(P...)>
{
};
template <typename R, typename C, typename... P>
struct pp_signature<R (C::*)(P...) const> : pp_signature<R (*)(P...)>
{
};
template <typename R, typename C, typename... P>
struct pp_signature<R (C::*)(P...) const noexcept> : pp_signature<R (*)(P...)>
{
};

/// A captureless lambda (or other empty, default-constructible function
/// object type): the worker makes its own from the type alone.
template <typename F>
concept pp_stateless = std::is_class_v<F> && std::is_empty_v<F>
    && std::is_default_constructible_v<F> && std::is_trivially_copyable_v<F>;

template <typename F>
concept pp_function_pointer =
    std::is_pointer_v<F> && std::is_function_v<std::remove_pointer_t<F>>;

/// Declared parameters: known for functions and non-generic lambdas.
template <typename F>
concept pp_has_signature = requires { typename pp_signature<F>::params; }
    || requires { typename pp_signature<decltype(&F::operator())>::params; };

template <typename F>
struct pp_declared : pp_signature<decltype(&F::operator())>
{
};

template <typename F>
  requires pp_function_pointer<F>
struct pp_declared<F> : pp_signature<F>
{
};

/// Calls @c f with the decoded arguments, each forwarded as its declared
/// parameter type (so `T`, `T&`, `const T&` and `T&&` parameters all bind).
template <typename R, typename Params, typename F, std::size_t... I>
void pp_call(F&& f, wire_reader& in, wire_writer& out, std::index_sequence<I...>)
{
  using values = std::tuple<std::remove_cvref_t<std::tuple_element_t<I, Params>>...>;
  values args{in.get<std::tuple_element_t<I, values>>()...};
  if constexpr (std::is_void_v<R>)
    std::invoke(std::forward<F>(f),
        static_cast<std::tuple_element_t<I, Params>&&>(std::get<I>(args))...);
  else
    out.put<std::remove_cvref_t<R>>(std::invoke(std::forward<F>(f),
        static_cast<std::tuple_element_t<I, Params>&&>(std::get<I>(args))...));
}

template <typename F, typename R, typename Params>
void pp_run(const void* fn, wire_reader& in, wire_writer& out)
{
  constexpr auto seq = std::make_index_sequence<std::tuple_size_v<Params>>{};
  if constexpr (pp_function_pointer<F>)
    pp_call<R, Params>(reinterpret_cast<F>(const_cast<void*>(fn)), in, out, seq);
  else
    pp_call<R, Params>(F{}, in, out, seq);
}

/// Writes argument @c a as parameter type P: converted as std::invoke
/// would (implicitly), then serialized.
template <typename P, typename A>
void pp_put_arg(wire_writer& w, A&& a)
{
  using value = std::remove_cvref_t<P>;
  static_assert(check_sendable<value>::value);
  static_assert(std::is_convertible_v<A&&, value>,
      "asioloop: an argument of a process-pool call does not convert to the "
      "function's parameter type");
  if constexpr (std::is_same_v<std::remove_cvref_t<A>, value>)
    w.put<value>(a);
  else
  {
    const value v = std::forward<A>(a);
    w.put<value>(v);
  }
}

template <typename Params, typename... A, std::size_t... I>
void pp_put_args(wire_writer& w, std::index_sequence<I...>, A&&... a)
{
  (pp_put_arg<std::tuple_element_t<I, Params>>(w, std::forward<A>(a)), ...);
}

template <typename F, typename... A>
struct pp_call_traits
{
  static constexpr bool declared = pp_has_signature<F>;
  template <bool D, typename = void>
  struct pick
  {
    // A generic lambda: the arguments travel as their own (decayed) types.
    using params = std::tuple<std::decay_t<A>...>;
    using result = std::invoke_result_t<F, std::decay_t<A>&&...>;
  };
  template <typename V>
  struct pick<true, V>
  {
    using params = typename pp_declared<F>::params;
    using result = typename pp_declared<F>::result;
  };
  using params = typename pick<declared>::params;
  using result = typename pick<declared>::result;
};

} // namespace detail

/// Runs functions in separate worker processes: concurrent.futures'
/// ProcessPoolExecutor.
/**
 * Workers are the running executable itself, started again (posix_spawn of
 * /proc/self/exe), the first by the constructor, the others by a pool
 * thread of its own; the library recognizes a
 * worker start before `main` runs, after the program's static
 * initialization, so programs and test binaries need no code for it. A job
 * is a free function or a captureless lambda and arguments of sendable
 * types (see serializer.hpp); it is identified in the worker by its module's
 * GNU build-id and its offset there, so a worker of another build refuses
 * the call instead of running the wrong code.
 *
 * A job that throws fails its future with remote_error (the exception's
 * type name and message). A worker that dies during a job (a signal, exit())
 * fails that job with broken_executor_error naming the signal or status;
 * the pool starts a replacement and every other job goes on. Jobs may print:
 * messages use a socket of their own, and the workers share the parent's
 * stdout and stderr (stdin is /dev/null). Workers exit when their socket
 * closes and are killed when the program dies, so none outlives it; the
 * pool reaps every worker it started. The constructor starts the first
 * worker (which takes a few milliseconds to come up), the pool's thread
 * the others, as calls need them.
 *
 * Linux only.
 *
 * @par Thread Safety
 * Distinct objects: Safe. Shared objects: Safe. The futures' done callbacks
 * run on the pool's thread, or on a thread blocked in result() or wait():
 * a call written straight to an idle worker is waited for by reading the
 * worker's responses on the waiting thread, which completes what it reads.
 * Keep them short, and do not block in them on another call to the same
 * pool: the reply may be the calling thread's to read. shutdown(true) or
 * the destructor called there does not wait.
 *
 * @par asyncio equivalent
 * `concurrent.futures.ProcessPoolExecutor(max_workers, initializer=...,
 * max_tasks_per_child=...)`
 */
class process_pool_executor
{
public:
  /// Creates a pool of up to @c max_workers processes, and starts the first.
  /**
   * The others start on demand, as calls queue up. The first worker comes up
   * while the program goes on; a failure to start it is reported by the
   * first call (broken_executor_error) if a retry fails too.
   *
   * @param max_workers The most workers at once; 0 means the number of cores.
   * @param options The initializer, max_tasks_per_child, max_message_size.
   *
   * @throws std::invalid_argument if `options.max_message_size` is 0 or
   * above 4 GiB - 64.
   * @throws std::logic_error in a process started as a worker whose worker
   * hook did not run.
   * @throws std::system_error if the pool's epoll descriptor or thread
   * cannot be made.
   */
  explicit process_pool_executor(
      std::size_t max_workers = 0, process_pool_options options = {});

  /// Shuts down, waits for the jobs and reaps the workers: shutdown(true).
  ~process_pool_executor();

  process_pool_executor(const process_pool_executor&) = delete;
  process_pool_executor& operator=(const process_pool_executor&) = delete;

  /// Schedules `fn(args...)` in a worker process.
  /**
   * @param fn A free function (or pointer to one) or a captureless lambda.
   * @param args Converted to the parameter types (as std::invoke would),
   * then serialized: each must be sendable (serializer.hpp).
   *
   * @returns A concurrent_future of the (decayed) result; `co_await` it in
   * a task, or pass the pool to `loop.run_in_executor()`. It fails with
   * remote_error if the job throws, broken_executor_error if its worker
   * dies, std::length_error if the arguments exceed max_message_size.
   *
   * @throws broken_executor_error after shutdown(), or once an initializer
   * failed.
   * @throws std::invalid_argument if @c fn is a null pointer, or code that
   * no loaded ELF module contains (made at run time).
   *
   * @par asyncio equivalent
   * `executor.submit(fn, *args)`
   */
  template <typename F, typename... Args>
  auto submit(F&& fn, Args&&... args)
  {
    using fn_type = std::decay_t<F>;
    static_assert(detail::pp_function_pointer<fn_type> || detail::pp_stateless<fn_type>,
        "asioloop: process_pool_executor runs free functions and captureless "
        "lambdas only: a lambda with captures, a std::function or a bound "
        "object holds state that cannot be sent to another process; pass "
        "that state as arguments instead");
    using traits = detail::pp_call_traits<fn_type, Args...>;
    using params = typename traits::params;
    using raw_result = typename traits::result;
    using result = std::remove_cvref_t<raw_result>;
    static_assert(std::tuple_size_v<params> == sizeof...(Args),
        "asioloop: a process-pool call needs exactly one argument per "
        "parameter (default arguments do not cross processes)");
    static_assert(detail::check_result<result>::value);

    auto job = std::make_unique<detail::pp_job_of<result>>();
    auto fut = job->future;
    job->request.reserve(96);
    job->request.resize(detail::pp_header_size);
    wire_writer w(job->request);
    detail::pp_trampoline tramp = &detail::pp_run<fn_type, raw_result, params>;
    detail::pp_write_code(w, reinterpret_cast<const void*>(tramp));
    if constexpr (detail::pp_function_pointer<fn_type>)
    {
      if (!fn)
        throw std::invalid_argument("asioloop: process_pool_executor::submit() "
                                    "needs a function, not a null pointer");
      detail::pp_write_code(w, reinterpret_cast<const void*>(static_cast<fn_type>(fn)));
    }
    else
      detail::pp_write_code(w, nullptr);
    detail::pp_put_args<params>(
        w, std::make_index_sequence<sizeof...(Args)>{}, std::forward<Args>(args)...);
    enqueue(std::move(job));
    return fut;
  }

  /// Stops accepting jobs; optionally waits for the pending ones.
  /**
   * @param wait If true, blocks until every pending job has finished and
   * every worker has exited and been reaped. If false, returns at once; the
   * jobs go on, and the destructor waits for them.
   * @param cancel_futures If true, cancels the jobs no worker has started.
   *
   * Calling it again is harmless. Calling it with `wait` from a done
   * callback (the pool's own thread) does not wait.
   *
   * @par asyncio equivalent
   * `executor.shutdown(wait=True, cancel_futures=False)`
   */
  void shutdown(bool wait = true, bool cancel_futures = false);

  /// The most workers the pool runs at once.
  std::size_t max_workers() const noexcept;

  /// The process ids of the live workers (for tests and monitoring).
  std::vector<int> worker_pids() const;

  class impl;

private:
  friend struct detail::pp_test_access;

  void enqueue(std::unique_ptr<detail::pp_job> job);

  std::shared_ptr<impl> impl_;
};

} // namespace asioloop

#endif // ASIOLOOP_PROCESS_POOL_HPP
