//
// asioloop/task.hpp
//
// Distributed under the Boost Software License, Version 1.0.
//

// event_loop.hpp comes first, outside the include guard: it ends by
// including future.hpp and task.hpp, which define what its templates use.
#include <asioloop/event_loop.hpp>

#ifndef ASIOLOOP_TASK_HPP
#define ASIOLOOP_TASK_HPP

#include <asioloop/future.hpp>

#include <asioloop/detail/asio_compat.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/cancellation_state.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/error.hpp>
#include <boost/system/system_error.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace asioloop {

template <typename T>
class task;

namespace detail {

/// The number of the next task: Task-1, Task-2, ... across the process.
std::uint64_t next_task_number() noexcept;

/// If @c e is a cancellation — cancelled_error, or Asio's operation_aborted —
/// returns its message (empty for operation_aborted, or for a
/// cancelled_error without one); otherwise nothing.
std::optional<std::string> cancellation_message(const std::exception_ptr& e);

/// What every task shares, whatever its T: the loop lists tasks by it.
class task_base : public task_link
{
public:
  virtual std::shared_ptr<task_base> share() = 0;
  virtual bool is_done() const noexcept = 0;
  virtual bool is_cancelled() const noexcept = 0;
  virtual bool request_cancel(std::string message) = 0;

  /// The name: given, or `Task-N`, made only when first asked for.
  const std::string& name() const
  {
    if (!named_)
    {
      auto made = new std::string("Task-" + std::to_string(number_));
      name_ = made; // the number is not needed any more
      named_ = true;
    }
    return *name_;
  }

  void set_name(std::string name)
  {
    auto made = new std::string(std::move(name));
    if (named_)
      delete name_;
    name_ = made;
    named_ = true;
  }

protected:
  task_base() noexcept : number_(0) {}

  ~task_base()
  {
    if (named_)
      delete name_;
  }

  task_base(const task_base&) = delete;
  task_base& operator=(const task_base&) = delete;

  // The name, out of line, or until someone asks for it only the number:
  // most tasks are never asked their name, and a burst of tasks is a burst
  // of fresh memory.
  mutable bool named_ = false;
  union
  {
    std::uint64_t number_;
    mutable std::string* name_;
  };
};

template <typename T>
class task_state final : public future_state<T>, public task_base
{
public:
  task_state(loop_core& core, std::string name, boost::asio::awaitable<T> body)
    : future_state<T>(core), body_(std::move(body))
  {
    if (name.empty())
      number_ = next_task_number();
    else
      set_name(std::move(name));
    core.add_task(*this);
  }

  ~task_state()
  {
    if (listed())
      this->core_->remove_task(*this);
    // A failed task whose exception nobody looked at: say so, as asyncio.
    // finish() keeps such a task tracked by its loop, and closing the loop
    // untracks it: tracked means the loop is still there. (Like any future
    // with callbacks, its last handle goes on the loop's thread.)
    if (this->tracked() && this->status_ == future_state_base::status::finished
        && this->error_ && !this->exception_retrieved_)
    {
      auto& core = *this->core_;
      core.untrack(*this); // a loop closed by the handler must not drop it
      if (core.owner() && !core.closed())
        core.owner()->call_exception_handler(
            {"Task exception was never retrieved: " + describe(), this->error_});
    }
  }

  std::string describe() const override
  {
    // A handle that does not own the state: describe() also serves the
    // destructor, when no owning reference is left.
    std::shared_ptr<task_state> self(
        std::shared_ptr<void>(), const_cast<task_state*>(this));
    std::ostringstream os;
    os << task<T>(self);
    return os.str();
  }

  void abandon() noexcept override
  {
    // The frame's destructors may let go of the last handle to the task:
    // hold it until the frame is gone.
    const auto keep = this->weak_from_this().lock();
    const auto body = std::move(body_);
  }

  std::shared_ptr<task_base> share() override
  {
    auto self = this->shared_from_this();
    return std::shared_ptr<task_base>(self, static_cast<task_base*>(this));
  }

  bool is_done() const noexcept override
  {
    return this->status_ != future_state_base::status::pending;
  }

  bool is_cancelled() const noexcept override
  {
    return this->status_ == future_state_base::status::cancelled;
  }

  bool request_cancel(std::string message) override
  {
    auto self = std::static_pointer_cast<task_state>(this->shared_from_this());
    return future<T>(self).cancel(std::move(message));
  }

  /// Completes the task's future with how its coroutine ended. @c v is the
  /// result: a T, or, for a T co_spawn cannot default-construct, an
  /// optional<T>; none with an exception.
  template <typename... V>
  static void finish(std::shared_ptr<task_state> st, std::exception_ptr e, V&&... v);

  future_state_base::cancel_action intercept_cancel(std::string& message) override
  {
    // While the task is pending, error_ holds the request: finish() takes
    // it, and the task ends cancelled with its message unless the
    // coroutine went on.
    this->error_ = std::make_exception_ptr(cancelled_error(std::move(message)));
    // Before the task's first step nothing is connected to the signal yet,
    // and the emit does nothing: task_start sees the message instead.
    signal_.emit(boost::asio::cancellation_type::terminal);
    return future_state_base::cancel_action::deferred;
  }

  boost::asio::cancellation_signal signal_;
  // The coroutine until its first step takes it. Here rather than in the
  // start step, or the driver's entry frame: the state's slot has room.
  boost::asio::awaitable<T> body_;
};

} // namespace detail

/// A task of any result type, as all_tasks() lists it.
/**
 * @par asyncio equivalent
 * The Task objects in the set `asyncio.all_tasks()` returns.
 */
class task_ref
{
public:
  explicit task_ref(std::shared_ptr<detail::task_base> st) noexcept
    : st_(std::move(st))
  {
  }

  const std::string& get_name() const { return st_->name(); }
  bool done() const noexcept { return st_->is_done(); }
  bool cancelled() const noexcept { return st_->is_cancelled(); }

  /// As task<T>::cancel().
  bool cancel(std::string message = {})
  {
    return st_->request_cancel(std::move(message));
  }

  friend bool operator==(const task_ref& a, const task_ref& b) noexcept
  {
    return a.st_ == b.st_;
  }

  friend std::ostream& operator<<(std::ostream& os, const task_ref& t)
  {
    return os << t.st_->describe();
  }

private:
  std::shared_ptr<detail::task_base> st_;
};

/// Returns the task whose coroutine is running, or nothing outside tasks.
/**
 * @throws no_running_loop_error outside loop work.
 *
 * @par asyncio equivalent
 * `asyncio.current_task()`
 */
std::optional<task_ref> current_task();

/// Returns the pending tasks of the running loop.
/**
 * @throws no_running_loop_error outside loop work.
 *
 * @par asyncio equivalent
 * `asyncio.all_tasks()`
 */
std::vector<task_ref> all_tasks();

/// A coroutine scheduled on the loop: asyncio's Task.
/**
 * A task is a future<T> whose result is the coroutine's: it can be awaited,
 * given done callbacks, and printed. The loop keeps a pending task alive
 * until it ends, whether or not a handle to it is kept.
 *
 * @par asyncio equivalent
 * `asyncio.Task`
 */
template <typename T>
class task : public future<T>
{
public:
  /// Constructs a handle that refers to no task.
  task() noexcept = default;

  /// Returns the task's name (`Task-N` unless set).
  const std::string& get_name() const { return state().name(); }

  /// The task as listed by all_tasks().
  operator task_ref() const;

  /// Renames the task.
  void set_name(std::string name) { state().set_name(std::move(name)); }

  /// Requests that the task be cancelled.
  /**
   * The coroutine sees cancelled_error — or, from an Asio operation,
   * `system_error(operation_aborted)` — at the operation it is suspended in,
   * or at its next suspension point if it is running; a task that has not
   * started never runs. It may catch the exception, clean up and go on: to
   * await again after catching it, call
   * `co_await boost::asio::this_coro::reset_cancellation_state();` first,
   * as Asio keeps the coroutine cancelled until then. A task whose
   * cancellation escapes ends cancelled, with @c message in what().
   *
   * @returns false if the task is already done.
   *
   * @par asyncio equivalent
   * `task.cancel(msg)`
   */
  bool cancel(std::string message = {})
  {
    return future<T>::cancel(std::move(message));
  }

  /// Prints `<task pending name='Task-1'>`,
  /// `<task finished name='Task-1' result='A'>`, ..., as asyncio's repr().
  friend std::ostream& operator<<(std::ostream& os, const task& t)
  {
    os << "<task ";
    std::ostringstream state;
    t.print_state(state);
    std::string s = state.str();
    const auto space = s.find(' ');
    // "finished result=..." becomes "finished name='...' result=...".
    os << s.substr(0, space) << " name='" << t.get_name() << '\'';
    if (space != std::string::npos)
      os << s.substr(space);
    return os << '>';
  }

  /// Constructs a handle to @c st. (Internal.)
  explicit task(std::shared_ptr<detail::task_state<T>> st)
    : future<T>(st)
  {
  }

private:
  detail::task_state<T>& state() const noexcept
  {
    return static_cast<detail::task_state<T>&>(*this->state_ptr());
  }
};

template <typename T>
task<T>::operator task_ref() const
{
  return task_ref(state().share());
}

namespace detail {

/// The result handed over: a T, or an optional<T>.
template <typename T>
T&& task_result(T&& v) noexcept
{
  return std::move(v);
}

template <typename T>
T&& task_result(std::optional<T>&& v) noexcept
{
  return std::move(*v);
}

template <typename T>
template <typename... V>
void task_state<T>::finish(
    std::shared_ptr<task_state> st, std::exception_ptr e, V&&... v)
{
  st->returned_ = true;
  auto& core = st->core();
  core.remove_task(*st);
  task_state* const self = st.get();
  future<T> f(std::move(st));
  if (f.done())
    return;
  // A cancel() request, if any (see intercept_cancel()).
  const std::exception_ptr requested = std::exchange(self->error_, nullptr);
  try
  {
    if (!e)
    {
      if constexpr (std::is_void_v<T>)
        f.set_result();
      else if constexpr (sizeof...(V) != 0)
        f.set_result(task_result<T>(std::forward<V>(v)...));
      return;
    }
    if (auto message = cancellation_message(e))
    {
      f.cancel_now(requested ? *cancellation_message(requested) : std::move(*message));
      return;
    }
  }
  catch (...)
  {
    // The outcome could not be handed over (moving the result threw, or
    // memory ran out): the task, unlisted already, must not stay pending.
    if (f.done())
      throw;
    e = std::current_exception();
  }
  f.set_exception(e);
  // Tracked until it is destroyed or the loop closes, so that the
  // destructor knows whether it may still report the exception.
  if (!core.closed())
    core.track(*self);
}

#if defined(ASIOLOOP_TASK_DRIVER)
/// task_entry()'s one parameter: a type of asioloop's own, so that the
/// coroutine_traits specialization below gives task_entry() alone its
/// promise type.
template <typename T>
struct task_entry_arg
{
  std::shared_ptr<task_state<T>> st;
};

/// task_entry()'s promise: Asio's entry-point frame, in memory from the
/// loop's slab. Asio would take the frame from malloc, fresh memory for
/// every task of a burst (a page fault each 4 KiB); the slab's pages were
/// faulted in bulk.
template <typename T>
class task_entry_promise
  : public boost::asio::detail::awaitable_frame<
        boost::asio::detail::awaitable_thread_entry_point,
        boost::asio::any_io_executor>
{
public:
  static void* operator new(std::size_t size, const task_entry_arg<T>& a)
  {
    // Asio reaches the promise through handles to its own frame type: the
    // two must be laid out alike.
    static_assert(sizeof(task_entry_promise) == sizeof(base)
        && alignof(task_entry_promise) == alignof(base));
    return frame_allocate(a.st->core().local_slab(), size);
  }

  static void operator delete(void* frame, std::size_t size) noexcept
  {
    frame_deallocate(frame, size);
  }

  /// Awaits the body. Asio's awaitable is awaited from a handle to Asio's
  /// own frame type: this is that frame, at the same address.
  template <typename U>
  auto await_transform(boost::asio::awaitable<U, boost::asio::any_io_executor> a)
  {
    struct awaiter
    {
      boost::asio::awaitable<U, boost::asio::any_io_executor> a;

      bool await_ready() const noexcept { return a.await_ready(); }

      void await_suspend(std::coroutine_handle<task_entry_promise> h)
      {
        a.await_suspend(std::coroutine_handle<base>::from_address(h.address()));
      }

      U await_resume() { return a.await_resume(); }
    };
    return awaiter{base::await_transform(std::move(a))};
  }

private:
  using base = boost::asio::detail::awaitable_frame<
      boost::asio::detail::awaitable_thread_entry_point,
      boost::asio::any_io_executor>;
};

} // namespace detail
} // namespace asioloop

template <typename T>
struct std::coroutine_traits<
    boost::asio::awaitable<boost::asio::detail::awaitable_thread_entry_point,
        boost::asio::any_io_executor>,
    asioloop::detail::task_entry_arg<T>>
{
  using promise_type = asioloop::detail::task_entry_promise<T>;
};

namespace asioloop {
namespace detail {

/// The bottom frame of a task's coroutine stack, in the place of co_spawn's
/// entry point: it awaits the body and completes the task in the step in
/// which the body returns. It holds the task alive while the body runs.
template <typename T>
boost::asio::awaitable<boost::asio::detail::awaitable_thread_entry_point,
    boost::asio::any_io_executor>
task_entry(task_entry_arg<T> a)
{
  // The task is completed inside the handler, not after it: a variable for
  // the exception would live in every task's frame. An exception of
  // finish() itself is the loop's to report, not the task's result.
  if constexpr (std::is_void_v<T>)
  {
    try
    {
      co_await std::move(a.st->body_);
    }
    catch (...)
    {
      task_state<T>::finish(std::move(a.st), std::current_exception());
      co_return;
    }
    task_state<T>::finish(std::move(a.st), nullptr);
  }
  else
  {
    std::optional<T> v;
    try
    {
      v.emplace(co_await std::move(a.st->body_));
    }
    catch (...)
    {
      task_state<T>::finish(std::move(a.st), std::current_exception());
      co_return;
    }
    task_state<T>::finish(std::move(a.st), nullptr, std::move(v));
  }
}
#else
/// co_spawn's completion handler for a task. It names the task's signal as
/// its cancellation slot itself: bound with bind_cancellation_slot, co_spawn
/// would not see that it has no executor of its own, and would dispatch
/// each cancellation through the task's executor, a step late.
template <typename T>
struct task_done
{
  std::shared_ptr<task_state<T>> st;

  using cancellation_slot_type = boost::asio::cancellation_slot;
  cancellation_slot_type get_cancellation_slot() const noexcept
  {
    return st->signal_.slot();
  }

  template <typename... V>
  void operator()(std::exception_ptr e, V&&... v)
  {
    task_state<T>::finish(std::move(st), std::move(e), std::forward<V>(v)...);
  }
};

/// For a result type co_spawn cannot default-construct: a frame more.
template <typename T>
boost::asio::awaitable<std::optional<T>> optional_body(boost::asio::awaitable<T> aw)
{
  co_return std::optional<T>(co_await std::move(aw));
}

#endif

/// The first step of a task: starts its coroutine, on the iteration after
/// create_task() as in asyncio, and runs it up to its first suspension. The
/// task's executor makes each later step of the coroutine the current task;
/// the task's signal is the cancellation slot, so cancel() reaches whatever
/// the coroutine awaits.
template <typename T>
struct task_start
{
  std::shared_ptr<task_state<T>> st;

  void operator()()
  {
    std::shared_ptr<task_link> link(st, st.get());
    task_scope scope(link);
    if (st->error_) // a cancel() request
    {
      // Cancelled before it started: the body never runs (its frame is
      // destroyed here), and the task ends cancelled.
      const auto body = std::move(st->body_);
      task_state<T>::finish(std::move(st), std::make_exception_ptr(cancelled_error()));
      return;
    }
    task_executor ex(link);
#if defined(ASIOLOOP_TASK_DRIVER)
    // What co_spawn does, less its entry frame and its cancellation proxy:
    // the task's own signal is the coroutine's parent slot.
    auto slot = st->signal_.slot();
    boost::asio::detail::awaitable_handler<boost::asio::any_io_executor>(
        task_entry<T>({std::move(st)}),
        boost::asio::any_io_executor(ex), slot,
        boost::asio::cancellation_state(slot))
        .launch();
#else
    auto body = std::move(st->body_);
    if constexpr (std::is_void_v<T> || std::is_default_constructible_v<T>)
      boost::asio::co_spawn(ex, std::move(body), task_done<T>{std::move(st)});
    else
      boost::asio::co_spawn(ex, optional_body(std::move(body)), task_done<T>{std::move(st)});
#endif
  }
};

} // namespace detail

/// Schedules @c coro as a task on this loop; it starts on the next iteration.
/**
 * @param name The task's name; `Task-N` when empty.
 *
 * @throws loop_closed_error if the loop is closed.
 *
 * @par asyncio equivalent
 * `loop.create_task(coro, name=name)`
 */
template <typename T>
task<T> event_loop::create_task(boost::asio::awaitable<T> coro, std::string name)
{
  if (core_->closed())
    throw loop_closed_error("create_task");
  auto st = detail::make_loop_state<detail::task_state<T>>(
      *core_, *core_, std::move(name), std::move(coro));
  core_->post(1, detail::task_start<T>{st});
  return task<T>(std::move(st));
}

/// Schedules @c coro as a task on the running loop.
/**
 * @throws no_running_loop_error outside loop work.
 *
 * @par asyncio equivalent
 * `asyncio.create_task(coro)`
 */
template <typename T>
task<T> create_task(boost::asio::awaitable<T> coro, std::string name = {})
{
  return get_running_loop().create_task(std::move(coro), std::move(name));
}

/// Runs the loop until @c f is done, and returns its result.
/**
 * @throws std::runtime_error "Event loop stopped before Future completed."
 * if stop() ends the run first; also the errors of run_forever().
 */
template <typename T>
T event_loop::run_until_complete(future<T> f)
{
  check_can_run("run_until_complete");
  auto id = f.add_done_callback([](const future<T>& g) { g.get_loop().stop(); });
  run_forever();
  if (!f.done())
  {
    f.remove_done_callback(id);
    throw std::runtime_error("Event loop stopped before Future completed.");
  }
  if constexpr (std::is_void_v<T> || std::is_copy_constructible_v<T>)
    return f.result();
  else
    return std::move(const_cast<T&>(f.result())); // a move-only result
}

template <typename T>
T event_loop::run_until_complete(boost::asio::awaitable<T> aw)
{
  check_can_run("run_until_complete");
  return run_until_complete(future<T>(create_task(std::move(aw))));
}

namespace detail {

/// asioloop::run's ending: cancels the tasks still pending, runs the loop
/// until they are done, shuts the default executor down, then closes it.
void finish_run(event_loop& loop) noexcept;

/// Throws if the calling thread runs a loop already.
void check_no_running_loop(const char* what);

/// Cancels @c t on SIGINT while asioloop::run runs; undone by its destructor.
class sigint_canceller
{
public:
  sigint_canceller(event_loop& loop, task_ref t);
  ~sigint_canceller();
  sigint_canceller(const sigint_canceller&) = delete;
  sigint_canceller& operator=(const sigint_canceller&) = delete;
  bool fired() const noexcept { return *fired_; }

private:
  event_loop& loop_;
  std::shared_ptr<bool> fired_;
  bool installed_ = false;
};

} // namespace detail

/// Runs @c main on a new loop and returns its result: asyncio.run().
/**
 * The loop is created, runs @c main as a task until it completes, then the
 * tasks still pending are cancelled and awaited, the default executor (if
 * run_in_executor made one) is shut down, waiting for its jobs, and the
 * loop is closed.
 * SIGINT cancels the main task (the signal is handled only while run()
 * runs); run() then throws cancelled_error.
 *
 * @throws std::runtime_error if the calling thread is running a loop.
 *
 * @par asyncio equivalent
 * `asyncio.run(main())`
 */
template <typename T>
T run(boost::asio::awaitable<T> main)
{
  detail::check_no_running_loop("asioloop::run()");
  event_loop loop;
  struct finisher
  {
    event_loop& loop;
    ~finisher() { detail::finish_run(loop); }
  } finish{loop};
  auto main_task = loop.create_task(std::move(main));
  detail::sigint_canceller on_sigint(loop, main_task);
  try
  {
    return loop.run_until_complete(future<T>(main_task));
  }
  catch (const cancelled_error&)
  {
    if (on_sigint.fired())
      throw cancelled_error("interrupted by SIGINT");
    throw;
  }
}

} // namespace asioloop

#endif // ASIOLOOP_TASK_HPP
