//
// test/loop_thread.cpp
//
// loop_thread: running when constructed; stopped, cleaned up and joined by
// stop() or the destructor; errors reported; a stopped loop refuses work.
//

#include <asioloop/loop_thread.hpp>

#include <asioloop/concurrent_future.hpp>
#include <asioloop/sleep.hpp>

#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using asioloop::event_loop;
using asioloop::loop_thread;
using namespace std::chrono_literals;

namespace {

asio::awaitable<void> sleeps_and_cleans_up(std::shared_ptr<std::atomic<int>> state)
{
  try
  {
    co_await asioloop::sleep(1h);
  }
  catch (...) // cancelled_error, or operation_aborted from the sleep
  {
    ++*state;
  }
  // Cleaning up may await, too.
  co_await asio::this_coro::reset_cancellation_state();
  co_await asioloop::sleep(1ms);
  ++*state;
}

asio::awaitable<bool> is_running()
{
  co_return asioloop::get_running_loop().is_running();
}

} // namespace

BOOST_AUTO_TEST_CASE(the_loop_runs_when_the_constructor_returns)
{
  loop_thread t;
  BOOST_TEST(t.running());
  BOOST_TEST(t.loop().is_running());
  BOOST_TEST(t.get_id() != std::this_thread::get_id());
  std::promise<std::thread::id> where;
  t.loop().call_soon_threadsafe([&] { where.set_value(std::this_thread::get_id()); });
  BOOST_TEST(where.get_future().get() == t.get_id());
  BOOST_TEST(asioloop::run_coroutine_threadsafe(is_running(), t.loop()).result());
}

BOOST_AUTO_TEST_CASE(stopping_cancels_and_awaits_pending_tasks)
{
  auto state = std::make_shared<std::atomic<int>>(0);
  std::vector<std::string> reports;
  {
    loop_thread t([&](event_loop& loop) {
      loop.set_exception_handler([&](event_loop&, const asioloop::error_context& c) {
        reports.push_back(c.message);
      });
    });
    auto f = asioloop::run_coroutine_threadsafe(sleeps_and_cleans_up(state), t.loop());
    // Wait until it runs: a task cancelled before it starts never runs.
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (*state == 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(1ms);
  }
  BOOST_TEST(state->load() == 2);
  BOOST_TEST(reports.empty()); // no task was destroyed pending
}

BOOST_AUTO_TEST_CASE(explicit_stop_keeps_the_loop_object)
{
  loop_thread t;
  t.stop();
  BOOST_TEST(!t.running());
  BOOST_TEST(t.loop().is_closed());
  BOOST_CHECK_THROW(t.loop().call_soon_threadsafe([] {}), asioloop::loop_closed_error);
  BOOST_CHECK_THROW(asioloop::run_coroutine_threadsafe(is_running(), t.loop()),
      asioloop::loop_closed_error);
  t.stop(); // a second stop does nothing
}

BOOST_AUTO_TEST_CASE(loop_stop_from_loop_work_ends_the_thread)
{
  loop_thread t;
  t.loop().call_soon_threadsafe([&] { t.loop().stop(); });
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (t.running() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(1ms);
  BOOST_TEST(!t.running());
  BOOST_TEST(t.loop().is_closed());
}

BOOST_AUTO_TEST_CASE(errors_are_reported)
{
  std::promise<std::string> reported;
  std::atomic<bool> once{false};
  loop_thread t([&](event_loop& loop) {
    loop.set_exception_handler([&](event_loop&, const asioloop::error_context& c) {
      if (!once.exchange(true))
        reported.set_value(c.message);
    });
  });
  t.loop().call_soon_threadsafe([] { throw std::runtime_error("inside"); });
  auto msg = reported.get_future();
  BOOST_TEST((msg.wait_for(10s) == std::future_status::ready));
  BOOST_TEST(msg.get().find("Exception in callback") != std::string::npos);
  // The loop serves on.
  BOOST_TEST(asioloop::run_coroutine_threadsafe(is_running(), t.loop()).result());
}

BOOST_AUTO_TEST_CASE(stop_from_the_loops_own_thread_throws)
{
  loop_thread t;
  std::promise<std::string> error;
  t.loop().call_soon_threadsafe([&] {
    try
    {
      t.stop();
      error.set_value("no error");
    }
    catch (const std::logic_error& e)
    {
      error.set_value(e.what());
    }
  });
  BOOST_TEST(error.get_future().get().find("own thread") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(setup_errors_reach_the_constructor)
{
  BOOST_CHECK_THROW(loop_thread([](event_loop&) { throw std::runtime_error("setup"); }),
      std::runtime_error);
}
