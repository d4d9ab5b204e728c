//
// asioloop/clock.hpp
//
// Distributed under the Boost Software License, Version 1.0.
//

#ifndef ASIOLOOP_CLOCK_HPP
#define ASIOLOOP_CLOCK_HPP

#include <chrono>

namespace asioloop {

/// The clock of loop.time(), call_at() and timer_handle::when().
/**
 * @par asyncio equivalent
 * `time.monotonic`, the clock of `loop.time()`.
 */
using clock = std::chrono::steady_clock;

/// Tag type of #virtual_clock.
struct virtual_clock_t
{
  explicit constexpr virtual_clock_t() = default;
};

/// Selects virtual time: `asioloop::event_loop loop{asioloop::virtual_clock};`
/**
 * The loop's clock then moves only when the loop is idle (it jumps to the
 * next due timer) or by event_loop::advance(). asyncio has no counterpart;
 * tokio's `time::pause` and Trio's `MockClock` do the same.
 */
inline constexpr virtual_clock_t virtual_clock{};

} // namespace asioloop

#endif // ASIOLOOP_CLOCK_HPP
