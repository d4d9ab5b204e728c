//
// asioloop/error.hpp
//
// Distributed under the Boost Software License, Version 1.0.
//

#ifndef ASIOLOOP_ERROR_HPP
#define ASIOLOOP_ERROR_HPP

#include <exception>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace asioloop {

/// Thrown by get_running_loop() outside loop work.
/**
 * @par asyncio equivalent
 * `RuntimeError: no running event loop`
 */
class no_running_loop_error : public std::runtime_error
{
public:
  no_running_loop_error() : std::runtime_error("no running event loop") {}
};

/// Thrown when work is scheduled on a loop that has been closed.
/**
 * @par asyncio equivalent
 * `RuntimeError: Event loop is closed`
 */
class loop_closed_error : public std::runtime_error
{
public:
  explicit loop_closed_error(const char* what_was_tried)
    : std::runtime_error(std::string("Event loop is closed: ") + what_was_tried
        + " needs an open loop (create a new event_loop)")
  {
  }
};

/// Thrown when a future is used in a state that does not allow it: result()
/// before it is done, a second set_result(), a set after cancel().
/**
 * @par asyncio equivalent
 * `asyncio.InvalidStateError`
 */
class invalid_state_error : public std::logic_error
{
public:
  explicit invalid_state_error(const std::string& what) : std::logic_error(what) {}
};

/// Thrown by result() of a cancelled future, and into a cancelled coroutine.
/**
 * what() holds the message given to cancel(), or "cancelled" if none.
 *
 * @par asyncio equivalent
 * `asyncio.CancelledError`
 */
class cancelled_error : public std::runtime_error
{
public:
  explicit cancelled_error(const std::string& message = {})
    : std::runtime_error(message.empty() ? "cancelled" : message)
  {
  }
};

/// Thrown when a wait runs out of time: wait_for(), concurrent_future::result().
/**
 * @par asyncio equivalent
 * `TimeoutError`
 */
class timeout_error : public std::runtime_error
{
public:
  explicit timeout_error(const std::string& what) : std::runtime_error(what) {}
};

/// Thrown by queue::put_nowait() on a full queue.
/**
 * @par asyncio equivalent
 * `asyncio.QueueFull`
 */
class queue_full_error : public std::runtime_error
{
public:
  queue_full_error()
    : std::runtime_error(
        "put_nowait() on a full queue: co_await put() to wait for room")
  {
  }
};

/// Thrown by queue::get_nowait() on an empty queue.
/**
 * @par asyncio equivalent
 * `asyncio.QueueEmpty`
 */
class queue_empty_error : public std::runtime_error
{
public:
  queue_empty_error()
    : std::runtime_error(
        "get_nowait() on an empty queue: co_await get() to wait for an item")
  {
  }
};

/// Several exceptions at once: the failures of a task_group's tasks.
/**
 * @par asyncio equivalent
 * `ExceptionGroup`
 */
class exception_group : public std::runtime_error
{
public:
  exception_group(const std::string& message, std::vector<std::exception_ptr> errors)
    : std::runtime_error(message + " (" + std::to_string(errors.size())
          + " sub-exception" + (errors.size() == 1 ? "" : "s") + ")"),
      errors_(std::move(errors))
  {
  }

  /// The exceptions, in the order they happened.
  const std::vector<std::exception_ptr>& exceptions() const noexcept
  {
    return errors_;
  }

private:
  std::vector<std::exception_ptr> errors_;
};

/// Thrown when an executor cannot run a job: it was shut down, or the worker
/// process running the job died.
/**
 * @par asyncio equivalent
 * `concurrent.futures.BrokenExecutor` (and `RuntimeError: cannot schedule
 * new futures after shutdown`)
 */
class broken_executor_error : public std::runtime_error
{
public:
  explicit broken_executor_error(const std::string& what) : std::runtime_error(what) {}
};

/// An exception raised inside a process worker, carried to the caller.
/**
 * @par asyncio equivalent
 * The exception re-raised by a `ProcessPoolExecutor` future.
 */
class remote_error : public std::runtime_error
{
public:
  remote_error(std::string type_name, const std::string& message)
    : std::runtime_error(type_name + ": " + message), type_name_(std::move(type_name))
  {
  }

  /// The name of the exception's type in the worker, as `std::runtime_error`.
  const std::string& type_name() const noexcept { return type_name_; }

private:
  std::string type_name_;
};

} // namespace asioloop

#endif // ASIOLOOP_ERROR_HPP
