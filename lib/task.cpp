//
// lib/task.cpp
//
// Distributed under the Boost Software License, Version 1.0.
//

#include <asioloop/task.hpp>

#include <asioloop/sleep.hpp>

#include <boost/asio/co_spawn.hpp>

#include <csignal>

#include <atomic>
#include <string_view>

namespace asio = boost::asio;

namespace asioloop::detail {

std::uint64_t next_task_number() noexcept
{
  static std::atomic<std::uint64_t> counter{0};
  return counter.fetch_add(1, std::memory_order_relaxed) + 1;
}

constinit thread_local const std::shared_ptr<task_link>* running_task = nullptr;

std::optional<std::string> cancellation_message(const std::exception_ptr& e)
{
  try
  {
    std::rethrow_exception(e);
  }
  catch (const cancelled_error& c)
  {
    // cancelled_error() says "cancelled" when it was given no message.
    return c.what() == std::string_view("cancelled") ? std::string() : c.what();
  }
  catch (const boost::system::system_error& s)
  {
    if (s.code() == asio::error::operation_aborted)
      return std::string();
  }
  catch (...)
  {
  }
  return std::nullopt;
}

void check_no_running_loop(const char* what)
{
  if (running_core)
    throw std::runtime_error(std::string(what)
        + " cannot be called from a running event loop");
}

namespace {

// Cancels every other pending task and waits until all are done.
boost::asio::awaitable<void> cancel_the_rest(std::shared_ptr<task<void>> self)
{
  const task_ref me = *self;
  std::vector<task_ref> others;
  for (auto& t : all_tasks())
    if (!(t == me) && t.cancel())
      others.push_back(t);
  for (int round = 0;; ++round)
  {
    bool all_done = true;
    for (auto& t : others)
      all_done = all_done && t.done();
    if (all_done)
      co_return;
    // A few plain iterations cover tasks that just unwind; one that cleans
    // up longer is polled each millisecond, not in a busy loop.
    using namespace std::chrono_literals;
    if (round < 16)
      co_await sleep(0s);
    else
      co_await sleep(1ms);
  }
}

} // namespace

void finish_run(event_loop& loop) noexcept
{
  try
  {
    if (!loop.is_closed())
    {
      auto self = std::make_shared<task<void>>();
      *self = loop.create_task(cancel_the_rest(self), "asioloop.run cleanup");
      loop.run_until_complete(future<void>(*self));
    }
  }
  catch (...)
  {
    loop.call_exception_handler(
        {"asioloop::run: error while cancelling the remaining tasks",
            std::current_exception()});
  }
  try
  {
    loop.shutdown_default_executor();
  }
  catch (...)
  {
    loop.call_exception_handler(
        {"asioloop::run: error while shutting down the default executor",
            std::current_exception()});
  }
  try
  {
    loop.close();
  }
  catch (...)
  {
  }
}

sigint_canceller::sigint_canceller(event_loop& loop, task_ref t)
  : loop_(loop), fired_(std::make_shared<bool>(false))
{
  try
  {
    loop_.add_signal_handler(SIGINT, [fired = fired_, t]() mutable {
      *fired = true;
      t.cancel("interrupted by SIGINT");
    });
    installed_ = true;
  }
  catch (...)
  {
    // No signal handling here (another library owns SIGINT): run anyway.
  }
}

sigint_canceller::~sigint_canceller()
{
  if (installed_ && !loop_.is_closed())
    loop_.remove_signal_handler(SIGINT);
}

} // namespace asioloop::detail

namespace asioloop {

std::optional<task_ref> current_task()
{
  auto* core = detail::running_core;
  if (!core || !core->owner())
    throw no_running_loop_error();
  if (!detail::running_task)
    return std::nullopt;
  return task_ref(
      static_cast<detail::task_base*>(detail::running_task->get())->share());
}

std::vector<task_ref> all_tasks()
{
  auto* core = detail::running_core;
  if (!core || !core->owner())
    throw no_running_loop_error();
  std::vector<task_ref> tasks;
  core->for_each_task([&](detail::task_link& t) {
    tasks.emplace_back(static_cast<detail::task_base&>(t).share());
  });
  return tasks;
}

} // namespace asioloop
