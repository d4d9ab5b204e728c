//
// lib/loop_thread.cpp
//
// Distributed under the Boost Software License, Version 1.0.
//

#include <asioloop/loop_thread.hpp>

#include <asioloop/task.hpp>

#include <cstdio>
#include <cstdlib>
#include <future>
#include <stdexcept>

namespace asioloop {

loop_thread::loop_thread() : loop_thread(std::function<void(event_loop&)>{}) {}

loop_thread::loop_thread(std::function<void(event_loop&)> setup)
  : loop_(std::make_unique<event_loop>())
{
  start(std::move(setup));
}

void loop_thread::start(std::function<void(event_loop&)> setup)
{
  // Shared, not on this stack: the loop's thread may still be inside
  // set_value() when get() returns here.
  auto started = std::make_shared<std::promise<void>>();
  auto ready = started->get_future();
  thread_ = std::thread([this, setup = std::move(setup), started]() mutable {
    try
    {
      if (setup)
        setup(*loop_);
      // The first callback of the run: the loop is running when it runs.
      loop_->call_soon([started] { started->set_value(); });
    }
    catch (...)
    {
      started->set_exception(std::current_exception());
      finished_.store(true);
      return;
    }
    run();
  });
  id_ = thread_.get_id();
  try
  {
    ready.get();
  }
  catch (...)
  {
    thread_.join();
    throw;
  }
}

void loop_thread::run() noexcept
{
  event_loop& loop = *loop_;
  for (;;)
  {
    try
    {
      loop.run_forever();
      break;
    }
    catch (...)
    {
      // Only a handler posted straight to the io_context can get here (loop
      // callbacks are reported by the loop): report it and serve on, since
      // other threads rely on the loop running until they stop it.
      loop.call_exception_handler({"Exception escaped the run of a "
                                   "loop_thread's event loop; the loop runs on",
          std::current_exception()});
    }
  }
  // As asioloop::run() ends: cancel the tasks still pending, run the loop
  // until they are done, close it. A stop request that arrives meanwhile
  // must not cut that run short.
  cleaning_up_ = true;
  // finish_run also shuts the default executor down, after the tasks
  // (which may still be waiting on it), as asyncio.run() does.
  detail::finish_run(loop);
  finished_.store(true);
}

bool loop_thread::running() const noexcept
{
  return !finished_.load();
}

void loop_thread::stop()
{
  // While the run lasts the thread is alive, so its id cannot be reused.
  if (std::this_thread::get_id() == id_ && !finished_.load())
    throw std::logic_error("loop_thread::stop() called from the loop's own "
                           "thread would wait for itself: call loop().stop() "
                           "there instead; the thread then ends on its own");
  std::lock_guard lk(stop_mutex_);
  if (!thread_.joinable())
    return;
  try
  {
    loop_->call_soon_threadsafe([this] {
      if (!cleaning_up_)
        loop_->stop();
    });
  }
  catch (const loop_closed_error&)
  {
    // The loop stopped by itself (loop.stop() from loop work): it is ending.
  }
  thread_.join();
}

loop_thread::~loop_thread()
{
  if (std::this_thread::get_id() == id_ && !finished_.load())
  {
    std::fputs("asioloop: a loop_thread was destroyed by its own loop's "
               "thread, which cannot wait for itself; destroy it from "
               "another thread\n",
        stderr);
    std::terminate();
  }
  stop();
  // loop_ is destroyed with the members, closed already, on this thread.
}

} // namespace asioloop
