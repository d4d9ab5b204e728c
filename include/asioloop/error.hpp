//
// asioloop/error.hpp
//
// Distributed under the Boost Software License, Version 1.0.
//

#ifndef ASIOLOOP_ERROR_HPP
#define ASIOLOOP_ERROR_HPP

#include <stdexcept>
#include <string>

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

} // namespace asioloop

#endif // ASIOLOOP_ERROR_HPP
