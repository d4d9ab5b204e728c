//
// asioloop/detail/completion.hpp
//
// Distributed under the Boost Software License, Version 1.0.
//
// How asioloop's async operations (sleep, awaiting a future) complete their
// handlers from loop work: inline when the handler belongs to the loop's own
// executor — the loop is already running the wake-up as a callback of its
// FIFO, so another trip would cost an iteration — and otherwise dispatched
// to the handler's executor.
//

// Outside the guard: event_loop.hpp ends by including future.hpp, which
// needs this header whole.
#include <asioloop/event_loop.hpp>

#ifndef ASIOLOOP_DETAIL_COMPLETION_HPP
#define ASIOLOOP_DETAIL_COMPLETION_HPP

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/dispatch.hpp>

#include <tuple>
#include <type_traits>
#include <utility>

namespace asioloop::detail {

/// True if @c ex is (or type-erases) the executor of @c core's loop.
template <typename Executor>
bool is_loop_executor(const Executor& ex, loop_core& core) noexcept
{
  if constexpr (std::is_same_v<Executor, loop_executor>)
    return ex == loop_executor{core};
  else if constexpr (std::is_same_v<Executor, boost::asio::any_io_executor>)
  {
    const auto* target = ex.template target<loop_executor>();
    return target && *target == loop_executor{core};
  }
  else
    return false;
}

/// Completes @c h with @c args from loop work. Clears the handler's
/// cancellation slot first: the operation is over.
template <typename Handler, typename... Args>
void complete_from_loop(Handler&& h, loop_core& core, Args&&... args)
{
  boost::asio::get_associated_cancellation_slot(h).clear();
  auto ex = boost::asio::get_associated_executor(h, loop_executor{core});
  if (is_loop_executor(ex, core))
    std::move(h)(std::forward<Args>(args)...);
  else
    boost::asio::dispatch(ex,
        [h = std::move(h), t = std::make_tuple(std::forward<Args>(args)...)]() mutable {
          std::apply(std::move(h), std::move(t));
        });
}

} // namespace asioloop::detail

#endif // ASIOLOOP_DETAIL_COMPLETION_HPP
