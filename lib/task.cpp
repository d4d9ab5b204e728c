//
// lib/task.cpp
//
// Distributed under the Boost Software License, Version 1.0.
//

#include <asioloop/task.hpp>

#include <boost/asio/co_spawn.hpp>

#include <atomic>

namespace asio = boost::asio;

namespace asioloop::detail {

std::string next_task_name()
{
  static std::atomic<unsigned long> counter{0};
  return "Task-" + std::to_string(counter.fetch_add(1) + 1);
}

void spawn_task(loop_core& core, asio::awaitable<void> body,
    asio::cancellation_slot slot, std::unique_ptr<task_completion> done)
{
  asio::co_spawn(loop_executor{core}, std::move(body),
      asio::bind_cancellation_slot(slot,
          [done = std::move(done)](std::exception_ptr e) { done->finish(e); }));
}

bool is_cancellation(const std::exception_ptr& e) noexcept
{
  try
  {
    std::rethrow_exception(e);
  }
  catch (const cancelled_error&)
  {
    return true;
  }
  catch (const boost::system::system_error& s)
  {
    return s.code() == asio::error::operation_aborted;
  }
  catch (...)
  {
    return false;
  }
}

} // namespace asioloop::detail
