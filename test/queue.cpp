//
// test/queue.cpp
//
// queue<T>: the non-waiting operations and their errors, waiting getters and
// putters served first come first served, no suspension when none is
// needed, cancellation in every direction (before and after a wake-up,
// through a task and through an Asio cancellation slot) losing no item and
// no room, task_done/join, and the loop's end. Ported in spirit from what
// CPython's test_asyncio/test_queues.py checks.
//

#include <asioloop/queue.hpp>

#include "support/loop_fixture.hpp"

#include <asioloop/sleep.hpp>
#include <asioloop/task.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using asioloop::event_loop;
using asioloop::queue;
using asioloop::task;
using asioloop::test::strings;
using asioloop::test::ticks;
using namespace std::chrono_literals;

namespace {

template <typename T>
asio::awaitable<T> get_one(queue<T>& q)
{
  co_return co_await q.get();
}

template <typename T>
asio::awaitable<void> put_one(queue<T>& q, T v)
{
  co_await q.put(std::move(v));
}

/// Gets one item and logs "name:item".
asio::awaitable<void> get_and_log(queue<std::string>& q, std::string name, strings& log)
{
  std::string v = co_await q.get();
  log.push_back(name + ":" + v);
}

/// Puts @c v and logs "put:v" once it is in.
asio::awaitable<void> put_and_log(queue<std::string>& q, std::string v, strings& log)
{
  co_await q.put(v);
  log.push_back("put:" + v);
}

} // namespace

BOOST_AUTO_TEST_SUITE(without_waiting)

BOOST_AUTO_TEST_CASE(nowait_operations_and_observers)
{
  // No loop is needed for what never waits.
  queue<int> q{2};
  BOOST_TEST(q.maxsize() == 2u);
  BOOST_TEST(q.empty());
  BOOST_TEST(!q.full());
  q.put_nowait(1);
  q.put_nowait(2);
  BOOST_TEST(q.qsize() == 2u);
  BOOST_TEST(q.full());
  BOOST_CHECK_EXCEPTION(q.put_nowait(3), asioloop::queue_full_error,
      [](const std::exception& e) {
        return std::string(e.what()).find("full queue") != std::string::npos;
      });
  BOOST_TEST(q.get_nowait() == 1);
  BOOST_TEST(q.get_nowait() == 2);
  BOOST_TEST(q.empty());
  BOOST_CHECK_EXCEPTION(q.get_nowait(), asioloop::queue_empty_error,
      [](const std::exception& e) {
        return std::string(e.what()).find("empty queue") != std::string::npos;
      });
}

BOOST_AUTO_TEST_CASE(maxsize_zero_is_unbounded)
{
  queue<int> q;
  BOOST_TEST(q.maxsize() == 0u);
  for (int i = 0; i < 10000; ++i)
    q.put_nowait(i);
  BOOST_TEST(!q.full());
  for (int i = 0; i < 10000; ++i)
    BOOST_TEST_REQUIRE(q.get_nowait() == i);
}

BOOST_AUTO_TEST_CASE(move_only_items)
{
  event_loop loop{asioloop::virtual_clock};
  queue<std::unique_ptr<int>> q{1};
  auto getter = loop.create_task(get_one(q));
  loop.create_task(put_one(q, std::make_unique<int>(7)));
  auto p = loop.run_until_complete(asioloop::future<std::unique_ptr<int>>(getter));
  BOOST_TEST(*p == 7);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(waiting)

asio::awaitable<void> get_waits_for_put_main(event_loop& loop, queue<std::string>& q)
{
  const auto t0 = loop.time();
  loop.call_later(1s, [&] { q.put_nowait("a"); });
  std::string v = co_await q.get();
  BOOST_TEST(v == "a");
  BOOST_TEST((loop.time() - t0 == 1s));
}

BOOST_AUTO_TEST_CASE(get_waits_for_a_put)
{
  event_loop loop{asioloop::virtual_clock};
  queue<std::string> q;
  loop.run_until_complete(get_waits_for_put_main(loop, q));
  BOOST_TEST(q.empty());
}

asio::awaitable<void> no_yield_main(event_loop& loop, queue<int>& q, strings& log)
{
  loop.call_soon([&] { log.push_back("soon"); });
  co_await q.put(1); // room: no suspension
  log.push_back("put");
  const int v = co_await q.get(); // an item: no suspension
  log.push_back("got " + std::to_string(v));
  co_await ticks(1);
}

BOOST_AUTO_TEST_CASE(put_with_room_and_get_with_an_item_do_not_suspend)
{
  event_loop loop{asioloop::virtual_clock};
  queue<int> q{1};
  strings log;
  loop.run_until_complete(no_yield_main(loop, q, log));
  BOOST_TEST(log == (strings{"put", "got 1", "soon"}), boost::test_tools::per_element());
}

asio::awaitable<void> putter_of_three(queue<int>& q, std::vector<int>& have_been_put)
{
  for (int i = 0; i < 3; ++i)
  {
    co_await q.put(i);
    have_been_put.push_back(i);
  }
}

asio::awaitable<void> maxsize_main(queue<int>& q)
{
  std::vector<int> have_been_put;
  auto t = asioloop::create_task(putter_of_three(q, have_been_put));
  co_await ticks(2);
  // The putter is blocked after putting two items.
  BOOST_TEST(have_been_put == (std::vector<int>{0, 1}), boost::test_tools::per_element());
  BOOST_TEST(q.full());
  BOOST_TEST(q.get_nowait() == 0);
  // Let it resume and put the last item.
  co_await ticks(1);
  BOOST_TEST(have_been_put == (std::vector<int>{0, 1, 2}), boost::test_tools::per_element());
  BOOST_TEST(q.get_nowait() == 1);
  BOOST_TEST(q.get_nowait() == 2);
  co_await std::move(t);
}

BOOST_AUTO_TEST_CASE(put_waits_while_the_queue_is_full)
{
  event_loop loop{asioloop::virtual_clock};
  queue<int> q{2};
  loop.run_until_complete(maxsize_main(q));
}

asio::awaitable<void> fifo_getters_main(queue<std::string>& q, strings& log)
{
  std::vector<task<void>> tasks;
  for (const char* name : {"A", "B", "C"})
    tasks.push_back(asioloop::create_task(get_and_log(q, name, log)));
  co_await ticks(1);
  for (const char* v : {"1", "2", "3"})
    q.put_nowait(v);
  for (auto& t : tasks)
    co_await std::move(t);
}

BOOST_AUTO_TEST_CASE(getters_are_served_first_come_first_served)
{
  event_loop loop{asioloop::virtual_clock};
  queue<std::string> q;
  strings log;
  loop.run_until_complete(fifo_getters_main(q, log));
  BOOST_TEST(log == (strings{"A:1", "B:2", "C:3"}), boost::test_tools::per_element());
}

asio::awaitable<void> fifo_putters_main(queue<std::string>& q, strings& log)
{
  q.put_nowait("0");
  std::vector<task<void>> tasks;
  for (const char* v : {"1", "2", "3"})
    tasks.push_back(asioloop::create_task(put_and_log(q, v, log)));
  co_await ticks(1);
  for (int i = 0; i < 4; ++i)
    log.push_back("got:" + co_await q.get());
  for (auto& t : tasks)
    co_await std::move(t);
}

BOOST_AUTO_TEST_CASE(putters_are_served_first_come_first_served)
{
  event_loop loop{asioloop::virtual_clock};
  queue<std::string> q{1};
  strings log;
  loop.run_until_complete(fifo_putters_main(q, log));
  // Each get makes room for the next putter in line, which puts when it
  // resumes; the getter finds that item on its next get.
  BOOST_TEST(log
          == (strings{"got:0", "put:1", "got:1", "put:2", "got:2", "put:3", "got:3"}),
      boost::test_tools::per_element());
}

// A getter that arrives while a woken getter has not yet resumed waits behind
// it instead of taking its item.
asio::awaitable<void> late_getter(event_loop& loop, queue<std::string>& q, strings& log)
{
  loop.call_soon([&] { q.put_nowait("1"); }); // wakes A after this task's yield
  co_await asioloop::sleep(0s);
  co_await get_and_log(q, "B", log);
}

asio::awaitable<void> no_barging_main(event_loop& loop, queue<std::string>& q, strings& log)
{
  auto a = asioloop::create_task(get_and_log(q, "A", log));
  co_await ticks(1);
  auto b = asioloop::create_task(late_getter(loop, q, log));
  co_await ticks(5);
  BOOST_TEST(log == (strings{"A:1"}), boost::test_tools::per_element());
  BOOST_TEST(a.done());
  BOOST_TEST(!b.done());
  q.put_nowait("2");
  co_await std::move(b);
}

BOOST_AUTO_TEST_CASE(a_newcomer_does_not_take_the_item_of_a_woken_getter)
{
  event_loop loop{asioloop::virtual_clock};
  queue<std::string> q;
  strings log;
  loop.run_until_complete(no_barging_main(loop, q, log));
  BOOST_TEST(log == (strings{"A:1", "B:2"}), boost::test_tools::per_element());
}

asio::awaitable<void> stolen_main(queue<std::string>& q, strings& log)
{
  auto a = asioloop::create_task(get_and_log(q, "A", log));
  auto b = asioloop::create_task(get_and_log(q, "B", log));
  co_await ticks(1);
  // get_nowait() takes what A was woken for, as in asyncio; A keeps its
  // place at the head of the line.
  q.put_nowait("1");
  log.push_back("nowait:" + q.get_nowait());
  co_await ticks(2);
  BOOST_TEST(!a.done());
  q.put_nowait("2");
  q.put_nowait("3");
  co_await std::move(a);
  co_await std::move(b);
}

BOOST_AUTO_TEST_CASE(a_getter_whose_item_was_taken_keeps_its_place)
{
  event_loop loop{asioloop::virtual_clock};
  queue<std::string> q;
  strings log;
  loop.run_until_complete(stolen_main(q, log));
  BOOST_TEST(log == (strings{"nowait:1", "A:2", "B:3"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(cancellation)

asio::awaitable<void> cancelled_getter_main(queue<std::string>& q)
{
  auto t1 = asioloop::create_task(get_one(q));
  auto t2 = asioloop::create_task(get_one(q));
  co_await ticks(1);
  t1.cancel();
  co_await ticks(3);
  BOOST_TEST(t1.cancelled());
  co_await q.put("a");
  co_await ticks(3);
  BOOST_TEST(t2.done());
  BOOST_TEST(t2.result() == "a");
  BOOST_TEST(q.empty());
}

BOOST_AUTO_TEST_CASE(a_cancelled_getter_takes_nothing)
{
  event_loop loop{asioloop::virtual_clock};
  queue<std::string> q;
  loop.run_until_complete(cancelled_getter_main(q));
}

asio::awaitable<void> woken_getter_cancelled_main(queue<std::string>& q, bool second)
{
  auto g1 = asioloop::create_task(get_one(q));
  std::optional<task<std::string>> g2;
  if (second)
    g2 = asioloop::create_task(get_one(q));
  co_await ticks(3);
  // The put wakes g1; the cancellation reaches it after the wake-up,
  // before it resumes.
  q.put_nowait("a");
  g1.cancel();
  co_await ticks(3);
  BOOST_TEST(g1.cancelled());
  if (second)
  {
    BOOST_TEST(g2->done());
    BOOST_TEST(g2->result() == "a");
    BOOST_TEST(q.empty());
  }
  else
  {
    BOOST_TEST(q.qsize() == 1u);
    BOOST_TEST(q.get_nowait() == "a");
  }
}

BOOST_AUTO_TEST_CASE(a_getter_cancelled_after_waking_passes_the_item_on)
{
  event_loop loop{asioloop::virtual_clock};
  queue<std::string> q;
  loop.run_until_complete(woken_getter_cancelled_main(q, true));
}

BOOST_AUTO_TEST_CASE(a_getter_cancelled_after_waking_leaves_the_item_queued)
{
  event_loop loop{asioloop::virtual_clock};
  queue<std::string> q;
  loop.run_until_complete(woken_getter_cancelled_main(q, false));
}

asio::awaitable<void> cancelled_putter_main(queue<std::string>& q)
{
  auto put_a = asioloop::create_task(put_one<std::string>(q, "a"));
  auto put_b = asioloop::create_task(put_one<std::string>(q, "b"));
  auto put_c = asioloop::create_task(put_one<std::string>(q, "X"));
  co_await ticks(3);
  BOOST_TEST(put_a.done());
  BOOST_TEST(!put_b.done());
  put_c.cancel();
  co_await ticks(3);
  BOOST_TEST(put_c.cancelled());
  BOOST_TEST(q.get_nowait() == "a");
  co_await ticks(3);
  BOOST_TEST(q.get_nowait() == "b");
  co_await std::move(put_b);
  BOOST_TEST(q.empty());
}

BOOST_AUTO_TEST_CASE(a_cancelled_putter_puts_nothing)
{
  event_loop loop{asioloop::virtual_clock};
  queue<std::string> q{1};
  loop.run_until_complete(cancelled_putter_main(q));
}

asio::awaitable<void> woken_putter_cancelled_main(queue<std::string>& q)
{
  q.put_nowait("x");
  auto p1 = asioloop::create_task(put_one<std::string>(q, "1"));
  auto p2 = asioloop::create_task(put_one<std::string>(q, "2"));
  co_await ticks(3);
  // As above: the get wakes p1, then the cancellation reaches it.
  BOOST_TEST(q.get_nowait() == "x");
  p1.cancel();
  co_await ticks(3);
  BOOST_TEST(p1.cancelled());
  BOOST_TEST(p2.done());
  BOOST_TEST(q.qsize() == 1u);
  BOOST_TEST(q.get_nowait() == "2");
}

BOOST_AUTO_TEST_CASE(a_putter_cancelled_after_waking_passes_the_room_on)
{
  event_loop loop{asioloop::virtual_clock};
  queue<std::string> q{1};
  loop.run_until_complete(woken_putter_cancelled_main(q));
}

asio::awaitable<void> slot_getter(queue<int>& q, std::string& outcome)
{
  try
  {
    const int v = co_await q.get();
    outcome = "got " + std::to_string(v);
  }
  catch (const asioloop::cancelled_error&)
  {
    outcome = "cancelled";
  }
}

BOOST_AUTO_TEST_CASE(cancelling_through_an_asio_cancellation_slot)
{
  event_loop loop{asioloop::virtual_clock};
  queue<int> q;
  std::string outcome;
  asio::cancellation_signal signal;
  asio::co_spawn(loop.get_executor(), slot_getter(q, outcome),
      asio::bind_cancellation_slot(signal.slot(), [](std::exception_ptr) {}));
  loop.call_later(1s, [&] { signal.emit(asio::cancellation_type::terminal); });
  loop.call_later(2s, [&] { q.put_nowait(5); });
  asioloop::test::run_until(loop, [&] { return !q.empty(); });
  BOOST_TEST(outcome == "cancelled");
  BOOST_TEST(q.get_nowait() == 5);
}

asio::awaitable<void> wait_for_timeout_main(event_loop& loop, queue<int>& q)
{
  // What wait_for(q.get(), 1s) does: a timer cancels the getter.
  auto getter = asioloop::create_task(get_one(q));
  loop.call_later(1s, [getter]() mutable { getter.cancel("timed out"); });
  try
  {
    co_await std::move(getter);
    BOOST_FAIL("the getter should have been cancelled");
  }
  catch (const asioloop::cancelled_error& e)
  {
    BOOST_TEST(std::string(e.what()) == "timed out");
  }
  q.put_nowait(1);
  co_await ticks(1);
  BOOST_TEST(q.qsize() == 1u);
}

BOOST_AUTO_TEST_CASE(a_timed_out_getter_takes_nothing)
{
  event_loop loop{asioloop::virtual_clock};
  queue<int> q;
  loop.run_until_complete(wait_for_timeout_main(loop, q));
}

asio::awaitable<int> await_getter(task<int> inner)
{
  co_return co_await std::move(inner);
}

asio::awaitable<void> nested_cancel_main(queue<int>& q)
{
  // Cancelling a task that awaits the getter cancels the getter too.
  auto inner = asioloop::create_task(get_one(q));
  auto outer = asioloop::create_task(await_getter(inner));
  co_await ticks(3);
  outer.cancel();
  // Each hop of the cancellation (outer, inner, the getter) and of the
  // results back takes an iteration.
  for (int i = 0; i < 20 && !outer.done(); ++i)
    co_await ticks(1);
  BOOST_TEST(outer.cancelled());
  BOOST_TEST(inner.cancelled());
  q.put_nowait(1);
  co_await ticks(3);
  BOOST_TEST(q.qsize() == 1u);
}

BOOST_AUTO_TEST_CASE(cancelling_a_task_that_awaits_a_getter_cancels_the_getter)
{
  event_loop loop{asioloop::virtual_clock};
  queue<int> q;
  loop.run_until_complete(nested_cancel_main(q));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(task_done_and_join)

asio::awaitable<void> worker(queue<int>& q, int& processed)
{
  for (;;)
  {
    const int v = co_await q.get();
    co_await asioloop::sleep(1s);
    processed += v;
    q.task_done();
  }
}

asio::awaitable<void> join_main(event_loop& loop, queue<int>& q)
{
  int processed = 0;
  const auto t0 = loop.time();
  for (int i = 1; i <= 3; ++i)
    q.put_nowait(i);
  auto w = asioloop::create_task(worker(q, processed));
  co_await q.join();
  BOOST_TEST(processed == 6);
  BOOST_TEST((loop.time() - t0 == 3s));
  w.cancel();
  co_await ticks(3);
  BOOST_TEST(w.cancelled());
}

BOOST_AUTO_TEST_CASE(join_waits_for_every_task_done)
{
  event_loop loop{asioloop::virtual_clock};
  queue<int> q;
  loop.run_until_complete(join_main(loop, q));
  BOOST_CHECK_EXCEPTION(q.task_done(), asioloop::invalid_state_error,
      [](const std::exception& e) {
        return std::string(e.what()).find("task_done() called more times") != std::string::npos;
      });
}

asio::awaitable<void> join_empty_main(event_loop& loop, strings& log)
{
  queue<int> q;
  loop.call_soon([&] { log.push_back("soon"); });
  co_await q.join();
  log.push_back("joined");
  q.put_nowait(1);
  q.get_nowait();
  q.task_done();
  co_await q.join();
  log.push_back("joined again");
  co_await ticks(1);
}

BOOST_AUTO_TEST_CASE(join_on_a_finished_queue_returns_at_once)
{
  event_loop loop{asioloop::virtual_clock};
  strings log;
  loop.run_until_complete(join_empty_main(loop, log));
  BOOST_TEST(log == (strings{"joined", "joined again", "soon"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(loops)

struct sentinel
{
  bool* destroyed;
  ~sentinel() { *destroyed = true; }
};

asio::awaitable<void> get_forever(queue<int>& q, bool* destroyed)
{
  sentinel s{destroyed};
  co_await q.get();
}

BOOST_AUTO_TEST_CASE(a_getter_pending_when_the_loop_closes_is_destroyed)
{
  queue<int> q; // outlives the loop
  bool destroyed = false;
  {
    event_loop loop{asioloop::virtual_clock};
    loop.set_exception_handler([](event_loop&, const asioloop::error_context&) {});
    loop.create_task(get_forever(q, &destroyed));
    asioloop::test::run_until(loop, [] { return true; });
    BOOST_TEST(!destroyed);
  }
  BOOST_TEST(destroyed);
  // The queue is free again: another loop may wait on it.
  event_loop loop2{asioloop::virtual_clock};
  loop2.call_soon([&] { q.put_nowait(3); });
  BOOST_TEST(loop2.run_until_complete(get_one(q)) == 3);
}

BOOST_AUTO_TEST_CASE(a_queue_destroyed_with_a_getter_destroys_it)
{
  event_loop loop{asioloop::virtual_clock};
  loop.set_exception_handler([](event_loop&, const asioloop::error_context&) {});
  bool destroyed = false;
  {
    queue<int> q;
    loop.create_task(get_forever(q, &destroyed));
    asioloop::test::run_until(loop, [] { return true; });
    BOOST_TEST(!destroyed);
  }
  // Asio destroys a coroutine's frames through its executor: on the loop.
  asioloop::test::run_until(loop, [&] { return destroyed; });
}

BOOST_AUTO_TEST_CASE(a_queue_belongs_to_one_loop)
{
  queue<int> q;
  event_loop a{asioloop::virtual_clock};
  a.set_exception_handler([](event_loop&, const asioloop::error_context&) {});
  a.create_task(get_one(q));
  asioloop::test::run_until(a, [] { return true; });
  event_loop b{asioloop::virtual_clock};
  BOOST_CHECK_EXCEPTION(b.run_until_complete(get_one(q)), std::runtime_error,
      [](const std::exception& e) {
        return std::string(e.what()).find("bound to a different event loop") != std::string::npos;
      });
}

asio::awaitable<void> produce(queue<int>& q, int n)
{
  for (int i = 0; i < n; ++i)
    co_await q.put(i);
}

asio::awaitable<void> consume(queue<int>& q, int n, long& sum)
{
  for (int i = 0; i < n; ++i)
    sum += co_await q.get();
}

BOOST_AUTO_TEST_CASE(on_an_embedded_loop_run_by_two_threads)
{
  // Loop work never runs concurrently, whichever host thread runs it.
  asio::io_context host;
  auto work = asio::make_work_guard(host);
  event_loop loop{host.get_executor()};
  queue<int> q{3};
  long sum = 0;
  const int n = 20000;
  std::atomic<bool> finished{false};
  loop.call_soon_threadsafe([&] {
    loop.create_task(produce(q, n));
    loop.create_task(consume(q, n, sum)).add_done_callback([&](const asioloop::future<void>&) {
      finished = true;
      work.reset();
    });
  });
  std::thread other([&] { host.run(); });
  host.run();
  other.join();
  BOOST_TEST(finished.load());
  BOOST_TEST(sum == long(n) * (n - 1) / 2);
  loop.close();
}

BOOST_AUTO_TEST_CASE(waiting_outside_a_loop_throws)
{
  queue<int> q;
  asio::io_context ioc;
  std::exception_ptr error;
  asio::co_spawn(ioc, get_one(q), [&](std::exception_ptr e, int) { error = e; });
  ioc.run();
  BOOST_CHECK_THROW(std::rethrow_exception(error), asioloop::no_running_loop_error);
}

BOOST_AUTO_TEST_SUITE_END()
