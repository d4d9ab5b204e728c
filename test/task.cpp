//
// test/task.cpp
//
// task<T>: scheduling, names, results and exceptions, done callbacks,
// cancellation in each kind of suspension, and run_until_complete.
//

#include <asioloop/task.hpp>

#include "support/loop_fixture.hpp"

#include <asioloop/sleep.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/test/unit_test.hpp>

#include <sstream>
#include <stdexcept>
#include <string>

namespace asio = boost::asio;
using asioloop::event_loop;
using asioloop::task;
using asioloop::test::run_until;
using asioloop::test::strings;
using namespace std::chrono_literals;

namespace {

asio::awaitable<std::string> a()
{
  co_await asioloop::sleep(1s);
  co_return "A";
}

template <typename T>
std::string repr(const T& x)
{
  std::ostringstream os;
  os << x;
  return os.str();
}

} // namespace

BOOST_AUTO_TEST_CASE(a_task_starts_on_the_next_iteration)
{
  event_loop loop;
  strings log;
  // The lambda outlives the coroutine: a coroutine lambda's captures live
  // in the lambda object, not in the coroutine frame.
  auto body = [&]() -> asio::awaitable<void> {
    log.push_back("task");
    co_return;
  };
  loop.call_soon([&] {
    auto t = loop.create_task(body());
    loop.call_soon([&] { log.push_back("soon"); });
    log.push_back("creator");
  });
  run_until(loop, [&] { return log.size() == 3; });
  BOOST_TEST(log == (strings{"creator", "task", "soon"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(names_and_repr)
{
  event_loop loop{asioloop::virtual_clock};
  auto t1 = loop.create_task(a());
  auto t2 = loop.create_task(a());
  const auto n1 = std::stoul(t1.get_name().substr(5));
  BOOST_TEST(t1.get_name().rfind("Task-", 0) == 0u);
  BOOST_TEST(t2.get_name() == "Task-" + std::to_string(n1 + 1));
  auto named = loop.create_task(a(), "worker");
  BOOST_TEST(named.get_name() == "worker");
  named.set_name("renamed");
  BOOST_TEST(repr(named) == "<task pending name='renamed'>");
  BOOST_TEST(loop.run_until_complete(named) == "A");
  BOOST_TEST(repr(named) == "<task finished name='renamed' result='A'>");
}

BOOST_AUTO_TEST_CASE(the_walkthroughs_done_callbacks)
{
  event_loop loop{asioloop::virtual_clock};
  strings log;
  auto t = loop.create_task(a());
  t.add_done_callback([&](const asioloop::future<std::string>& f) {
    log.push_back("Result: " + f.result());
  });
  t.add_done_callback(
      [&](const asioloop::future<std::string>& f, int n) {
        log.push_back("Result: " + f.result() + ", N: " + std::to_string(n));
      },
      1);
  auto awaiter = [&]() -> asio::awaitable<std::string> { co_return co_await std::move(t); };
  BOOST_TEST(loop.run_until_complete(awaiter()) == "A");
  BOOST_TEST(log == (strings{"Result: A", "Result: A, N: 1"}), boost::test_tools::per_element());
  BOOST_TEST(t.done());
}

BOOST_AUTO_TEST_CASE(an_exception_ends_the_task_failed)
{
  event_loop loop;
  auto body = []() -> asio::awaitable<int> {
    throw std::logic_error("bad");
    co_return 0;
  };
  auto t = loop.create_task(body());
  BOOST_CHECK_THROW(loop.run_until_complete(t), std::logic_error);
  BOOST_TEST(t.done());
  BOOST_TEST(!t.cancelled());
  BOOST_TEST(static_cast<bool>(t.exception()));
}

BOOST_AUTO_TEST_CASE(an_unreferenced_task_runs_to_completion)
{
  event_loop loop{asioloop::virtual_clock};
  bool finished = false;
  auto body = [&]() -> asio::awaitable<void> {
    co_await asioloop::sleep(10s);
    finished = true;
  };
  loop.call_soon([&] {
    loop.create_task(body()); // the handle is dropped at once
  });
  run_until(loop, [&] { return finished; });
}

BOOST_AUTO_TEST_CASE(create_task_outside_a_loop_throws)
{
  BOOST_CHECK_EXCEPTION(asioloop::create_task(a()), asioloop::no_running_loop_error,
      [](const std::exception& e) { return std::string(e.what()) == "no running event loop"; });
}

BOOST_AUTO_TEST_SUITE(cancellation)

BOOST_AUTO_TEST_CASE(while_sleeping)
{
  event_loop loop{asioloop::virtual_clock};
  std::string seen;
  auto body = [&]() -> asio::awaitable<int> {
    try
    {
      co_await asioloop::sleep(1h);
    }
    catch (const boost::system::system_error& e)
    {
      seen = e.code() == asio::error::operation_aborted ? "aborted" : "other";
      throw;
    }
    co_return 1;
  };
  auto t = loop.create_task(body());
  loop.call_later(1s, [&] { BOOST_TEST(t.cancel("enough")); });
  BOOST_CHECK_EXCEPTION(loop.run_until_complete(t), asioloop::cancelled_error,
      [](const asioloop::cancelled_error& e) { return std::string(e.what()) == "enough"; });
  BOOST_TEST(seen == "aborted");
  BOOST_TEST(t.cancelled());
  BOOST_TEST(!t.cancel());
}

BOOST_AUTO_TEST_CASE(before_it_starts)
{
  event_loop loop;
  bool ran = false;
  auto body = [&]() -> asio::awaitable<void> {
    ran = true;
    co_return;
  };
  auto t = loop.create_task(body());
  BOOST_TEST(t.cancel());
  BOOST_CHECK_THROW(loop.run_until_complete(t), asioloop::cancelled_error);
  BOOST_TEST(!ran);
  BOOST_TEST(t.cancelled());
}

BOOST_AUTO_TEST_CASE(while_waiting_on_an_asio_timer)
{
  event_loop loop;
  auto body = []() -> asio::awaitable<void> {
    asio::steady_timer timer(co_await asio::this_coro::executor, 1h);
    co_await timer.async_wait(asio::use_awaitable);
  };
  auto t = loop.create_task(body());
  loop.call_later(5ms, [&] { t.cancel(); });
  BOOST_CHECK_THROW(loop.run_until_complete(t), asioloop::cancelled_error);
  BOOST_TEST(t.cancelled());
}

BOOST_AUTO_TEST_CASE(while_awaiting_a_future_cancels_the_future)
{
  event_loop loop{asioloop::virtual_clock};
  auto f = loop.create_future<int>();
  auto body = [&]() -> asio::awaitable<int> { co_return co_await std::move(f); };
  auto t = loop.create_task(body());
  loop.call_later(1s, [&] { t.cancel(); });
  BOOST_CHECK_THROW(loop.run_until_complete(t), asioloop::cancelled_error);
  BOOST_TEST(f.cancelled());
  BOOST_TEST(t.cancelled());
}

BOOST_AUTO_TEST_CASE(while_awaiting_another_task_cancels_it)
{
  event_loop loop{asioloop::virtual_clock};
  bool inner_saw_it = false;
  auto inner_body = [&]() -> asio::awaitable<int> {
    try
    {
      co_await asioloop::sleep(1h);
    }
    catch (const boost::system::system_error&)
    {
      inner_saw_it = true;
      throw;
    }
    co_return 1;
  };
  auto inner = loop.create_task(inner_body());
  auto outer_body = [&]() -> asio::awaitable<int> { co_return co_await std::move(inner); };
  auto outer = loop.create_task(outer_body());
  loop.call_later(1s, [&] { outer.cancel(); });
  BOOST_CHECK_THROW(loop.run_until_complete(outer), asioloop::cancelled_error);
  BOOST_TEST(inner_saw_it);
  BOOST_TEST(inner.cancelled());
  BOOST_TEST(outer.cancelled());
}

BOOST_AUTO_TEST_CASE(caught_and_carried_on)
{
  event_loop loop{asioloop::virtual_clock};
  auto body = []() -> asio::awaitable<std::string> {
    bool cancelled = false;
    try
    {
      co_await asioloop::sleep(1h);
    }
    catch (const boost::system::system_error&)
    {
      cancelled = true; // clean up here (C++ allows no co_await in a handler)
    }
    // Go on: Asio needs the reset to let the coroutine await again.
    if (cancelled)
      co_await asio::this_coro::reset_cancellation_state();
    co_await asioloop::sleep(1s);
    co_return "survived";
  };
  auto t = loop.create_task(body());
  loop.call_later(1s, [&] { t.cancel(); });
  BOOST_TEST(loop.run_until_complete(t) == "survived");
  BOOST_TEST(!t.cancelled());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(run_until_complete)

BOOST_AUTO_TEST_CASE(for_a_future)
{
  event_loop loop;
  auto f = loop.create_future<int>();
  loop.call_soon([&] { f.set_result(9); });
  BOOST_TEST(loop.run_until_complete(f) == 9);
}

BOOST_AUTO_TEST_CASE(stopped_before_the_future_completes)
{
  event_loop loop;
  auto f = loop.create_future<int>();
  loop.call_soon([&] { loop.stop(); });
  BOOST_CHECK_EXCEPTION(loop.run_until_complete(f), std::runtime_error,
      [](const std::runtime_error& e) {
        return std::string(e.what()) == "Event loop stopped before Future completed.";
      });
  loop.call_soon([&] { f.set_result(1); });
  BOOST_TEST(loop.run_until_complete(f) == 1);
}

BOOST_AUTO_TEST_SUITE_END()
