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

#include <algorithm>
#include <csignal>
#include <memory>
#include <sstream>
#include <vector>
#include <stdexcept>
#include <string>

namespace asio = boost::asio;
using asioloop::event_loop;
using asioloop::task;
using asioloop::test::repr;
using asioloop::test::run_until;
using asioloop::test::strings;
using namespace std::chrono_literals;

namespace {

asio::awaitable<std::string> a()
{
  co_await asioloop::sleep(1s);
  co_return "A";
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

BOOST_AUTO_TEST_CASE(done_callbacks_are_scheduled_as_the_coroutine_returns)
{
  // As in asyncio: the step in which the coroutine returns sets the result
  // and schedules the done callbacks, ahead of what later callbacks of the
  // same iteration schedule.
  event_loop loop;
  strings log;
  auto body = []() -> asio::awaitable<void> {
    co_await asioloop::sleep(0s); // returns on the second iteration
  };
  auto t = loop.create_task(body());
  t.add_done_callback([&](const asioloop::future<void>&) { log.push_back("done"); });
  // Runs on the second iteration, after the task's last step.
  loop.call_soon([&] {
    loop.call_soon([&] { loop.call_soon([&] { log.push_back("later"); }); });
  });
  run_until(loop, [&] { return log.size() == 2; });
  BOOST_TEST(log == (strings{"done", "later"}), boost::test_tools::per_element());
}

namespace {

// A result co_spawn cannot default-construct, and cannot copy.
struct no_default
{
  explicit no_default(int v) : value(std::make_unique<int>(v)) {}
  std::unique_ptr<int> value;
};

asio::awaitable<no_default> make_no_default(int v, bool fail)
{
  co_await asioloop::sleep(v == 1 ? 1h : 0s); // 1: waits to be cancelled
  if (fail)
    throw std::runtime_error("no value");
  co_return no_default(v);
}

} // namespace

BOOST_AUTO_TEST_CASE(a_result_without_a_default_constructor)
{
  event_loop loop;
  auto ok = loop.create_task(make_no_default(7, false));
  auto bad = loop.create_task(make_no_default(0, true));
  no_default r = loop.run_until_complete(ok);
  BOOST_TEST(*r.value == 7);
  BOOST_CHECK_THROW(loop.run_until_complete(bad), std::runtime_error);
  auto cancelled = loop.create_task(make_no_default(1, false));
  loop.call_soon([&] { cancelled.cancel("stop"); });
  BOOST_CHECK_THROW(loop.run_until_complete(cancelled), asioloop::cancelled_error);
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

BOOST_AUTO_TEST_SUITE(lifetime)

BOOST_AUTO_TEST_CASE(all_tasks_lists_the_pending_ones)
{
  event_loop loop{asioloop::virtual_clock};
  auto t1 = loop.create_task(a(), "first");
  auto t2 = loop.create_task(a(), "second");
  std::vector<std::string> names;
  std::size_t after = 99;
  auto body = [&]() -> asio::awaitable<void> {
    for (auto& t : asioloop::all_tasks())
      names.push_back(t.get_name());
    co_await std::move(t1);
    co_await std::move(t2);
    after = asioloop::all_tasks().size(); // only this one is left
  };
  loop.run_until_complete(body());
  std::sort(names.begin(), names.end());
  BOOST_TEST_REQUIRE(names.size() == 3u); // the two, and the one listing them
  BOOST_TEST(names[0].rfind("Task-", 0) == 0u); // run_until_complete's task
  BOOST_TEST(names[1] == "first");
  BOOST_TEST(names[2] == "second");
  BOOST_TEST(after == 1u);
  BOOST_CHECK_THROW(asioloop::all_tasks(), asioloop::no_running_loop_error);
  asioloop::task_ref ref = t1;
  BOOST_TEST(ref.done());
  BOOST_TEST(repr(ref) == "<task finished name='first' result='A'>");
}

BOOST_AUTO_TEST_CASE(a_loop_closed_with_pending_tasks_reports_and_destroys_them)
{
  // Each token is a parameter, so it lives in its coroutine's frame. One
  // task is suspended; the other never started (its coroutine waits in the
  // task, which the handle keeps): closing the loop destroys both frames, so
  // that their destructors run now (a run_coroutine_threadsafe future, for
  // one, is failed by them).
  auto started = std::make_shared<int>(0);
  auto unstarted = std::make_shared<int>(0);
  std::weak_ptr<int> watch_started = started;
  std::weak_ptr<int> watch_unstarted = unstarted;
  std::vector<std::string> reports;
  {
    event_loop loop{asioloop::virtual_clock};
    loop.set_exception_handler([&](event_loop&, const asioloop::error_context& c) {
      reports.push_back(c.message);
    });
    auto body = [](std::shared_ptr<int>) -> asio::awaitable<void> {
      co_await asioloop::sleep(1h); // never reached: the loop closes first
    };
    auto sleeper = loop.create_task(body(started), "sleeper");
    loop.call_soon([&] { loop.call_soon([&] { loop.stop(); }); });
    loop.run_forever();
    auto never = loop.create_task(body(unstarted), "unstarted");
    started.reset();
    unstarted.reset();
    BOOST_TEST(!watch_started.expired());
    BOOST_TEST(!watch_unstarted.expired());
    loop.close();
    BOOST_TEST(watch_started.expired());
    BOOST_TEST(watch_unstarted.expired());
    BOOST_TEST(!sleeper.done());
    BOOST_TEST(!never.done());
  }
  BOOST_TEST_REQUIRE(reports.size() == 2u);
  std::sort(reports.begin(), reports.end());
  BOOST_TEST(reports[0] == "Task was destroyed but it is pending! task: <task pending name='sleeper'>");
  BOOST_TEST(reports[1] == "Task was destroyed but it is pending! task: <task pending name='unstarted'>");
}

BOOST_AUTO_TEST_CASE(a_failed_task_nobody_awaited_is_reported)
{
  event_loop loop;
  std::vector<asioloop::error_context> reports;
  loop.set_exception_handler([&](event_loop&, const asioloop::error_context& c) {
    reports.push_back(c);
  });
  auto body = []() -> asio::awaitable<void> {
    throw std::runtime_error("lost");
    co_return;
  };
  bool done = false;
  loop.call_soon([&] {
    loop.create_task(body(), "careless"); // handle dropped
    loop.call_soon([&] { loop.call_soon([&] { done = true; }); });
  });
  run_until(loop, [&] { return done; });
  BOOST_TEST_REQUIRE(reports.size() == 1u);
  BOOST_TEST(reports[0].message.find("Task exception was never retrieved") == 0);
  BOOST_TEST(reports[0].message.find("name='careless'") != std::string::npos);
  BOOST_CHECK_THROW(std::rethrow_exception(reports[0].exception), std::runtime_error);

  // A retrieved exception is not reported.
  reports.clear();
  {
    auto t = loop.create_task(body());
    BOOST_CHECK_THROW(loop.run_until_complete(t), std::runtime_error);
  }
  BOOST_TEST(reports.empty());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(run)

asio::awaitable<int> answer_after_a_while()
{
  co_await asioloop::sleep(1ms);
  co_return 42;
}

BOOST_AUTO_TEST_CASE(returns_the_result_and_closes)
{
  BOOST_TEST(asioloop::run(answer_after_a_while()) == 42);
  BOOST_CHECK_THROW(asioloop::get_running_loop(), asioloop::no_running_loop_error);
}

asio::awaitable<void> fails_in_main()
{
  co_await asioloop::sleep(0s);
  throw std::domain_error("main failed");
}

BOOST_AUTO_TEST_CASE(rethrows_mains_exception)
{
  BOOST_CHECK_THROW(asioloop::run(fails_in_main()), std::domain_error);
}

BOOST_AUTO_TEST_CASE(leftover_tasks_are_cancelled_and_awaited)
{
  bool cleaned_up = false;
  auto leftover = [&]() -> asio::awaitable<void> {
    try
    {
      co_await asioloop::sleep(1h);
    }
    catch (const boost::system::system_error&)
    {
      cleaned_up = true;
      throw;
    }
  };
  auto main = [&]() -> asio::awaitable<int> {
    asioloop::create_task(leftover());
    co_await asioloop::sleep(1ms);
    co_return 7;
  };
  BOOST_TEST(asioloop::run(main()) == 7);
  BOOST_TEST(cleaned_up);
}

BOOST_AUTO_TEST_CASE(sigint_cancels_the_main_task)
{
  auto main = []() -> asio::awaitable<void> {
    asioloop::get_running_loop().call_later(1ms, [] { std::raise(SIGINT); });
    co_await asioloop::sleep(1h);
  };
  BOOST_CHECK_EXCEPTION(asioloop::run(main()), asioloop::cancelled_error,
      [](const asioloop::cancelled_error& e) {
        return std::string(e.what()) == "interrupted by SIGINT";
      });
}

BOOST_AUTO_TEST_CASE(not_from_a_running_loop)
{
  event_loop loop;
  std::string error;
  loop.call_soon([&] {
    try
    {
      asioloop::run(answer_after_a_while());
    }
    catch (const std::runtime_error& e)
    {
      error = e.what();
    }
    loop.stop();
  });
  loop.run_forever();
  BOOST_TEST(error == "asioloop::run() cannot be called from a running event loop");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(current)

BOOST_AUTO_TEST_CASE(current_task_follows_the_coroutine_across_suspensions)
{
  event_loop loop{asioloop::virtual_clock};
  auto f = loop.create_future<int>();
  strings seen;
  auto name_of_current = [] {
    auto t = asioloop::current_task();
    return t ? t->get_name() : std::string("none");
  };
  auto body = [&]() -> asio::awaitable<void> {
    seen.push_back(name_of_current());      // first step
    co_await asioloop::sleep(1s);
    seen.push_back(name_of_current());      // after a timer
    co_await asioloop::sleep(0s);
    seen.push_back(name_of_current());      // after a plain yield
    co_await std::move(f);
    seen.push_back(name_of_current());      // after a future
    asio::steady_timer timer(co_await asio::this_coro::executor, 1ms);
    co_await timer.async_wait(asio::use_awaitable);
    seen.push_back(name_of_current());      // after an Asio operation
  };
  auto t = loop.create_task(body(), "worker");
  loop.call_later(2s, [&] {
    seen.push_back(name_of_current()); // a plain callback is in no task
    f.set_result(1);
  });
  loop.run_until_complete(t);
  BOOST_TEST(seen == (strings{"worker", "worker", "worker", "none", "worker", "worker"}),
      boost::test_tools::per_element());
  BOOST_CHECK_THROW(asioloop::current_task(), asioloop::no_running_loop_error);
}

BOOST_AUTO_TEST_CASE(each_task_sees_itself)
{
  event_loop loop{asioloop::virtual_clock};
  strings seen;
  auto body = [&](std::chrono::seconds d) -> asio::awaitable<void> {
    co_await asioloop::sleep(d);
    seen.push_back(asioloop::current_task()->get_name());
  };
  auto a1 = loop.create_task(body(2s), "slow");
  auto a2 = loop.create_task(body(1s), "fast");
  loop.run_until_complete(a1);
  BOOST_TEST(seen == (strings{"fast", "slow"}), boost::test_tools::per_element());
  BOOST_TEST(a2.done());
}

BOOST_AUTO_TEST_SUITE_END()
