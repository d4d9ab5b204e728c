//
// test/event_loop.cpp
//
// The loop's core: the ready queue, running and stopping, closing, errors,
// the executor, embedded mode, thread-safe submission and signals.
//

#include <asioloop/event_loop.hpp>

#include "support/loop_fixture.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/test/unit_test.hpp>

#include <array>
#include <atomic>
#include <csignal>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using asioloop::event_loop;
using asioloop::test::journal;
using asioloop::test::run_until;
using asioloop::test::strings;
using namespace std::chrono_literals;

namespace {


asio::awaitable<std::string> answer()
{
  co_return "A";
}

asio::awaitable<void> nothing()
{
  co_return;
}

asio::awaitable<int> fails()
{
  throw std::logic_error("boom");
  co_return 0;
}

bool message_is(const std::exception& e, const std::string& text)
{
  return e.what() == text;
}

} // namespace

BOOST_AUTO_TEST_SUITE(ready_queue)

BOOST_AUTO_TEST_CASE(call_soon_runs_in_fifo_order_and_never_inline)
{
  event_loop loop;
  journal j;
  loop.call_soon([&] {
    j("a");
    loop.call_soon([&] { j("c"); });
    j("a-end"); // call_soon never runs the callback inline
  });
  loop.call_soon([&] { j("b"); });
  run_until(loop, [&] { return j.lines.size() == 4; });
  BOOST_TEST(j.lines == (std::vector<std::string>{"a", "a-end", "b", "c"}),
      boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(arguments_are_stored_by_value_and_moved_in)
{
  event_loop loop;
  std::string seen;
  int seen_n = 0;
  std::string text = "before";
  loop.call_soon([&](const std::string& s, int n) { seen = s; seen_n = n; },
      text, 7);
  text = "after";
  auto p = std::make_unique<int>(5);
  int moved = 0;
  loop.call_soon([&](std::unique_ptr<int> q) { moved = *q; }, std::move(p));
  run_until(loop, [&] { return moved != 0; });
  BOOST_TEST(seen == "before");
  BOOST_TEST(seen_n == 7);
  BOOST_TEST(moved == 5);
}

BOOST_AUTO_TEST_CASE(arguments_die_once_the_callback_has_run)
{
  event_loop loop;
  auto token = std::make_shared<int>(1);
  std::weak_ptr<int> watch = token;
  bool ran = false;
  asioloop::handle h = loop.call_soon([&](std::shared_ptr<int>) { ran = true; },
      std::move(token));
  run_until(loop, [&] { return ran; });
  BOOST_TEST(watch.expired()); // the handle does not keep them alive
  BOOST_TEST(!h.cancelled());
}

BOOST_AUTO_TEST_CASE(a_cancelled_handle_never_runs)
{
  event_loop loop;
  journal j;
  auto h = loop.call_soon([&] { j("cancelled"); });
  loop.call_soon([&] { j("kept"); });
  h.cancel();
  BOOST_TEST(h.cancelled());
  run_until(loop, [&] { return !j.lines.empty(); });
  loop.call_soon([&] { j("last"); });
  run_until(loop, [&] { return j.lines.size() == 2; });
  BOOST_TEST(j.lines == (std::vector<std::string>{"kept", "last"}),
      boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(cancel_during_the_batch_skips_a_later_callback)
{
  event_loop loop;
  journal j;
  asioloop::handle second;
  loop.call_soon([&] { j("first"); second.cancel(); });
  second = loop.call_soon([&] { j("second"); });
  loop.call_soon([&] { j("third"); });
  run_until(loop, [&] { return j.lines.size() == 2; });
  BOOST_TEST(j.lines == (std::vector<std::string>{"first", "third"}),
      boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(cancelling_after_the_run_or_twice_does_nothing)
{
  event_loop loop;
  int runs = 0;
  auto h = loop.call_soon([&] { ++runs; });
  run_until(loop, [&] { return runs == 1; });
  h.cancel();
  h.cancel();
  asioloop::handle empty;
  empty.cancel();
  BOOST_TEST(!empty.cancelled());
  BOOST_TEST(runs == 1);
}

BOOST_AUTO_TEST_CASE(handles_are_copies_of_one_reference)
{
  event_loop loop;
  int runs = 0;
  auto h = loop.call_soon([&] { ++runs; });
  asioloop::handle copy = h;
  copy.cancel();
  BOOST_TEST(h.cancelled());
  loop.call_soon([&] { loop.stop(); });
  loop.run_forever();
  BOOST_TEST(runs == 0);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(running)

BOOST_AUTO_TEST_CASE(stop_lets_the_current_batch_finish)
{
  event_loop loop;
  journal j;
  loop.call_soon([&] {
    j("a");
    loop.stop();
    loop.call_soon([&] { j("next-run"); });
  });
  loop.call_soon([&] { j("b"); }); // same batch as the stop: it still runs
  loop.run_forever();
  BOOST_TEST(j.lines == (std::vector<std::string>{"a", "b"}),
      boost::test_tools::per_element());
  BOOST_TEST(!loop.is_running());

  loop.call_soon([&] { loop.stop(); });
  loop.run_forever();
  BOOST_TEST(j.lines.back() == "next-run");
}

BOOST_AUTO_TEST_CASE(stop_before_run_forever_runs_one_iteration)
{
  event_loop loop;
  journal j;
  loop.call_soon([&] { j("a"); loop.call_soon([&] { j("b"); }); });
  loop.stop();
  loop.run_forever();
  BOOST_TEST(j.lines == (std::vector<std::string>{"a"}),
      boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(is_running_inside_and_outside)
{
  event_loop loop;
  bool inside = false;
  loop.call_soon([&] { inside = loop.is_running(); loop.stop(); });
  BOOST_TEST(!loop.is_running());
  loop.run_forever();
  BOOST_TEST(inside);
  BOOST_TEST(!loop.is_running());
}

BOOST_AUTO_TEST_CASE(run_until_complete_returns_the_result)
{
  event_loop loop;
  BOOST_TEST(loop.run_until_complete(answer()) == "A");
  loop.run_until_complete(nothing());
  BOOST_TEST(!loop.is_running());
}

BOOST_AUTO_TEST_CASE(run_until_complete_rethrows)
{
  event_loop loop;
  BOOST_CHECK_EXCEPTION(loop.run_until_complete(fails()), std::logic_error,
      [](const std::logic_error& e) { return message_is(e, "boom"); });
  // The loop is usable afterwards.
  BOOST_TEST(loop.run_until_complete(answer()) == "A");
}

BOOST_AUTO_TEST_CASE(run_until_complete_stopped_early_throws_and_resumes)
{
  event_loop loop;
  bool finished = false;
  auto slow = [&]() -> asio::awaitable<int> {
    loop.stop(); // the run ends before this coroutine does
    co_await asio::post(asio::use_awaitable);
    co_await asio::post(asio::use_awaitable);
    finished = true;
    co_return 1;
  };
  BOOST_CHECK_EXCEPTION(loop.run_until_complete(slow()), std::runtime_error,
      [](const std::runtime_error& e) {
        return message_is(e, "Event loop stopped before Future completed.");
      });
  BOOST_TEST(!finished);
  // Nothing was lost: the coroutine goes on with the next run.
  run_until(loop, [&] { return finished; });
}

BOOST_AUTO_TEST_CASE(run_forever_inside_its_own_run_throws)
{
  event_loop loop;
  std::string error;
  loop.call_soon([&] {
    try
    {
      loop.run_forever();
    }
    catch (const std::runtime_error& e)
    {
      error = e.what();
    }
    loop.stop();
  });
  loop.run_forever();
  BOOST_TEST(error == "This event loop is already running");
}

BOOST_AUTO_TEST_CASE(a_second_loop_on_a_running_thread_throws)
{
  event_loop outer;
  event_loop inner;
  std::string error;
  outer.call_soon([&] {
    try
    {
      inner.run_until_complete(answer());
    }
    catch (const std::runtime_error& e)
    {
      error = e.what();
    }
    outer.stop();
  });
  outer.run_forever();
  BOOST_TEST(error == "Cannot run the event loop while another loop is running");
  // Once the outer loop is done, the inner one runs normally.
  BOOST_TEST(inner.run_until_complete(answer()) == "A");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(closing)

BOOST_AUTO_TEST_CASE(a_closed_loop_refuses_work)
{
  event_loop loop;
  BOOST_TEST(!loop.is_closed());
  loop.close();
  loop.close(); // a second close is a no-op
  BOOST_TEST(loop.is_closed());
  BOOST_CHECK_THROW(loop.call_soon([] {}), asioloop::loop_closed_error);
  BOOST_CHECK_THROW(loop.call_soon_threadsafe([] {}), asioloop::loop_closed_error);
  BOOST_CHECK_THROW(loop.run_forever(), asioloop::loop_closed_error);
  BOOST_CHECK_THROW(loop.run_until_complete(answer()), asioloop::loop_closed_error);
  try
  {
    loop.call_soon([] {});
  }
  catch (const asioloop::loop_closed_error& e)
  {
    BOOST_TEST(std::string(e.what()).find("Event loop is closed") == 0);
  }
}

BOOST_AUTO_TEST_CASE(close_while_running_throws)
{
  event_loop loop;
  std::string error;
  loop.call_soon([&] {
    try
    {
      loop.close();
    }
    catch (const std::runtime_error& e)
    {
      error = e.what();
    }
    loop.stop();
  });
  loop.run_forever();
  BOOST_TEST(error == "Cannot close a running event loop");
  BOOST_TEST(!loop.is_closed());
}

BOOST_AUTO_TEST_CASE(close_discards_queued_callbacks_without_running_them)
{
  auto token = std::make_shared<int>(0);
  std::weak_ptr<int> watch = token;
  bool ran = false;
  {
    event_loop loop;
    loop.call_soon([&ran, token] { ran = true; });
    token.reset();
    BOOST_TEST(!watch.expired());
    loop.close();
    BOOST_TEST(watch.expired()); // destroyed, not leaked
  }
  BOOST_TEST(!ran);
}

BOOST_AUTO_TEST_CASE(destroying_a_loop_with_pending_work_runs_none_of_it)
{
  auto token = std::make_shared<int>(0);
  std::weak_ptr<int> watch = token;
  bool ran = false;
  {
    event_loop loop;
    loop.call_soon([&ran, token] { ran = true; });
    loop.call_soon_threadsafe([&ran, token] { ran = true; });
    asio::post(loop.get_executor(), [&ran, token] { ran = true; });
    token.reset();
  }
  BOOST_TEST(watch.expired());
  BOOST_TEST(!ran);
}

BOOST_AUTO_TEST_CASE(executor_work_after_close_is_discarded)
{
  event_loop loop;
  loop.close();
  auto token = std::make_shared<int>(0);
  std::weak_ptr<int> watch = token;
  asio::post(loop.get_executor(), [token] {});
  token.reset();
  BOOST_TEST(watch.expired());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(running_loop)

BOOST_AUTO_TEST_CASE(outside_loop_work_there_is_none)
{
  BOOST_CHECK_EXCEPTION(asioloop::get_running_loop(),
      asioloop::no_running_loop_error,
      [](const std::exception& e) { return message_is(e, "no running event loop"); });
  event_loop loop;
  BOOST_CHECK_THROW(asioloop::get_running_loop(), asioloop::no_running_loop_error);
}

BOOST_AUTO_TEST_CASE(inside_callbacks_and_coroutines)
{
  event_loop loop;
  event_loop* in_callback = nullptr;
  event_loop* in_coroutine = nullptr;
  event_loop* after_resume = nullptr;
  loop.call_soon([&] { in_callback = &asioloop::get_running_loop(); });
  asio::co_spawn(loop.get_executor(),
      [&]() -> asio::awaitable<void> {
        in_coroutine = &asioloop::get_running_loop();
        asio::steady_timer t(co_await asio::this_coro::executor, 1ms);
        co_await t.async_wait(asio::use_awaitable);
        after_resume = &asioloop::get_running_loop();
      },
      asio::detached);
  run_until(loop, [&] { return after_resume != nullptr; });
  BOOST_TEST(in_callback == &loop);
  BOOST_TEST(in_coroutine == &loop);
  BOOST_TEST(after_resume == &loop);
  BOOST_CHECK_THROW(asioloop::get_running_loop(), asioloop::no_running_loop_error);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(exceptions)

BOOST_AUTO_TEST_CASE(a_throwing_callback_is_reported_and_the_loop_goes_on)
{
  event_loop loop;
  std::vector<asioloop::error_context> reports;
  loop.set_exception_handler(
      [&](event_loop& l, const asioloop::error_context& ctx) {
        BOOST_TEST(&l == &loop);
        reports.push_back(ctx);
      });
  journal j;
  loop.call_soon([] { throw std::runtime_error("first"); });
  loop.call_soon([&] { j("behind"); });
  loop.call_soon([&] { j("behind-2"); });
  run_until(loop, [&] { return j.lines.size() == 2; });
  BOOST_TEST_REQUIRE(reports.size() == 1u);
  BOOST_TEST(reports[0].message.find("Exception in callback") == 0);
  BOOST_CHECK_EXCEPTION(std::rethrow_exception(reports[0].exception),
      std::runtime_error,
      [](const std::runtime_error& e) { return message_is(e, "first"); });
}

BOOST_AUTO_TEST_CASE(a_throwing_handler_falls_back_to_the_default)
{
  event_loop loop;
  int calls = 0;
  loop.set_exception_handler([&](event_loop&, const asioloop::error_context&) {
    ++calls;
    throw std::runtime_error("handler failed");
  });
  bool after = false;
  loop.call_soon([] { throw 42; });
  loop.call_soon([&] { after = true; });
  run_until(loop, [&] { return after; });
  BOOST_TEST(calls == 1);

  // call_exception_handler reaches the handler directly too.
  loop.set_exception_handler(nullptr); // back to the default: writes to stderr
  loop.call_exception_handler({"a report from the test", nullptr});
  BOOST_TEST(calls == 1);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(executor)

BOOST_AUTO_TEST_CASE(posted_work_shares_the_fifo)
{
  event_loop loop;
  journal j;
  loop.call_soon([&] { j("soon-1"); });
  asio::post(loop.get_executor(), [&] { j("post"); });
  asio::dispatch(loop.get_executor(), [&] { j("dispatch"); });
  loop.call_soon([&] { j("soon-2"); });
  run_until(loop, [&] { return j.lines.size() == 4; });
  BOOST_TEST(j.lines
          == (std::vector<std::string>{"soon-1", "post", "dispatch", "soon-2"}),
      boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(dispatch_from_loop_work_is_not_inline)
{
  event_loop loop;
  journal j;
  loop.call_soon([&] {
    asio::dispatch(loop.get_executor(), [&] { j("dispatched"); });
    j("caller");
  });
  run_until(loop, [&] { return j.lines.size() == 2; });
  BOOST_TEST(j.lines.front() == "caller");
}

BOOST_AUTO_TEST_CASE(a_spawned_coroutine_starts_on_the_next_iteration)
{
  event_loop loop;
  journal j;
  loop.call_soon([&] {
    asio::co_spawn(loop.get_executor(),
        [&]() -> asio::awaitable<void> {
          j("coroutine");
          co_return;
        },
        asio::detached);
    loop.call_soon([&] { j("soon"); });
    j("spawner");
  });
  run_until(loop, [&] { return j.lines.size() == 3; });
  BOOST_TEST(j.lines
          == (std::vector<std::string>{"spawner", "coroutine", "soon"}),
      boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(executors_compare_by_loop)
{
  event_loop a;
  event_loop b;
  BOOST_TEST((a.get_executor() == a.get_executor()));
  BOOST_TEST((a.get_executor() != b.get_executor()));
  BOOST_TEST(&a.get_executor().loop() == &a);
  asio::any_io_executor erased = a.get_executor();
  BOOST_TEST((erased == asio::any_io_executor(a.get_executor())));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(embedded)

BOOST_AUTO_TEST_CASE(loop_work_is_one_fifo_on_a_two_thread_host)
{
  asio::io_context ioc(2);
  event_loop loop{ioc.get_executor()};
  BOOST_TEST(loop.is_embedded());
  BOOST_TEST(loop.is_running());

  constexpr int n = 20000;
  std::vector<int> order;
  std::atomic<int> inside{0};
  bool overlapped = false;
  bool no_loop = false;
  std::function<void(int)> step = [&](int i) {
    if (inside.fetch_add(1) != 0)
      overlapped = true;
    if (&asioloop::get_running_loop() != &loop)
      no_loop = true;
    order.push_back(i);
    if (i + 1 < n)
    {
      loop.call_soon(step, i + 1);
      loop.call_soon([] {}); // keep two items in flight per batch
    }
    inside.fetch_sub(1);
  };
  asio::post(ioc, [&] { loop.call_soon_threadsafe(step, 0); });
  // An Asio timer on the host goes along with the loop.
  bool timer_fired = false;
  asio::steady_timer timer(ioc, 1ms);
  timer.async_wait([&](auto) { timer_fired = true; });

  std::thread other([&] { ioc.run(); });
  ioc.run();
  other.join();

  BOOST_TEST(!overlapped);
  BOOST_TEST(!no_loop);
  BOOST_TEST(timer_fired);
  BOOST_TEST_REQUIRE(order.size() == static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i)
    BOOST_TEST_REQUIRE(order[i] == i);
}

BOOST_AUTO_TEST_CASE(run_and_stop_are_for_owned_loops)
{
  asio::io_context ioc;
  event_loop loop{ioc.get_executor()};
  BOOST_CHECK_THROW(loop.run_forever(), std::runtime_error);
  BOOST_CHECK_THROW(loop.stop(), std::runtime_error);
  BOOST_CHECK_THROW(loop.run_until_complete(answer()), std::runtime_error);
  try
  {
    loop.run_forever();
  }
  catch (const std::runtime_error& e)
  {
    BOOST_TEST(std::string(e.what()).find("embedded") != std::string::npos);
  }
  loop.close();
  BOOST_TEST(!loop.is_running());
}

BOOST_AUTO_TEST_CASE(coroutines_on_an_embedded_loop)
{
  asio::io_context ioc;
  event_loop loop{asio::make_strand(ioc)};
  std::string result;
  asio::co_spawn(loop.get_executor(),
      [&]() -> asio::awaitable<void> {
        asio::steady_timer t(co_await asio::this_coro::executor, 2ms);
        co_await t.async_wait(asio::use_awaitable);
        result = (&asioloop::get_running_loop() == &loop) ? "on loop" : "lost";
      },
      asio::detached);
  ioc.run();
  BOOST_TEST(result == "on loop");
}

BOOST_AUTO_TEST_CASE(closing_inside_loop_work_drops_the_rest_of_the_batch)
{
  asio::io_context ioc;
  event_loop loop{ioc.get_executor()};
  journal j;
  loop.call_soon_threadsafe([&] { j("a"); loop.close(); });
  loop.call_soon_threadsafe([&] { j("b"); });
  ioc.run();
  BOOST_TEST(j.lines == (std::vector<std::string>{"a"}),
      boost::test_tools::per_element());
  BOOST_TEST(loop.is_closed());
  BOOST_TEST(!loop.is_running());
}

BOOST_AUTO_TEST_CASE(a_destroyed_loop_leaves_a_harmless_drain_behind)
{
  asio::io_context ioc;
  bool ran = false;
  {
    event_loop loop{ioc.get_executor()};
    loop.call_soon_threadsafe([&] { ran = true; }); // posts a drain to ioc
  }
  ioc.run(); // the drain runs after the loop is gone
  BOOST_TEST(!ran);
}

// A task still waiting on a host timer when the loop is destroyed stays in
// the host: destroying the host's context later destroys its coroutine,
// which posts through the task's executor to the loop's core. The core must
// still be there (AddressSanitizer saw it freed).
BOOST_AUTO_TEST_CASE(a_task_left_in_a_host_operation_is_destroyed_with_the_host)
{
  auto ioc = std::make_unique<asio::io_context>();
  auto token = std::make_shared<int>(0);
  std::weak_ptr<int> watch = token;
  {
    event_loop loop{ioc->get_executor()};
    loop.set_exception_handler([](event_loop&, const asioloop::error_context&) {});
    auto body = [](std::shared_ptr<int>) -> asio::awaitable<void> {
      asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::hours(1));
      co_await t.async_wait(asio::use_awaitable);
    };
    loop.create_task(body(std::move(token)));
    ioc->poll(); // the task starts and waits on the host's timer
    BOOST_TEST_REQUIRE(!watch.expired());
  }
  BOOST_TEST(!watch.expired()); // its frame is in the host, not in the loop
  ioc.reset();
  BOOST_TEST(watch.expired());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(threads)

BOOST_AUTO_TEST_CASE(call_soon_threadsafe_wakes_a_sleeping_loop)
{
  event_loop loop;
  std::atomic<bool> ran{false};
  std::thread other([&] {
    std::this_thread::sleep_for(20ms); // the loop is asleep by now
    loop.call_soon_threadsafe([&] {
      ran = true;
      loop.stop();
    });
  });
  loop.run_forever();
  other.join();
  BOOST_TEST(ran.load());
}

BOOST_AUTO_TEST_CASE(many_threads_lose_nothing_and_keep_their_order)
{
  event_loop loop;
  constexpr int threads = 4;
  constexpr int per_thread = 20000;
  std::vector<int> last(threads, -1);
  bool misordered = false;
  int total = 0;
  std::vector<std::thread> producers;
  for (int t = 0; t < threads; ++t)
    producers.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i)
        loop.call_soon_threadsafe(
            [&](int t, int i) {
              if (last[t] + 1 != i)
                misordered = true;
              last[t] = i;
              ++total;
            },
            t, i);
    });
  run_until(loop, [&] { return total == threads * per_thread; });
  for (auto& p : producers)
    p.join();
  BOOST_TEST(!misordered);
  BOOST_TEST(total == threads * per_thread);
}

BOOST_AUTO_TEST_CASE(executor_posts_from_other_threads_arrive)
{
  asio::io_context ioc(2);
  event_loop loop{ioc.get_executor()};
  std::atomic<int> count{0};
  auto guard = asio::make_work_guard(ioc);
  std::thread runner([&] { ioc.run(); });
  std::vector<std::thread> posters;
  for (int t = 0; t < 2; ++t)
    posters.emplace_back([&] {
      for (int i = 0; i < 10000; ++i)
        asio::post(loop.get_executor(), [&] { count.fetch_add(1); });
    });
  for (auto& p : posters)
    p.join();
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (count.load() != 20000 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(1ms);
  guard.reset();
  asio::post(ioc, [&] { loop.close(); });
  runner.join();
  BOOST_TEST(count.load() == 20000);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(signals)

BOOST_AUTO_TEST_CASE(a_signal_handler_runs_as_loop_work)
{
  event_loop loop;
  int got = 0;
  event_loop* where = nullptr;
  loop.add_signal_handler(SIGUSR1, [&](int n) {
    got = n;
    where = &asioloop::get_running_loop();
  }, 7);
  loop.call_soon([] { std::raise(SIGUSR1); });
  run_until(loop, [&] { return got != 0; });
  BOOST_TEST(got == 7);
  BOOST_TEST(where == &loop);
  BOOST_TEST(loop.remove_signal_handler(SIGUSR1));
  BOOST_TEST(!loop.remove_signal_handler(SIGUSR1));
}

BOOST_AUTO_TEST_CASE(a_handler_can_be_added_again_after_removal)
{
  event_loop loop;
  int calls = 0;
  loop.add_signal_handler(SIGUSR2, [&] { ++calls; });
  BOOST_TEST(loop.remove_signal_handler(SIGUSR2));
  loop.add_signal_handler(SIGUSR2, [&] { ++calls; });
  loop.call_soon([] { std::raise(SIGUSR2); });
  run_until(loop, [&] { return calls == 1; });
  loop.call_soon([] { std::raise(SIGUSR2); });
  run_until(loop, [&] { return calls == 2; });
}

BOOST_AUTO_TEST_CASE(an_invalid_signal_is_refused)
{
  event_loop loop;
  BOOST_CHECK_THROW(loop.add_signal_handler(-5, [] {}), boost::system::system_error);
  loop.close();
  BOOST_CHECK_THROW(loop.add_signal_handler(SIGUSR1, [] {}),
      asioloop::loop_closed_error);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(memory)

BOOST_AUTO_TEST_CASE(a_handle_may_outlive_its_loop)
{
  asioloop::handle kept;
  asioloop::handle ran;
  {
    event_loop loop;
    loop.call_soon([&] {
      kept = loop.call_soon([] {}); // from loop work: a slab node
      ran = loop.call_soon([&loop] { loop.stop(); });
    });
    loop.run_forever();
  }
  // The loop and its slab are gone; the handles still work and free their
  // nodes when they die (checked under AddressSanitizer).
  BOOST_TEST(!kept.cancelled());
  kept.cancel();
  BOOST_TEST(kept.cancelled());
  kept = asioloop::handle{};
  ran = asioloop::handle{};
}

BOOST_AUTO_TEST_CASE(handles_released_by_another_thread)
{
  event_loop loop;
  std::vector<asioloop::handle> handles;
  int runs = 0;
  loop.call_soon([&] {
    for (int i = 0; i < 1000; ++i)
      handles.push_back(loop.call_soon([&] { ++runs; }));
  });
  run_until(loop, [&] { return runs == 1000; });
  std::thread other([h = std::move(handles)]() mutable { h.clear(); });
  other.join();
  // The slots come back through the slab's remote stack and are reused.
  loop.call_soon([&] {
    for (int i = 0; i < 1000; ++i)
      loop.call_soon([&] { ++runs; });
  });
  run_until(loop, [&] { return runs == 2000; });
}

BOOST_AUTO_TEST_CASE(bursts_beyond_the_kept_chunks_come_and_go)
{
  event_loop loop;
  constexpr int burst = 100000; // more than the slab keeps when idle
  long sum = 0;
  for (int round = 0; round < 3; ++round)
  {
    loop.call_soon([&] {
      for (int i = 0; i < burst; ++i)
        loop.call_soon([&sum, i] { sum += i; });
    });
    run_until(loop, [&] { return sum == (round + 1) * (long(burst) * (burst - 1) / 2); });
  }
}

BOOST_AUTO_TEST_CASE(large_callbacks_take_the_heap)
{
  event_loop loop;
  std::array<char, 200> big{};
  big[199] = 'x';
  char seen = 0;
  loop.call_soon([&] {
    loop.call_soon([&seen, big] { seen = big[199]; });
  });
  run_until(loop, [&] { return seen == 'x'; });
}

BOOST_AUTO_TEST_SUITE_END()
