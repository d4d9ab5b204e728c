//
// lib/task_group.cpp
//
// Distributed under the Boost Software License, Version 1.0.
//

#include <asioloop/task_group.hpp>

#include <boost/asio/this_coro.hpp>

namespace asioloop {

namespace detail {

void task_group_state::check_can_add() const
{
  if (finished)
    throw invalid_state_error(
        "task_group::create_task() on a finished group: its wait() has ended");
  if (aborting)
    throw invalid_state_error("task_group::create_task() on a group that is "
                              "shutting down (a task failed, or it was cancelled)");
}

std::list<task_ref>::iterator task_group_state::add(task_ref t)
{
  pending.push_back(std::move(t));
  return std::prev(pending.end());
}

void task_group_state::member_done(
    std::list<task_ref>::iterator it, std::exception_ptr error)
{
  pending.erase(it);
  if (error && cancellation_message(error))
    error = nullptr; // a member that ends cancelled is not a failure
  if (error)
  {
    if (orphaned)
      loop->call_exception_handler(
          {"a task of a task_group destroyed before its wait() failed", error});
    else
      errors.push_back(std::move(error));
    abort();
  }
  if (pending.empty() && wake.valid() && !wake.done())
    wake.set_result();
}

void task_group_state::abort()
{
  aborting = true;
  // cancel() does not complete a task at once, so the list stays intact.
  for (auto& t : pending)
    t.cancel();
}

void task_group_state::orphan() noexcept
{
  orphaned = true;
  if (finished || loop->is_closed())
    return;
  for (auto& e : errors)
    loop->call_exception_handler(
        {"a task of a task_group destroyed before its wait() failed", e});
  errors.clear();
  abort();
}

boost::asio::awaitable<void> wait_task_group(std::shared_ptr<task_group_state> st)
{
  if (st->waiting)
    throw invalid_state_error("task_group::wait() while another wait() of the "
                              "same group is in progress");
  st->waiting = true;
  std::optional<std::string> cancelled;
  while (!st->pending.empty())
  {
    st->wake = st->loop->create_future<void>();
    bool interrupted = false;
    try
    {
      co_await future<void>(st->wake);
    }
    catch (const cancelled_error& e)
    {
      // The waiting task was cancelled: cancel the group, and wait on.
      if (!cancelled)
        cancelled = e.what();
      interrupted = true;
    }
    if (interrupted)
    {
      st->abort();
      co_await boost::asio::this_coro::reset_cancellation_state();
    }
  }
  st->waiting = false;
  st->finished = true;
  if (st->errors.size() == 1)
    std::rethrow_exception(st->errors.front());
  if (st->errors.size() > 1)
    throw exception_group("unhandled errors in a task_group", std::move(st->errors));
  if (cancelled)
    throw cancelled_error(*cancelled);
}

} // namespace detail

task_group::task_group() : task_group(get_running_loop()) {}

task_group::task_group(event_loop& loop)
  : st_(std::make_shared<detail::task_group_state>(loop))
{
}

task_group::~task_group()
{
  st_->orphan();
}

} // namespace asioloop
