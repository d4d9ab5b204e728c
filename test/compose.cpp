//
// test/compose.cpp
//
// gather, wait_for, wait, as_completed and shield: results in order,
// exceptions through every path, every cancellation direction, timeouts at
// the edge. Everything that waits runs on virtual time.
//

#include <asioloop/compose.hpp>

#include "support/loop_fixture.hpp"

#include <asioloop/sleep.hpp>

#include <boost/asio/this_coro.hpp>
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>
#include <variant>
#include <vector>

namespace asio = boost::asio;
using asioloop::event_loop;
using asioloop::future;
using asioloop::task;
using asioloop::test::elapsed;
using asioloop::test::strings;
using namespace std::chrono_literals;

namespace {

asio::awaitable<std::string> after(std::chrono::milliseconds d, std::string v)
{
  co_await asioloop::sleep(d);
  co_return v;
}

asio::awaitable<int> fail_after(std::chrono::milliseconds d, std::string what)
{
  co_await asioloop::sleep(d);
  throw std::runtime_error(what);
}

asio::awaitable<void> nap(std::chrono::milliseconds d)
{
  co_await asioloop::sleep(d);
}

/// Records how a task ended: "done", "cancelled: <msg>", or "failed".
asio::awaitable<std::string> observed(std::chrono::milliseconds d,
    std::shared_ptr<std::string> how)
{
  try
  {
    co_await asioloop::sleep(d);
    *how = "done";
  }
  catch (const asioloop::cancelled_error& e)
  {
    *how = std::string("cancelled: ") + e.what();
    throw;
  }
  catch (const boost::system::system_error&)
  {
    *how = "cancelled: operation_aborted"; // the sleep's own report
    throw;
  }
  co_return "late";
}

/// Catches its cancellation and returns a value anyway.
asio::awaitable<std::string> stubborn(std::chrono::milliseconds d)
{
  try
  {
    co_await asioloop::sleep(d);
  }
  catch (...)
  {
    co_return "kept";
  }
  co_return "finished";
}

struct handler_log
{
  std::vector<std::string> messages;
  void install(event_loop& loop)
  {
    loop.set_exception_handler([this](event_loop&, const asioloop::error_context& c) {
      messages.push_back(c.message);
    });
  }
};

} // namespace

// ---- gather ---------------------------------------------------------------

asio::awaitable<std::tuple<std::string, std::string>> gather_two()
{
  co_return co_await asioloop::gather(after(2000ms, "A"), after(1000ms, "B"));
}

BOOST_AUTO_TEST_CASE(gather_keeps_the_given_order_and_runs_concurrently)
{
  event_loop loop{asioloop::virtual_clock};
  const auto t0 = loop.time();
  auto [a, b] = loop.run_until_complete(gather_two());
  BOOST_TEST(a == "A");
  BOOST_TEST(b == "B");
  BOOST_TEST(elapsed(loop, t0) == 2000ms);
}

asio::awaitable<void> gather_mixed(event_loop& loop, strings& out)
{
  auto t = loop.create_task(after(10ms, "task"));
  auto f = loop.create_future<int>();
  loop.call_later(5ms, [f]() mutable { f.set_result(7); });
  auto [x, y, z, v] = co_await asioloop::gather(t, f, after(1ms, "aw"), nap(3ms));
  static_assert(std::is_same_v<decltype(v), std::monostate>);
  out = {x, std::to_string(y), z};
}

BOOST_AUTO_TEST_CASE(gather_accepts_tasks_futures_and_awaitables)
{
  event_loop loop{asioloop::virtual_clock};
  strings out;
  loop.run_until_complete(gather_mixed(loop, out));
  BOOST_TEST(out == (strings{"task", "7", "aw"}), boost::test_tools::per_element());
}

asio::awaitable<std::vector<std::string>> gather_range()
{
  std::vector<asio::awaitable<std::string>> aws;
  for (int i = 0; i < 5; ++i)
    aws.push_back(after(std::chrono::milliseconds(50 - 10 * i), std::to_string(i)));
  co_return co_await asioloop::gather(std::move(aws));
}

BOOST_AUTO_TEST_CASE(gather_of_a_range_gives_a_vector_in_order)
{
  event_loop loop{asioloop::virtual_clock};
  BOOST_TEST(loop.run_until_complete(gather_range())
          == (strings{"0", "1", "2", "3", "4"}),
      boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_gather_nobody_holds_still_completes)
{
  // The gather's links to its children do not own it: it must keep itself
  // alive until they are done.
  event_loop loop{asioloop::virtual_clock};
  std::vector<future<int>> children{
      loop.create_future<int>(), loop.create_future<int>(), loop.create_future<int>()};
  std::vector<int> seen;
  asioloop::gather(children).add_done_callback(
      [&](const future<std::vector<int>>& g) { seen = g.result(); });
  loop.call_soon([&] {
    for (int i = 0; i < 3; ++i)
      children[i].set_result(10 + i);
  });
  loop.run_until_complete(nap(1ms));
  BOOST_TEST(seen == (std::vector<int>{10, 11, 12}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_gather_pending_when_its_loop_closes_is_freed)
{
  // A done child keeps a copy of the token in its result; the gather holds
  // the child. Once the loop is closed and the handles are gone, only a
  // leaked gather could still hold the token.
  auto token = std::make_shared<int>(0);
  event_loop loop{asioloop::virtual_clock};
  {
    using item = std::shared_ptr<int>;
    std::vector<future<item>> children{
        loop.create_future<item>(), loop.create_future<item>()};
    auto g = asioloop::gather(children);
    children[0].set_result(token);
    loop.run_until_complete(nap(1ms));
    BOOST_TEST(!g.done());
    BOOST_TEST(token.use_count() == 2);
    loop.close();
  }
  BOOST_TEST(token.use_count() == 1);
}

asio::awaitable<std::size_t> gather_nothing()
{
  auto none = co_await asioloop::gather(std::vector<task<int>>{});
  auto empty = co_await asioloop::gather();
  static_assert(std::tuple_size_v<decltype(empty)> == 0);
  co_return none.size();
}

BOOST_AUTO_TEST_CASE(gather_of_nothing_is_done_at_once)
{
  event_loop loop{asioloop::virtual_clock};
  const auto t0 = loop.time();
  BOOST_TEST(loop.run_until_complete(gather_nothing()) == 0u);
  BOOST_TEST(elapsed(loop, t0) == 0ms);
}

BOOST_AUTO_TEST_CASE(gather_raises_the_first_exception_and_reports_later_ones)
{
  handler_log log; // outlives the loop, whose close() may report
  event_loop loop{asioloop::virtual_clock};
  log.install(loop);
  auto slow_ok = loop.create_task(after(30ms, "ok"));
  auto g = asioloop::gather(fail_after(10ms, "first"), fail_after(20ms, "second"),
      slow_ok);
  const auto t0 = loop.time();
  try
  {
    loop.run_until_complete(g);
    BOOST_FAIL("gather should have failed");
  }
  catch (const std::runtime_error& e)
  {
    BOOST_TEST(std::string(e.what()) == "first");
  }
  BOOST_TEST(elapsed(loop, t0) == 10ms);
  // The other children go on; the second failure is reported, not lost.
  loop.run_until_complete(slow_ok);
  BOOST_TEST(slow_ok.result() == "ok");
  BOOST_REQUIRE(log.messages.size() == 1u);
  BOOST_TEST(log.messages[0].find("after it had already failed") != std::string::npos);
}

asio::awaitable<std::string> describe_outcomes(event_loop& loop)
{
  auto doomed = loop.create_task(after(50ms, "never"));
  loop.call_later(5ms, [doomed]() mutable { doomed.cancel("stop"); });
  auto [a, b, c] = co_await asioloop::gather(asioloop::return_exceptions,
      after(1ms, "A"), fail_after(2ms, "boom"), doomed);
  std::string s = a.value() + ",";
  BOOST_TEST(!b.has_value());
  try
  {
    std::rethrow_exception(b.error());
  }
  catch (const std::runtime_error& e)
  {
    s += e.what();
  }
  BOOST_CHECK_THROW(b.value(), std::runtime_error);
  s += ",";
  try
  {
    c.value();
  }
  catch (const asioloop::cancelled_error& e)
  {
    s += std::string("cancelled ") + e.what();
  }
  co_return s;
}

BOOST_AUTO_TEST_CASE(gather_with_return_exceptions_gives_outcomes)
{
  event_loop loop{asioloop::virtual_clock};
  BOOST_TEST(loop.run_until_complete(describe_outcomes(loop)) == "A,boom,cancelled stop");
}

BOOST_AUTO_TEST_CASE(cancelling_a_gather_cancels_its_children)
{
  event_loop loop{asioloop::virtual_clock};
  auto how1 = std::make_shared<std::string>();
  auto how2 = std::make_shared<std::string>();
  auto done = loop.create_task(after(1ms, "quick"));
  auto t1 = loop.create_task(observed(100ms, how1));
  auto t2 = loop.create_task(observed(200ms, how2));
  auto g = asioloop::gather(t1, t2, done);
  loop.call_later(10ms, [g]() mutable { BOOST_TEST(g.cancel("enough")); });
  BOOST_CHECK_THROW(loop.run_until_complete(g), asioloop::cancelled_error);
  BOOST_TEST(g.cancelled());
  BOOST_TEST(*how1 == "cancelled: operation_aborted");
  loop.run_until_complete(nap(1ms)); // let the second child finish unwinding
  BOOST_TEST(*how2 == "cancelled: operation_aborted");
  BOOST_TEST(t1.cancelled());
  BOOST_TEST(t2.cancelled());
  BOOST_CHECK_EXCEPTION(t2.result(), asioloop::cancelled_error,
      [](const asioloop::cancelled_error& e) { return std::string(e.what()) == "enough"; });
  BOOST_TEST(done.result() == "quick");
  BOOST_TEST(!g.cancel()); // done already
}

asio::awaitable<void> await_gather(std::shared_ptr<std::string> how)
{
  co_await asioloop::gather(observed(100ms, how), after(100ms, "x"));
}

BOOST_AUTO_TEST_CASE(cancelling_the_awaiting_task_cancels_the_children)
{
  event_loop loop{asioloop::virtual_clock};
  auto how = std::make_shared<std::string>();
  auto t = loop.create_task(await_gather(how));
  loop.call_later(10ms, [t]() mutable { t.cancel("outer"); });
  BOOST_CHECK_THROW(loop.run_until_complete(t), asioloop::cancelled_error);
  BOOST_TEST(t.cancelled());
  BOOST_TEST(*how == "cancelled: operation_aborted");
}

BOOST_AUTO_TEST_CASE(a_cancelled_child_cancels_the_gather)
{
  event_loop loop{asioloop::virtual_clock};
  auto child = loop.create_task(after(100ms, "child"));
  auto g = asioloop::gather(child, after(10ms, "other"));
  loop.call_later(5ms, [child]() mutable { child.cancel("child stop"); });
  try
  {
    loop.run_until_complete(g);
    BOOST_FAIL("the gather should be cancelled");
  }
  catch (const asioloop::cancelled_error& e)
  {
    BOOST_TEST(std::string(e.what()) == "child stop");
  }
  BOOST_TEST(g.cancelled());
  loop.run_until_complete(nap(20ms)); // the other child goes on, as in asyncio
}

BOOST_AUTO_TEST_CASE(gather_checks_its_loop)
{
  event_loop loop{asioloop::virtual_clock};
  event_loop other{asioloop::virtual_clock};
  auto f = loop.create_future<int>();
  auto g = other.create_future<int>();
  BOOST_CHECK_THROW(asioloop::gather(f, g), std::invalid_argument);
  const std::vector<future<int>> mixed{f, g};
  BOOST_CHECK_THROW(asioloop::gather(mixed), std::invalid_argument);
  BOOST_CHECK_THROW((void)asioloop::wait(mixed), std::invalid_argument);
  BOOST_CHECK_THROW(asioloop::as_completed(mixed), std::invalid_argument);
  BOOST_CHECK_THROW(asioloop::gather(after(1ms, "x")), asioloop::no_running_loop_error);
  f.set_result(1);
  loop.close();
  BOOST_CHECK_THROW(asioloop::gather(f), asioloop::loop_closed_error);
}

// ---- wait_for -------------------------------------------------------------

asio::awaitable<std::string> wait_for_value()
{
  co_return co_await asioloop::wait_for(after(10ms, "in time"), 1s);
}

BOOST_AUTO_TEST_CASE(wait_for_returns_a_result_in_time)
{
  event_loop loop{asioloop::virtual_clock};
  const auto t0 = loop.time();
  BOOST_TEST(loop.run_until_complete(wait_for_value()) == "in time");
  BOOST_TEST(elapsed(loop, t0) == 10ms);
}

asio::awaitable<std::string> wait_for_too_long(std::shared_ptr<std::string> how)
{
  try
  {
    co_await asioloop::wait_for(observed(1s, how), 100ms);
  }
  catch (const asioloop::timeout_error& e)
  {
    // The work was cancelled and awaited before the timeout is reported.
    co_return *how + " | " + e.what();
  }
  co_return "no timeout";
}

BOOST_AUTO_TEST_CASE(wait_for_cancels_and_awaits_on_timeout)
{
  event_loop loop{asioloop::virtual_clock};
  auto how = std::make_shared<std::string>();
  const auto t0 = loop.time();
  BOOST_TEST(loop.run_until_complete(wait_for_too_long(how))
      == "cancelled: operation_aborted | wait_for(): timed out after 100 ms; the awaited "
         "work was cancelled");
  BOOST_TEST(elapsed(loop, t0) == 100ms);
}

asio::awaitable<std::string> wait_for_future(future<std::string> f)
{
  try
  {
    co_return co_await asioloop::wait_for(f, 100ms);
  }
  catch (const asioloop::timeout_error&)
  {
    co_return "timeout";
  }
}

BOOST_AUTO_TEST_CASE(a_result_ready_when_the_timeout_fires_is_kept)
{
  // The result is set by a timer due at the very moment of the timeout and
  // registered first: equal due times run in order, so the result is there
  // when the timeout fires, and wins.
  event_loop loop{asioloop::virtual_clock};
  auto f = loop.create_future<std::string>();
  loop.call_later(100ms, [f]() mutable { f.set_result("just in time"); });
  BOOST_TEST(loop.run_until_complete(wait_for_future(f)) == "just in time");

  // Registered after the wait's own timer: the timeout comes first.
  auto g = loop.create_future<std::string>();
  auto t = loop.create_task(wait_for_future(g));
  loop.call_soon([&loop, g]() mutable {
    loop.call_later(100ms, [g]() mutable {
      if (!g.done())
        g.set_result("too late");
    });
  });
  BOOST_TEST(loop.run_until_complete(t) == "timeout");
  BOOST_TEST(g.cancelled());
}

asio::awaitable<std::string> wait_for_stubborn()
{
  co_return co_await asioloop::wait_for(stubborn(1s), 10ms);
}

BOOST_AUTO_TEST_CASE(work_that_returns_despite_the_timeout_keeps_its_result)
{
  event_loop loop{asioloop::virtual_clock};
  BOOST_TEST(loop.run_until_complete(wait_for_stubborn()) == "kept");
}

asio::awaitable<void> wait_for_long(std::shared_ptr<std::string> how)
{
  co_await asioloop::wait_for(observed(1s, how), 10s);
}

BOOST_AUTO_TEST_CASE(cancelling_the_waiter_cancels_the_work_not_a_timeout)
{
  event_loop loop{asioloop::virtual_clock};
  auto how = std::make_shared<std::string>();
  auto t = loop.create_task(wait_for_long(how));
  loop.call_later(10ms, [t]() mutable { t.cancel("user"); });
  try
  {
    loop.run_until_complete(t);
    BOOST_FAIL("the task should be cancelled");
  }
  catch (const asioloop::cancelled_error& e)
  {
    BOOST_TEST(std::string(e.what()) == "user");
  }
  BOOST_TEST(*how == "cancelled: operation_aborted");
}

asio::awaitable<int> wait_for_done(future<int> f)
{
  co_return co_await asioloop::wait_for(f, 0s);
}

asio::awaitable<int> wait_for_failure()
{
  co_return co_await asioloop::wait_for(fail_after(1ms, "inner"), 1s);
}

BOOST_AUTO_TEST_CASE(wait_for_with_no_time_and_with_failures)
{
  event_loop loop{asioloop::virtual_clock};
  auto f = loop.create_future<int>();
  f.set_result(5);
  BOOST_TEST(loop.run_until_complete(wait_for_done(f)) == 5);
  auto g = loop.create_future<int>();
  BOOST_CHECK_THROW(loop.run_until_complete(wait_for_done(g)), asioloop::timeout_error);
  BOOST_TEST(g.cancelled());
  BOOST_CHECK_EXCEPTION(loop.run_until_complete(wait_for_failure()),
      std::runtime_error,
      [](const std::runtime_error& e) { return std::string(e.what()) == "inner"; });
}

// ---- wait -----------------------------------------------------------------

using string_tasks = std::vector<task<std::string>>;

std::string names(const string_tasks& ts)
{
  std::string s;
  for (auto& t : ts)
    s += t.get_name();
  return s;
}

asio::awaitable<strings> wait_modes(event_loop& loop)
{
  auto a = loop.create_task(after(30ms, "a"), "a");
  auto b = loop.create_task(after(10ms, "b"), "b");
  auto c = loop.create_task(after(20ms, "c"), "c");
  strings out;
  // Built outside the co_await: g++ 12 cannot keep an initializer_list's
  // array across a suspension.
  const string_tasks abc{a, b, c};
  auto r1 = co_await asioloop::wait(abc,
      asioloop::return_when::first_completed);
  out.push_back(names(r1.done) + "/" + names(r1.pending));
  auto r2 = co_await asioloop::wait(abc,
      asioloop::return_when::all_completed, 5ms);
  out.push_back(names(r2.done) + "/" + names(r2.pending));
  auto r3 = co_await asioloop::wait(abc);
  out.push_back(names(r3.done) + "/" + names(r3.pending));
  BOOST_TEST(!a.cancelled()); // wait cancels nothing, even on its timeout
  co_return out;
}

BOOST_AUTO_TEST_CASE(wait_splits_done_and_pending)
{
  event_loop loop{asioloop::virtual_clock};
  const auto t0 = loop.time();
  BOOST_TEST(loop.run_until_complete(wait_modes(loop))
          == (strings{"b/ac", "b/ac", "abc/"}),
      boost::test_tools::per_element());
  BOOST_TEST(elapsed(loop, t0) == 30ms);
}

asio::awaitable<std::string> wait_first_exception(event_loop& loop)
{
  std::vector<task<int>> ts{loop.create_task(fail_after(10ms, "x")),
      loop.create_task(fail_after(50ms, "y"))};
  auto fine = loop.create_task(after(20ms, "fine"));
  auto r = co_await asioloop::wait(ts, asioloop::return_when::first_exception);
  const string_tasks just_fine{fine};
  auto r2 = co_await asioloop::wait(just_fine,
      asioloop::return_when::first_exception);
  co_return std::to_string(r.done.size()) + std::to_string(r.pending.size())
      + std::to_string(r2.done.size()) + std::to_string(r2.pending.size());
}

BOOST_AUTO_TEST_CASE(wait_first_exception_returns_on_a_failure_or_when_all_are_done)
{
  handler_log log; // outlives the loop, whose close() may report
  event_loop loop{asioloop::virtual_clock};
  log.install(loop);
  BOOST_TEST(loop.run_until_complete(wait_first_exception(loop)) == "1110");
}

asio::awaitable<void> wait_nothing()
{
  co_await asioloop::wait(string_tasks{});
}

BOOST_AUTO_TEST_CASE(wait_needs_something_to_wait_for)
{
  event_loop loop{asioloop::virtual_clock};
  BOOST_CHECK_THROW(loop.run_until_complete(wait_nothing()), std::invalid_argument);
}

asio::awaitable<void> wait_then_cancelled(task<std::string> t)
{
  const string_tasks just_t{t};
  co_await asioloop::wait(just_t);
}

BOOST_AUTO_TEST_CASE(a_cancelled_wait_leaves_its_futures_alone)
{
  event_loop loop{asioloop::virtual_clock};
  auto work = loop.create_task(after(100ms, "work"));
  auto waiter = loop.create_task(wait_then_cancelled(work));
  loop.call_later(10ms, [waiter]() mutable { waiter.cancel(); });
  BOOST_CHECK_THROW(loop.run_until_complete(waiter), asioloop::cancelled_error);
  BOOST_TEST(!work.done());
  BOOST_TEST(loop.run_until_complete(work) == "work");
}

// ---- as_completed ---------------------------------------------------------

asio::awaitable<strings> in_completion_order(event_loop& loop)
{
  std::vector<future<std::string>> fs{loop.create_task(after(30ms, "slow")),
      loop.create_task(after(10ms, "fast")), loop.create_task(after(20ms, "middle"))};
  auto failing = loop.create_task(fail_after(15ms, "broken"));
  strings out;
  auto ac = asioloop::as_completed(fs);
  BOOST_TEST(ac.remaining() == 3u);
  while (!ac.empty())
    out.push_back(co_await ac.next());
  bool refused = false;
  try
  {
    co_await ac.next();
  }
  catch (const asioloop::invalid_state_error&)
  {
    refused = true;
  }
  BOOST_TEST(refused);
  const std::vector<task<int>> just_failing{failing};
  auto failures = asioloop::as_completed(just_failing);
  try
  {
    co_await failures.next();
  }
  catch (const std::runtime_error& e)
  {
    out.push_back(e.what());
  }
  co_return out;
}

BOOST_AUTO_TEST_CASE(as_completed_gives_results_in_completion_order)
{
  event_loop loop{asioloop::virtual_clock};
  BOOST_TEST(loop.run_until_complete(in_completion_order(loop))
          == (strings{"fast", "middle", "slow", "broken"}),
      boost::test_tools::per_element());
}

asio::awaitable<std::string> next_of(std::shared_ptr<asioloop::completion_order<std::string>> ac)
{
  co_return co_await ac->next();
}

BOOST_AUTO_TEST_CASE(a_cancelled_next_loses_no_result)
{
  event_loop loop{asioloop::virtual_clock};
  auto ac = std::make_shared<asioloop::completion_order<std::string>>(
      std::vector<future<std::string>>{loop.create_task(after(20ms, "only"))});
  auto first = loop.create_task(next_of(ac));
  loop.call_later(10ms, [first]() mutable { first.cancel(); });
  BOOST_CHECK_THROW(loop.run_until_complete(first), asioloop::cancelled_error);
  BOOST_TEST(loop.run_until_complete(next_of(ac)) == "only");
}

// ---- shield ---------------------------------------------------------------

asio::awaitable<std::string> shielded(task<std::string> inner)
{
  co_return co_await asioloop::shield(inner);
}

BOOST_AUTO_TEST_CASE(shield_keeps_the_work_running_when_the_waiter_is_cancelled)
{
  event_loop loop{asioloop::virtual_clock};
  auto inner = loop.create_task(after(50ms, "survived"));
  auto outer = loop.create_task(shielded(inner));
  loop.call_later(10ms, [outer]() mutable { outer.cancel(); });
  BOOST_CHECK_THROW(loop.run_until_complete(outer), asioloop::cancelled_error);
  BOOST_TEST(!inner.done());
  BOOST_TEST(loop.run_until_complete(inner) == "survived");
}

BOOST_AUTO_TEST_CASE(shield_passes_results_and_reports_unseen_failures)
{
  handler_log log; // outlives the loop, whose close() may report
  event_loop loop{asioloop::virtual_clock};
  log.install(loop);
  BOOST_TEST(loop.run_until_complete(asioloop::shield(
                 loop.create_task(after(1ms, "through")))) == "through");

  auto failing = loop.create_task(fail_after(20ms, "unseen"));
  auto s = asioloop::shield(failing);
  s.cancel();
  BOOST_CHECK_THROW(loop.run_until_complete(failing), std::runtime_error);
  loop.run_until_complete(nap(1ms));
  BOOST_REQUIRE(log.messages.size() == 1u);
  BOOST_TEST(log.messages[0].find("shielded") != std::string::npos);

  // The inner work cancelled on its own cancels the shield's future.
  auto inner = loop.create_task(after(20ms, "x"));
  auto s2 = asioloop::shield(inner);
  inner.cancel();
  BOOST_CHECK_THROW(loop.run_until_complete(s2), asioloop::cancelled_error);
}
