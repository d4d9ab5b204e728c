//
// test/task_group.cpp
//
// task_group: waiting for all, the first failure cancelling the rest, one
// failure rethrown as itself and several as an exception_group, the parent's
// cancellation, and a group dropped without wait(). On virtual time.
//

#include <asioloop/task_group.hpp>

#include "support/loop_fixture.hpp"

#include <asioloop/sleep.hpp>

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace asio = boost::asio;
using asioloop::event_loop;
using asioloop::task_group;
using asioloop::test::elapsed;
using asioloop::test::strings;
using namespace std::chrono_literals;

namespace {

asio::awaitable<std::string> after(std::chrono::milliseconds d, std::string v,
    std::shared_ptr<strings> log)
{
  try
  {
    co_await asioloop::sleep(d);
  }
  catch (...)
  {
    log->push_back(v + " cancelled");
    throw;
  }
  log->push_back(v);
  co_return v;
}

asio::awaitable<int> fail_after(std::chrono::milliseconds d, std::string what)
{
  co_await asioloop::sleep(d);
  throw std::runtime_error(what);
}

asio::awaitable<std::string> all_succeed(std::shared_ptr<strings> log)
{
  task_group tg;
  auto a = tg.create_task(after(20ms, "a", log));
  auto b = tg.create_task(after(10ms, "b", log));
  BOOST_TEST(tg.size() == 2u);
  co_await tg.wait();
  BOOST_TEST(tg.size() == 0u);
  co_return a.result() + b.result();
}

asio::awaitable<void> one_fails(std::shared_ptr<strings> log)
{
  task_group tg;
  tg.create_task(after(50ms, "slow", log));
  tg.create_task(fail_after(10ms, "broken"));
  tg.create_task(after(5ms, "quick", log));
  co_await tg.wait();
}

asio::awaitable<void> two_fail()
{
  task_group tg;
  tg.create_task(fail_after(10ms, "one"));
  tg.create_task(fail_after(10ms, "two"));
  co_await tg.wait();
}

asio::awaitable<void> wait_long(std::shared_ptr<strings> log)
{
  task_group tg;
  tg.create_task(after(1s, "x", log));
  tg.create_task(after(2s, "y", log));
  co_await tg.wait();
}

asio::awaitable<void> spawns_more(std::shared_ptr<strings> log, task_group& tg)
{
  co_await asioloop::sleep(5ms);
  tg.create_task(after(10ms, "late", log));
}

asio::awaitable<void> grows_while_waiting(std::shared_ptr<strings> log)
{
  task_group tg;
  tg.create_task(spawns_more(log, tg));
  co_await tg.wait();
}

asio::awaitable<void> after_failure(std::shared_ptr<std::string> seen)
{
  task_group tg;
  tg.create_task(fail_after(1ms, "x"));
  co_await asioloop::sleep(10ms);
  try
  {
    tg.create_task(fail_after(1ms, "y"));
  }
  catch (const asioloop::invalid_state_error& e)
  {
    *seen = e.what();
  }
  try
  {
    co_await tg.wait();
  }
  catch (const std::runtime_error&)
  {
  }
  try
  {
    tg.create_task(fail_after(1ms, "z"));
  }
  catch (const asioloop::invalid_state_error& e)
  {
    *seen += " / ";
    *seen += e.what();
  }
}

asio::awaitable<void> abandons(std::shared_ptr<strings> log)
{
  task_group tg;
  tg.create_task(after(100ms, "orphan", log));
  co_await asioloop::sleep(1ms);
  throw std::logic_error("left before wait()");
}

} // namespace

BOOST_AUTO_TEST_CASE(wait_returns_when_every_task_is_done)
{
  event_loop loop{asioloop::virtual_clock};
  auto log = std::make_shared<strings>();
  const auto t0 = loop.time();
  BOOST_TEST(loop.run_until_complete(all_succeed(log)) == "ab");
  BOOST_TEST(*log == (strings{"b", "a"}), boost::test_tools::per_element());
  BOOST_TEST(elapsed(loop, t0) == 20ms);
}

BOOST_AUTO_TEST_CASE(the_first_failure_cancels_the_rest_and_is_rethrown)
{
  event_loop loop{asioloop::virtual_clock};
  auto log = std::make_shared<strings>();
  const auto t0 = loop.time();
  BOOST_CHECK_EXCEPTION(loop.run_until_complete(one_fails(log)), std::runtime_error,
      [](const std::runtime_error& e) { return std::string(e.what()) == "broken"; });
  BOOST_TEST(*log == (strings{"quick", "slow cancelled"}), boost::test_tools::per_element());
  BOOST_TEST(elapsed(loop, t0) == 10ms);
}

BOOST_AUTO_TEST_CASE(several_failures_make_an_exception_group)
{
  event_loop loop{asioloop::virtual_clock};
  try
  {
    loop.run_until_complete(two_fail());
    BOOST_FAIL("the group should fail");
  }
  catch (const asioloop::exception_group& g)
  {
    BOOST_TEST(std::string(g.what()) == "unhandled errors in a task_group (2 sub-exceptions)");
    BOOST_REQUIRE(g.exceptions().size() == 2u);
    strings whats;
    for (auto& e : g.exceptions())
      try
      {
        std::rethrow_exception(e);
      }
      catch (const std::runtime_error& x)
      {
        whats.push_back(x.what());
      }
    BOOST_TEST(whats == (strings{"one", "two"}), boost::test_tools::per_element());
  }
}

BOOST_AUTO_TEST_CASE(cancelling_the_waiter_cancels_the_group_and_waits)
{
  event_loop loop{asioloop::virtual_clock};
  auto log = std::make_shared<strings>();
  auto t = loop.create_task(wait_long(log));
  loop.call_later(100ms, [t]() mutable { t.cancel("shutdown"); });
  try
  {
    loop.run_until_complete(t);
    BOOST_FAIL("the waiter should be cancelled");
  }
  catch (const asioloop::cancelled_error& e)
  {
    BOOST_TEST(std::string(e.what()) == "shutdown");
  }
  // Both members were cancelled and had finished before the waiter ended.
  BOOST_TEST(*log == (strings{"x cancelled", "y cancelled"}), boost::test_tools::per_element());
  BOOST_TEST(t.cancelled());
}

BOOST_AUTO_TEST_CASE(tasks_created_during_wait_are_waited_for)
{
  event_loop loop{asioloop::virtual_clock};
  auto log = std::make_shared<strings>();
  const auto t0 = loop.time();
  loop.run_until_complete(grows_while_waiting(log));
  BOOST_TEST(*log == strings{"late"}, boost::test_tools::per_element());
  BOOST_TEST(elapsed(loop, t0) == 15ms);
}

BOOST_AUTO_TEST_CASE(a_failed_or_finished_group_takes_no_new_tasks)
{
  event_loop loop{asioloop::virtual_clock};
  auto seen = std::make_shared<std::string>();
  loop.run_until_complete(after_failure(seen));
  BOOST_TEST(*seen
      == "task_group::create_task() on a group that is shutting down (a task "
         "failed, or it was cancelled) / task_group::create_task() on a "
         "finished group: its wait() has ended");
}

BOOST_AUTO_TEST_CASE(a_group_left_without_wait_cancels_its_tasks)
{
  event_loop loop{asioloop::virtual_clock};
  auto log = std::make_shared<strings>();
  BOOST_CHECK_THROW(loop.run_until_complete(abandons(log)), std::logic_error);
  auto none = [](event_loop& l) -> asio::awaitable<void> { co_await asioloop::sleep(1ms); };
  loop.run_until_complete(none(loop));
  BOOST_TEST(*log == strings{"orphan cancelled"}, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_group_needs_a_loop)
{
  BOOST_CHECK_THROW(task_group{}, asioloop::no_running_loop_error);
}
