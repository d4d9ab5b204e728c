//
// asioloop/task.hpp
//
// Distributed under the Boost Software License, Version 1.0.
//

#ifndef ASIOLOOP_TASK_HPP
#define ASIOLOOP_TASK_HPP

#include <asioloop/future.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/error.hpp>
#include <boost/system/system_error.hpp>

#include <memory>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <utility>

namespace asioloop {

template <typename T>
class task;

namespace detail {

/// A name for the next task: Task-1, Task-2, ... across the process.
std::string next_task_name();

/// Told how a task's coroutine ended.
class task_completion
{
public:
  virtual ~task_completion() = default;
  virtual void finish(std::exception_ptr e) = 0;
};

/// Spawns @c body on the loop's executor, bound to @c slot, with
/// `done->finish(exception)` called as loop work when it ends. Compiled once
/// in lib/task.cpp, so that co_spawn is not instantiated per task type.
void spawn_task(loop_core& core, boost::asio::awaitable<void> body,
    boost::asio::cancellation_slot slot, std::unique_ptr<task_completion> done);

/// True if @c e is a cancellation: cancelled_error, or Asio's
/// operation_aborted.
bool is_cancellation(const std::exception_ptr& e) noexcept;

template <typename T>
class task_state final : public future_state<T>
{
public:
  task_state(loop_core& core, std::string name)
    : future_state<T>(core), name_(std::move(name))
  {
  }

  std::string name_;
  boost::asio::cancellation_signal signal_;
  bool started_ = false;
  bool cancel_requested_ = false;
  std::string cancel_message_request_;
  std::optional<std::conditional_t<std::is_void_v<T>, bool, T>> produced_;

  bool intercept_cancel(std::string& message) override
  {
    cancel_requested_ = true;
    cancel_message_request_ = std::move(message);
    if (started_)
      signal_.emit(boost::asio::cancellation_type::terminal);
    return true;
  }
};

} // namespace detail

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
  const std::string& get_name() const noexcept { return state().name_; }

  /// Renames the task.
  void set_name(std::string name) { state().name_ = std::move(name); }

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

namespace detail {

template <typename T>
boost::asio::awaitable<void> task_body(
    boost::asio::awaitable<T> aw, std::shared_ptr<task_state<T>> st)
{
  st->started_ = true;
  if (st->cancel_requested_)
    throw cancelled_error(st->cancel_message_request_);
  if constexpr (std::is_void_v<T>)
  {
    co_await std::move(aw);
    st->produced_.emplace(true);
  }
  else
    st->produced_.emplace(co_await std::move(aw));
}

/// Completes the task's future when its coroutine ends.
template <typename T>
class task_done final : public task_completion
{
public:
  explicit task_done(std::shared_ptr<task_state<T>> st) : st_(std::move(st)) {}

  void finish(std::exception_ptr e) override
  {
    future<T> f(st_);
    if (f.done())
      return;
    if (!e)
    {
      if constexpr (std::is_void_v<T>)
        f.set_result();
      else
        f.set_result(std::move(*st_->produced_));
    }
    else if (is_cancellation(e))
    {
      std::string message = st_->cancel_message_request_;
      try
      {
        std::rethrow_exception(e);
      }
      catch (const cancelled_error& c)
      {
        if (!st_->cancel_requested_)
          message = c.what() == std::string("cancelled") ? "" : c.what();
      }
      catch (...)
      {
      }
      f.cancel_now(std::move(message));
    }
    else
      f.set_exception(e);
  }

private:
  std::shared_ptr<task_state<T>> st_;
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
  auto st = std::make_shared<detail::task_state<T>>(*core_,
      name.empty() ? detail::next_task_name() : std::move(name));
  auto done = std::make_unique<detail::task_done<T>>(st);
  detail::spawn_task(*core_, detail::task_body(std::move(coro), st),
      st->signal_.slot(), std::move(done));
  return task<T>(st);
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
  return f.result();
}

} // namespace asioloop

#endif // ASIOLOOP_TASK_HPP
