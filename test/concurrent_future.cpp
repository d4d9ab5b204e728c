//
// test/concurrent_future.cpp
//
// concurrent_future<T> from any thread (results, timeouts, cancel, done
// callbacks, repr), awaiting one inside and outside loop work, and
// run_coroutine_threadsafe().
//

#include <asioloop/concurrent_future.hpp>

#include "support/loop_fixture.hpp"

#include <asioloop/loop_thread.hpp>
#include <asioloop/sleep.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <latch>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using asioloop::concurrent_future;
using asioloop::event_loop;
using asioloop::loop_thread;
using asioloop::run_coroutine_threadsafe;
using asioloop::test::repr;
using asioloop::test::run_until;
using namespace std::chrono_literals;

namespace {

asio::awaitable<std::string> a(std::chrono::milliseconds d)
{
  co_await asioloop::sleep(d);
  co_return "A";
}

asio::awaitable<int> fails()
{
  co_await asioloop::sleep(0s);
  throw std::runtime_error("boom");
}

asio::awaitable<void> sleeps_then_flags(std::chrono::milliseconds d,
    std::shared_ptr<std::atomic<int>> state)
{
  try
  {
    co_await asioloop::sleep(d);
    *state = 1;
  }
  catch (...) // cancelled_error, or operation_aborted from the sleep
  {
    *state = 2;
    throw;
  }
}

asio::awaitable<int> awaits(concurrent_future<int> cf)
{
  co_return co_await std::move(cf);
}

asio::awaitable<std::unique_ptr<int>> move_only()
{
  co_return std::make_unique<int>(7);
}

} // namespace

BOOST_AUTO_TEST_CASE(set_and_get_across_threads)
{
  auto cf = concurrent_future<std::string>::create();
  BOOST_TEST(!cf.done());
  BOOST_TEST(repr(cf) == "<concurrent_future state=pending>");
  std::thread t([cf]() mutable {
    std::this_thread::sleep_for(10ms);
    cf.set_result("A");
  });
  BOOST_TEST(cf.result() == "A");
  t.join();
  BOOST_TEST(cf.done());
  BOOST_TEST(!cf.cancelled());
  BOOST_TEST(!cf.exception());
  BOOST_TEST(repr(cf) == "<concurrent_future state=finished result='A'>");
  BOOST_CHECK_THROW(cf.set_result("B"), asioloop::invalid_state_error);
  BOOST_TEST(!cf.cancel());
}

BOOST_AUTO_TEST_CASE(result_with_timeout)
{
  auto cf = concurrent_future<int>::create();
  try
  {
    cf.result(20ms);
    BOOST_FAIL("no timeout");
  }
  catch (const asioloop::timeout_error& e)
  {
    BOOST_TEST(std::string(e.what()).find("timed out after 0.02 s") != std::string::npos);
  }
  BOOST_CHECK_THROW(cf.exception(1ms), asioloop::timeout_error);
  BOOST_TEST(!cf.wait_for(1ms));
  cf.set_result(3);
  BOOST_TEST(cf.result(1ms) == 3);
  BOOST_TEST(cf.wait_for(0s));
}

BOOST_AUTO_TEST_CASE(exceptions_and_cancel)
{
  auto cf = concurrent_future<void>::create();
  cf.set_exception(std::make_exception_ptr(std::runtime_error("boom")));
  BOOST_CHECK_THROW(cf.result(), std::runtime_error);
  BOOST_TEST(static_cast<bool>(cf.exception()));
  BOOST_TEST(repr(cf)
      == "<concurrent_future state=finished exception=std::runtime_error('boom')>");

  auto c = concurrent_future<int>::create();
  // Boost.Test's assertions are not thread-safe: the waiter only records.
  std::string seen = "no cancelled_error";
  std::thread waiter([c, &seen] {
    try
    {
      c.result();
    }
    catch (const asioloop::cancelled_error& e)
    {
      seen = e.what();
    }
  });
  std::this_thread::sleep_for(5ms);
  const bool first = c.cancel("stop");
  const bool again = c.cancel(); // cancelling again: still cancelled
  waiter.join();
  BOOST_TEST(first);
  BOOST_TEST(again);
  BOOST_TEST(seen == "stop");
  BOOST_TEST(c.cancelled());
  BOOST_TEST(repr(c) == "<concurrent_future state=cancelled>");
  BOOST_CHECK_THROW(c.exception(), asioloop::cancelled_error);
  BOOST_CHECK_THROW(c.set_result(1), asioloop::invalid_state_error);
}

BOOST_AUTO_TEST_CASE(running_cannot_be_cancelled)
{
  auto cf = concurrent_future<int>::create();
  BOOST_TEST(cf.set_running_or_notify_cancel());
  BOOST_TEST(cf.running());
  BOOST_TEST(repr(cf) == "<concurrent_future state=running>");
  BOOST_TEST(!cf.cancel());
  cf.set_result(1);
  auto c = concurrent_future<int>::create();
  c.cancel();
  BOOST_TEST(!c.set_running_or_notify_cancel());
}

BOOST_AUTO_TEST_CASE(done_callbacks_run_on_the_completing_thread_in_order)
{
  auto cf = concurrent_future<int>::create();
  std::vector<std::string> log;
  std::thread::id ran_on;
  cf.add_done_callback([&](const concurrent_future<int>& f) {
    ran_on = std::this_thread::get_id();
    log.push_back("1:" + std::to_string(f.result()));
  });
  cf.add_done_callback([](const concurrent_future<int>&) { throw std::runtime_error("ignored"); });
  cf.add_done_callback(
      [&](const concurrent_future<int>&, int n) { log.push_back("3:" + std::to_string(n)); }, 9);
  std::thread t([cf]() mutable { cf.set_result(5); });
  const auto completer = t.get_id();
  t.join();
  BOOST_TEST(ran_on == completer);
  BOOST_TEST(log == (std::vector<std::string>{"1:5", "3:9"}), boost::test_tools::per_element());
  // Added to a done future: runs at once, here.
  cf.add_done_callback([&](const concurrent_future<int>&) { log.push_back("late"); });
  BOOST_TEST(log.back() == "late");
}

BOOST_AUTO_TEST_CASE(run_coroutine_threadsafe_gives_the_result)
{
  loop_thread t;
  auto f = run_coroutine_threadsafe(a(50ms), t.loop());
  BOOST_TEST(repr(f) == "<concurrent_future state=pending>");
  BOOST_TEST(f.result(10s) == "A");
  // On a temporary, result() hands the value over.
  std::string s = run_coroutine_threadsafe(a(0ms), t.loop()).result();
  BOOST_TEST(s == "A");
  auto p = run_coroutine_threadsafe(move_only(), t.loop()).result();
  BOOST_TEST(*p == 7);
  auto e = run_coroutine_threadsafe(fails(), t.loop());
  BOOST_CHECK_THROW(e.result(10s), std::runtime_error);
}

BOOST_AUTO_TEST_CASE(cancel_cancels_the_task_in_the_loop)
{
  loop_thread t;
  auto state = std::make_shared<std::atomic<int>>(0);
  auto f = run_coroutine_threadsafe(sleeps_then_flags(1h, state), t.loop());
  // Let the task start (the loop runs work in order: once a later
  // coroutine has run, this one has started), then cancel from this thread.
  run_coroutine_threadsafe(a(0ms), t.loop()).result();
  BOOST_TEST(f.cancel());
  BOOST_TEST(f.cancelled());
  BOOST_CHECK_THROW(f.result(), asioloop::cancelled_error);
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (*state == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(1ms);
  BOOST_TEST(state->load() == 2);

  // Cancelled before the loop got to it: the coroutine never starts. The
  // loop is held busy meanwhile, so that it cannot get to it first.
  auto never = std::make_shared<std::atomic<int>>(0);
  auto hold = std::make_shared<std::latch>(1);
  t.loop().call_soon_threadsafe([hold] { hold->wait(); });
  auto g = run_coroutine_threadsafe(sleeps_then_flags(0ms, never), t.loop());
  g.cancel();
  hold->count_down();
  run_coroutine_threadsafe(a(0ms), t.loop()).result(); // one more trip
  BOOST_TEST(never->load() == 0);
}

BOOST_AUTO_TEST_CASE(a_task_cancelled_in_the_loop_cancels_the_future)
{
  event_loop loop;
  auto state = std::make_shared<std::atomic<int>>(0);
  auto f = run_coroutine_threadsafe(sleeps_then_flags(1h, state), loop);
  loop.call_later(10ms, [&] {
    for (auto& t : asioloop::all_tasks())
      t.cancel("from the loop");
  });
  run_until(loop, [&] { return f.done(); });
  BOOST_TEST(f.cancelled());
  try
  {
    f.result();
  }
  catch (const asioloop::cancelled_error& e)
  {
    BOOST_TEST(std::string(e.what()) == "from the loop");
  }
}

BOOST_AUTO_TEST_CASE(result_on_the_loops_own_thread_throws)
{
  event_loop loop;
  auto f = run_coroutine_threadsafe(a(0ms), loop);
  std::string error;
  loop.call_soon([&] {
    try
    {
      f.result();
    }
    catch (const asioloop::invalid_state_error& e)
    {
      error = e.what();
    }
  });
  run_until(loop, [&] { return f.done(); });
  BOOST_TEST(error.find("co_await") != std::string::npos);
  // Once done, result() is fine anywhere.
  loop.call_soon([&] { error = f.result(); });
  run_until(loop, [&] { return error == "A"; });
}

BOOST_AUTO_TEST_CASE(awaiting_in_loop_work_does_not_block_the_loop)
{
  event_loop loop;
  auto cf = concurrent_future<int>::create();
  std::atomic<int> ticks{0};
  std::function<void()> tick = [&] {
    if (++ticks < 5)
      loop.call_later(1ms, tick);
  };
  loop.call_soon(tick);
  // The result comes only once the loop has ticked on while awaiting it.
  std::thread producer([cf, &ticks]() mutable {
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (ticks < 5 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(1ms);
    cf.set_result(42);
  });
  BOOST_TEST(loop.run_until_complete(awaits(cf)) == 42);
  producer.join();
  BOOST_TEST(ticks == 5);
}

BOOST_AUTO_TEST_CASE(cancelling_the_awaiting_task_cancels_the_future)
{
  event_loop loop;
  auto cf = concurrent_future<int>::create();
  auto t = loop.create_task(awaits(cf));
  loop.call_later(5ms, [&] { t.cancel(); });
  run_until(loop, [&] { return t.done(); });
  BOOST_TEST(t.cancelled());
  BOOST_TEST(cf.cancelled());
}

BOOST_AUTO_TEST_CASE(awaiting_a_failed_or_cancelled_future_in_a_task)
{
  event_loop loop;
  auto cf = concurrent_future<int>::create();
  auto t = loop.create_task(awaits(cf));
  std::thread([cf]() mutable {
    cf.set_exception(std::make_exception_ptr(std::runtime_error("far")));
  }).join();
  run_until(loop, [&] { return t.done(); });
  BOOST_CHECK_THROW(t.result(), std::runtime_error);

  auto c = concurrent_future<int>::create();
  auto u = loop.create_task(awaits(c));
  std::thread([c]() mutable { c.cancel(); }).join();
  run_until(loop, [&] { return u.done(); });
  BOOST_TEST(u.cancelled());
}

BOOST_AUTO_TEST_CASE(awaiting_outside_loop_work)
{
  // A plain io_context's coroutine.
  asio::io_context ioc;
  auto cf = concurrent_future<int>::create();
  auto r = asio::co_spawn(ioc, awaits(cf), asio::use_future);
  std::thread ctx([&] {
    auto work = asio::make_work_guard(ioc);
    std::thread([cf]() mutable { cf.set_result(8); }).join();
    ioc.run_for(100ms);
  });
  ctx.join();
  BOOST_TEST(r.get() == 8);
  // use_future, from this thread.
  auto g = concurrent_future<int>::create();
  auto sf = g(asio::use_future);
  std::thread([g]() mutable { g.set_result(9); }).join();
  BOOST_TEST(sf.get() == 9);
}

BOOST_AUTO_TEST_CASE(virtual_time_waits_for_the_other_thread)
{
  // The loop waits for the result instead of jumping its clock to the 10 s
  // sleep that another task is in.
  event_loop loop{asioloop::virtual_clock};
  const auto start = loop.time();
  auto cf = concurrent_future<int>::create();
  auto sleeper = loop.create_task(a(10'000ms));
  std::thread producer([cf]() mutable {
    std::this_thread::sleep_for(30ms);
    cf.set_result(1);
  });
  BOOST_TEST(loop.run_until_complete(awaits(cf)) == 1);
  producer.join();
  BOOST_TEST((loop.time() - start < 1s));
  BOOST_TEST(loop.run_until_complete(sleeper) == "A");
}

BOOST_AUTO_TEST_CASE(run_coroutine_threadsafe_from_the_loop_itself)
{
  event_loop loop;
  auto body = [&]() -> asio::awaitable<std::string> {
    auto f = run_coroutine_threadsafe(a(1ms), loop);
    co_return co_await std::move(f);
  };
  BOOST_TEST(loop.run_until_complete(body()) == "A");
}

BOOST_AUTO_TEST_CASE(closed_loops)
{
  auto loop = std::make_unique<event_loop>();
  loop->close();
  BOOST_CHECK_THROW(run_coroutine_threadsafe(a(0ms), *loop), asioloop::loop_closed_error);

  // Closed with the task pending: the future fails instead of hanging.
  event_loop other;
  other.set_exception_handler([](event_loop&, const asioloop::error_context&) {});
  auto f = run_coroutine_threadsafe(a(1h), other);
  other.call_soon([&] { other.stop(); });
  other.run_forever();
  auto g = run_coroutine_threadsafe(a(1h), other); // queued, never started
  other.close();
  BOOST_CHECK_THROW(f.result(1s), asioloop::loop_closed_error);
  BOOST_CHECK_THROW(g.result(1s), asioloop::loop_closed_error);
}
