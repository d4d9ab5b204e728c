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

/// The task whose step the calling thread is running, if any: the handle
/// the step holds, so that an executor can recognise its task without
/// locking its weak reference.
extern constinit thread_local const std::shared_ptr<task_link>* running_task;

/// Sets running_task for a scope, restoring the previous value.
class task_scope
{
public:
  explicit task_scope(const std::shared_ptr<task_link>& t) noexcept
    : saved_(std::exchange(running_task, t ? &t : nullptr))
  {
  }
  ~task_scope() { running_task = saved_; }
  task_scope(const task_scope&) = delete;
  task_scope& operator=(const task_scope&) = delete;

private:
  const std::shared_ptr<task_link>* saved_;
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
    task_scope scope(task);
    std::move(f)();
  }
};

// The executor refers to its task weakly: a copy of it may outlive the task
// (a handler kept by a socket, an executor a coroutine stored), and it must
// not keep the task alive.
//
// Like io_context's executor, its default is blocking.possibly (Inline): it
// runs a function at once when the calling thread is running a step of the
// same task, and posts it as a new step otherwise. That is how co_spawn's
// first dispatch runs inside the task's first step, and its completion
// handler in the step in which the coroutine returns, instead of one
// iteration later each. post() asks for blocking.never, which always posts.
template <bool Inline>
class basic_task_executor
{
public:
  explicit basic_task_executor(const std::shared_ptr<task_link>& task) noexcept
    : core_(&task->task_core()), task_(task)
  {
  }

  basic_task_executor(loop_core* core, std::weak_ptr<task_link> task) noexcept
    : core_(core), task_(std::move(task))
  {
  }

  template <typename F>
  void execute(F&& f) const
  {
    if (core_->closed())
      return;
    if constexpr (Inline)
    {
      if (running_task && !running_task->owner_before(task_)
          && !task_.owner_before(*running_task))
      {
        std::decay_t<F>(std::forward<F>(f))();
        return;
      }
    }
    core_->post(1, task_step<std::decay_t<F>>{task_.lock(), std::forward<F>(f)});
  }

  boost::asio::execution_context& query(
      boost::asio::execution::context_t) const noexcept
  {
    return core_->context();
  }

  static constexpr auto query(boost::asio::execution::blocking_t) noexcept
  {
    if constexpr (Inline)
      return boost::asio::execution::blocking.possibly;
    else
      return boost::asio::execution::blocking.never;
  }

  basic_task_executor<false> require(
      boost::asio::execution::blocking_t::never_t) const noexcept
  {
    return {core_, task_};
  }

  basic_task_executor<true> require(
      boost::asio::execution::blocking_t::possibly_t) const noexcept
  {
    return {core_, task_};
  }

  loop_core& core() const noexcept { return *core_; }
  std::shared_ptr<task_link> task() const noexcept { return task_.lock(); }

  friend bool operator==(const basic_task_executor& a,
      const basic_task_executor& b) noexcept
  {
    return a.core_ == b.core_ && !a.task_.owner_before(b.task_)
        && !b.task_.owner_before(a.task_);
  }

  friend bool operator!=(const basic_task_executor& a,
      const basic_task_executor& b) noexcept
  {
    return !(a == b);
  }

private:
  template <bool>
  friend class basic_task_executor;

  loop_core* core_;
  std::weak_ptr<task_link> task_;
};

/// The executor a task's coroutine is spawned on.
using task_executor = basic_task_executor<true>;

} // namespace asioloop::detail

#endif // ASIOLOOP_DETAIL_TASK_EXECUTOR_HPP
