//
// asioloop/detail/task_executor.hpp
//
// Distributed under the Boost Software License, Version 1.0.
//
// The executor a task's coroutine runs on: the loop's executor, plus the
// task. Every step of the coroutine (its start, each resumption) goes through
// it, so it can tell current_task() which task is running — the one thing
// Asio offers no hook for. Its work is loop work, in the same FIFO.
//

#ifndef ASIOLOOP_DETAIL_TASK_EXECUTOR_HPP
#define ASIOLOOP_DETAIL_TASK_EXECUTOR_HPP

#include <asioloop/detail/loop_core.hpp>

#include <boost/asio/execution/blocking.hpp>
#include <boost/asio/execution/context.hpp>
#include <boost/asio/execution_context.hpp>

#include <memory>
#include <type_traits>
#include <utility>

namespace asioloop::detail {

/// The task whose step the calling thread is running, if any.
extern constinit thread_local task_link* running_task;

/// Sets running_task for a scope, restoring the previous value.
class task_scope
{
public:
  explicit task_scope(task_link* t) noexcept : saved_(std::exchange(running_task, t)) {}
  ~task_scope() { running_task = saved_; }
  task_scope(const task_scope&) = delete;
  task_scope& operator=(const task_scope&) = delete;

private:
  task_link* saved_;
};

/// One step of a task: runs @c f with the task as the current one. Holds a
/// reference (null if the task is gone), so the task stays valid for
/// current_task() during the step.
template <typename F>
struct task_step
{
  std::shared_ptr<task_link> task;
  F f;

  void operator()()
  {
    task_scope scope(task.get());
    std::move(f)();
  }
};

// The executor refers to its task weakly: co_spawn keeps a copy inside the
// handler it installs in the task's cancellation slot, which the task owns,
// and a strong reference there would keep every task alive forever.
class task_executor
{
public:
  explicit task_executor(const std::shared_ptr<task_link>& task) noexcept
    : core_(&task->task_core()), task_(task)
  {
  }

  template <typename F>
  void execute(F&& f) const
  {
    if (core_->closed())
      return;
    core_->post(1, task_step<std::decay_t<F>>{task_.lock(), std::forward<F>(f)});
  }

  boost::asio::execution_context& query(
      boost::asio::execution::context_t) const noexcept
  {
    return core_->context();
  }

  static constexpr boost::asio::execution::blocking_t query(
      boost::asio::execution::blocking_t) noexcept
  {
    return boost::asio::execution::blocking.never;
  }

  task_executor require(boost::asio::execution::blocking_t::never_t) const noexcept
  {
    return *this;
  }

  loop_core& core() const noexcept { return *core_; }
  std::shared_ptr<task_link> task() const noexcept { return task_.lock(); }

  friend bool operator==(const task_executor& a, const task_executor& b) noexcept
  {
    return a.core_ == b.core_ && !a.task_.owner_before(b.task_)
        && !b.task_.owner_before(a.task_);
  }

  friend bool operator!=(const task_executor& a, const task_executor& b) noexcept
  {
    return !(a == b);
  }

private:
  loop_core* core_;
  std::weak_ptr<task_link> task_;
};

} // namespace asioloop::detail

#endif // ASIOLOOP_DETAIL_TASK_EXECUTOR_HPP
