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

#include <asioloop/detail/task_executor.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/dispatch.hpp>

#include <tuple>
#include <type_traits>
#include <utility>

namespace asioloop::detail {

/// True if a handler whose executor is @c ex may be completed inline from
/// @c core's loop work: @c ex is (or type-erases) the loop's executor, or a
/// task's executor on that loop (then @c task is that task).
template <typename Executor>
bool runs_inline(const Executor& ex, loop_core& core,
    std::shared_ptr<task_link>& task) noexcept
{
  task.reset();
  if constexpr (std::is_same_v<Executor, loop_executor>)
    return ex == loop_executor{core};
  else if constexpr (std::is_same_v<Executor, basic_task_executor<true>>
      || std::is_same_v<Executor, basic_task_executor<false>>)
  {
    task = ex.task();
    return &ex.core() == &core;
  }
  else if constexpr (std::is_same_v<Executor, boost::asio::any_io_executor>)
  {
    if (const auto* l = ex.template target<loop_executor>())
      return *l == loop_executor{core};
    if (const auto* t = ex.template target<basic_task_executor<true>>())
      return runs_inline(*t, core, task);
    if (const auto* t = ex.template target<basic_task_executor<false>>())
      return runs_inline(*t, core, task);
    return false;
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
  std::shared_ptr<task_link> task;
  if (runs_inline(ex, core, task))
  {
    // The step of a task's coroutine: that task is the current one.
    task_scope scope(task);
    std::move(h)(std::forward<Args>(args)...);
  }
  else
    boost::asio::dispatch(ex,
        [h = std::move(h), t = std::make_tuple(std::forward<Args>(args)...)]() mutable {
          std::apply(std::move(h), std::move(t));
        });
}

} // namespace asioloop::detail

#endif // ASIOLOOP_DETAIL_COMPLETION_HPP
