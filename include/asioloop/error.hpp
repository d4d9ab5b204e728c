//
// asioloop/error.hpp
//
// Distributed under the Boost Software License, Version 1.0.
//

#ifndef ASIOLOOP_ERROR_HPP
#define ASIOLOOP_ERROR_HPP

#include <stdexcept>

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

} // namespace asioloop

#endif // ASIOLOOP_ERROR_HPP
