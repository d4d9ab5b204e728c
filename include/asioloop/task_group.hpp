//
// asioloop/task_group.hpp
//
// Distributed under the Boost Software License, Version 1.0.
//

#ifndef ASIOLOOP_TASK_GROUP_HPP
#define ASIOLOOP_TASK_GROUP_HPP

#include <asioloop/event_loop.hpp>
#include <asioloop/future.hpp>
#include <asioloop/task.hpp>

#include <boost/asio/awaitable.hpp>

#include <cstddef>
#include <exception>
#include <list>
#include <memory>
#include <string>
#include <vector>

namespace asioloop {

namespace detail {

/// What a task_group and the done callbacks of its tasks share.
struct task_group_state
{
  explicit task_group_state(event_loop& l) : loop(&l) {}

  /// Throws unless a task may join the group now.
  void check_can_add() const;

  /// Lists @c t as a member until it is done.
  std::list<task_ref>::iterator add(task_ref t);

  /// A member ended, failed with @c error (null if it did not).
  void member_done(std::list<task_ref>::iterator it, std::exception_ptr error);

  /// Cancels every member that is still pending.
  void abort();

  /// The group object is gone before wait() ended.
  void orphan() noexcept;

  event_loop* loop;
  std::list<task_ref> pending;
  std::vector<std::exception_ptr> errors;
  future<void> wake;
  bool aborting = false;
  bool waiting = false;
  bool finished = false;
  bool orphaned = false;
};

/// The done callback of a member: tells the group.
struct task_group_member
{
  std::shared_ptr<task_group_state> group;
  std::list<task_ref>::iterator it;

  template <typename T>
  void operator()(const future<T>& f) const
  {
    group->member_done(it, f.cancelled() ? nullptr : f.exception());
  }
};

boost::asio::awaitable<void> wait_task_group(std::shared_ptr<task_group_state> st);

} // namespace detail

/// Tasks that succeed or fail together: asyncio's TaskGroup.
/**
 * Tasks are created with create_task() and awaited together with wait().
 * The first task to fail cancels the others; wait() waits for all of them
 * and then rethrows the failure (several as an exception_group).
 * Cancelling the task that awaits wait() cancels the group's tasks, waits
 * for them, and rethrows the cancellation.
 *
 * C++ has no `async with`: call `co_await tg.wait()` before the group goes
 * out of scope. A group destroyed before its wait() ended cancels the tasks
 * still pending, and reports failures through the loop's exception handler.
 *
 * @par Example
 * @code
 * asioloop::task_group tg;
 * auto a = tg.create_task(fetch("a"));
 * auto b = tg.create_task(fetch("b"));
 * co_await tg.wait(); // both done, or the first failure rethrown
 * @endcode
 *
 * @par asyncio equivalent
 * `async with asyncio.TaskGroup() as tg:`
 */
class task_group
{
public:
  /// Constructs a group on the running loop.
  /**
   * @throws no_running_loop_error outside loop work.
   */
  task_group();

  /// Constructs a group on @c loop.
  explicit task_group(event_loop& loop);

  /// Cancels the tasks still pending if wait() did not end.
  ~task_group();

  task_group(const task_group&) = delete;
  task_group& operator=(const task_group&) = delete;

  /// Creates a task in the group.
  /**
   * @throws invalid_state_error once the group is finished or shutting
   * down (a task failed, or the group was cancelled).
   */
  template <typename T>
  task<T> create_task(boost::asio::awaitable<T> coro, std::string name = {})
  {
    st_->check_can_add();
    auto t = st_->loop->create_task(std::move(coro), std::move(name));
    t.add_done_callback(detail::task_group_member{st_, st_->add(t)});
    return t;
  }

  /// Returns the number of tasks of the group that are still pending.
  std::size_t size() const noexcept { return st_->pending.size(); }

  /// Waits for every task of the group, including those created meanwhile.
  /**
   * @throws The exception of the task that failed; exception_group if
   * several did; cancelled_error if the waiter was cancelled.
   */
  boost::asio::awaitable<void> wait() { return detail::wait_task_group(st_); }

private:
  std::shared_ptr<detail::task_group_state> st_;
};

} // namespace asioloop

#endif // ASIOLOOP_TASK_GROUP_HPP
