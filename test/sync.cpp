//
// test/sync.cpp
//
// event, lock, semaphore, bounded_semaphore, condition and lock_guard:
// their states and errors, first-come-first-served wake-ups, no suspension
// when none is needed, and cancellation before and after a wake-up losing no
// lock, permit or notification. Ported in spirit from what CPython's
// test_asyncio/test_locks.py checks.
//
// A task's cancel() reaches the operation its coroutine waits in at once.
// The tests of a cancellation that lands after a wake-up but before the
// waiter resumes therefore wake first and cancel second, in one callback.
//

#include <asioloop/sync.hpp>

#include "support/loop_fixture.hpp"

#include <asioloop/sleep.hpp>
#include <asioloop/task.hpp>

#include <boost/test/unit_test.hpp>

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace asio = boost::asio;
using asioloop::event_loop;
using asioloop::task;
using asioloop::test::strings;
using asioloop::test::ticks;
using namespace std::chrono_literals;

namespace {

template <typename Primitive>
asio::awaitable<void> acquire_and_log(Primitive& p, std::string name, strings& log)
{
  co_await p.acquire();
  log.push_back(name);
}

/// Holds @c p for one second of (virtual) time, logging.
template <typename Primitive>
asio::awaitable<void> hold_for_a_second(Primitive& p, std::string name, strings& log)
{
  auto held = co_await p.scoped();
  log.push_back(name + " in");
  co_await asioloop::sleep(1s);
  log.push_back(name + " out");
}

asio::awaitable<void> wait_and_log(asioloop::event& ev, std::string name, strings& log)
{
  co_await ev.wait();
  log.push_back(name);
}

template <typename Main>
void run(Main main)
{
  event_loop loop{asioloop::virtual_clock};
  loop.run_until_complete(main());
}

bool says(const std::exception& e, const char* text)
{
  return std::string(e.what()).find(text) != std::string::npos;
}

} // namespace

BOOST_AUTO_TEST_SUITE(event)

asio::awaitable<void> event_main()
{
  asioloop::event ev;
  strings log;
  BOOST_TEST(!ev.is_set());
  std::vector<task<void>> tasks;
  for (const char* name : {"A", "B", "C"})
    tasks.push_back(asioloop::create_task(wait_and_log(ev, name, log)));
  co_await ticks(3);
  BOOST_TEST(log.empty());
  ev.set();
  BOOST_TEST(ev.is_set());
  for (auto& t : tasks)
    co_await std::move(t);
  BOOST_TEST(log == (strings{"A", "B", "C"}), boost::test_tools::per_element());

  // A set event does not suspend its waiter.
  log.clear();
  asioloop::get_running_loop().call_soon([&] { log.push_back("soon"); });
  co_await ev.wait();
  log.push_back("waited");
  ev.clear();
  BOOST_TEST(!ev.is_set());
  auto d = asioloop::create_task(wait_and_log(ev, "D", log));
  co_await ticks(3);
  BOOST_TEST(!d.done());
  ev.set();
  co_await std::move(d);
  BOOST_TEST(log == (strings{"waited", "soon", "D"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(set_wakes_every_waiter_in_order)
{
  run(event_main);
}

asio::awaitable<void> event_cancel_main()
{
  asioloop::event ev;
  strings log;
  auto a = asioloop::create_task(wait_and_log(ev, "A", log));
  auto b = asioloop::create_task(wait_and_log(ev, "B", log));
  auto c = asioloop::create_task(wait_and_log(ev, "C", log));
  co_await ticks(3);
  a.cancel(); // while waiting
  co_await ticks(3);
  BOOST_TEST(a.cancelled());
  ev.set();
  b.cancel(); // reaches b after set() woke it: the cancellation still wins
  co_await ticks(3);
  BOOST_TEST(b.cancelled());
  BOOST_TEST(c.done());
  BOOST_TEST(log == (strings{"C"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_cancelled_waiter_raises_and_the_others_wake)
{
  run(event_cancel_main);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(lock)

asio::awaitable<void> lock_basics_main()
{
  asioloop::lock l;
  BOOST_TEST(!l.locked());
  BOOST_CHECK_EXCEPTION(l.release(), asioloop::invalid_state_error,
      [](const std::exception& e) { return says(e, "not acquired"); });
  // A free lock is taken without suspending.
  strings log;
  asioloop::get_running_loop().call_soon([&] { log.push_back("soon"); });
  co_await l.acquire();
  log.push_back("acquired");
  BOOST_TEST(l.locked());
  l.release();
  BOOST_TEST(!l.locked());
  co_await ticks(1);
  BOOST_TEST(log == (strings{"acquired", "soon"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(acquire_release_and_errors)
{
  run(lock_basics_main);
}

asio::awaitable<void> lock_fifo_main()
{
  asioloop::lock l;
  strings log;
  co_await l.acquire();
  std::vector<task<void>> tasks;
  for (const char* name : {"A", "B", "C"})
    tasks.push_back(asioloop::create_task(hold_for_a_second(l, name, log)));
  co_await ticks(3);
  BOOST_TEST(log.empty());
  l.release();
  // Handed straight to A: the lock stays locked, and a newcomer queues.
  BOOST_TEST(l.locked());
  tasks.push_back(asioloop::create_task(hold_for_a_second(l, "D", log)));
  for (auto& t : tasks)
    co_await std::move(t);
  BOOST_TEST(log
          == (strings{"A in", "A out", "B in", "B out", "C in", "C out", "D in", "D out"}),
      boost::test_tools::per_element());
  BOOST_TEST(!l.locked());
}

BOOST_AUTO_TEST_CASE(waiters_acquire_first_come_first_served)
{
  run(lock_fifo_main);
}

asio::awaitable<void> lock_cancel_main()
{
  // test_acquire_cancel and test_cancel_race of test_locks.py.
  asioloop::lock l;
  strings log;
  co_await l.acquire();
  auto a = asioloop::create_task(acquire_and_log(l, "A", log));
  auto b = asioloop::create_task(acquire_and_log(l, "B", log));
  co_await ticks(3);
  a.cancel();
  co_await ticks(3);
  BOOST_TEST(a.cancelled());
  BOOST_TEST(l.locked());
  l.release(); // goes to B, A having left the line
  co_await std::move(b);
  BOOST_TEST(log == (strings{"B"}), boost::test_tools::per_element());
  BOOST_TEST(l.locked());
  l.release();
  BOOST_TEST(!l.locked());
}

BOOST_AUTO_TEST_CASE(a_cancelled_waiter_never_takes_the_lock)
{
  run(lock_cancel_main);
}

asio::awaitable<void> lock_woken_cancel_main(bool someone_behind)
{
  // test_cancel_release_race and test_finished_waiter_cancelled: the lock
  // handed to a task that is cancelled before it resumes goes on to the
  // next, or is released.
  asioloop::lock l;
  strings log;
  co_await l.acquire();
  auto a = asioloop::create_task(acquire_and_log(l, "A", log));
  std::optional<task<void>> b;
  if (someone_behind)
    b = asioloop::create_task(acquire_and_log(l, "B", log));
  co_await ticks(3);
  l.release(); // hands the lock to A, which is cancelled before it resumes
  a.cancel();
  co_await ticks(3);
  BOOST_TEST(a.cancelled());
  if (someone_behind)
  {
    BOOST_TEST(b->done());
    BOOST_TEST(log == (strings{"B"}), boost::test_tools::per_element());
    BOOST_TEST(l.locked()); // B holds it
    l.release();
  }
  else
    BOOST_TEST(!l.locked());
}

BOOST_AUTO_TEST_CASE(a_lock_handed_to_a_cancelled_waiter_goes_to_the_next)
{
  run([] { return lock_woken_cancel_main(true); });
}

BOOST_AUTO_TEST_CASE(a_lock_handed_to_a_cancelled_waiter_is_released)
{
  run([] { return lock_woken_cancel_main(false); });
}

asio::awaitable<void> guard_main()
{
  asioloop::lock l;
  try
  {
    auto held = co_await l.scoped();
    BOOST_TEST(l.locked());
    BOOST_TEST(held.owns_lock());
    throw std::runtime_error("boom");
  }
  catch (const std::runtime_error&)
  {
  }
  BOOST_TEST(!l.locked());
  auto held = co_await l.scoped();
  held.unlock();
  BOOST_TEST(!l.locked());
  BOOST_TEST(!held.owns_lock());
  BOOST_CHECK_EXCEPTION(held.unlock(), asioloop::invalid_state_error,
      [](const std::exception& e) { return says(e, "holds nothing"); });
  auto again = co_await l.scoped();
  auto moved = std::move(again);
  BOOST_TEST(!again.owns_lock());
  BOOST_TEST(moved.owns_lock());
  BOOST_TEST(l.locked());
}

BOOST_AUTO_TEST_CASE(a_guard_releases_when_it_ends)
{
  run(guard_main);
}

asio::awaitable<void> holder_cancelled_main()
{
  // A task cancelled while it holds the lock releases it through its guard,
  // and the next waiter gets it.
  asioloop::lock l;
  strings log;
  auto holder = asioloop::create_task(hold_for_a_second(l, "H", log));
  co_await ticks(3);
  auto next = asioloop::create_task(acquire_and_log(l, "N", log));
  co_await ticks(3);
  holder.cancel();
  co_await std::move(next);
  BOOST_TEST(holder.cancelled());
  BOOST_TEST(log == (strings{"H in", "N"}), boost::test_tools::per_element());
  BOOST_TEST(l.locked()); // N holds it
}

BOOST_AUTO_TEST_CASE(a_holder_cancelled_while_holding_releases_the_lock)
{
  run(holder_cancelled_main);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(semaphore)

BOOST_AUTO_TEST_CASE(a_negative_value_is_refused)
{
  BOOST_CHECK_EXCEPTION(asioloop::semaphore{-1}, std::invalid_argument,
      [](const std::exception& e) { return says(e, ">= 0"); });
  BOOST_CHECK_THROW(asioloop::bounded_semaphore{-1}, std::invalid_argument);
}

asio::awaitable<void> semaphore_main()
{
  asioloop::semaphore sem{2};
  strings log;
  BOOST_TEST(!sem.locked());
  co_await sem.acquire(); // no suspension while permits are left
  co_await sem.acquire();
  BOOST_TEST(sem.locked());
  std::vector<task<void>> tasks;
  for (const char* name : {"A", "B", "C"})
    tasks.push_back(asioloop::create_task(acquire_and_log(sem, name, log)));
  co_await ticks(3);
  BOOST_TEST(log.empty());
  sem.release();
  sem.release();
  co_await ticks(3);
  BOOST_TEST(log == (strings{"A", "B"}), boost::test_tools::per_element());
  BOOST_TEST(sem.locked());
  sem.release();
  for (auto& t : tasks)
    co_await std::move(t);
  BOOST_TEST(log == (strings{"A", "B", "C"}), boost::test_tools::per_element());
  // An unbounded semaphore may be released above its initial value.
  for (int i = 0; i < 3; ++i)
    sem.release();
  for (int i = 0; i < 3; ++i)
    co_await sem.acquire();
  BOOST_TEST(sem.locked());
}

BOOST_AUTO_TEST_CASE(permits_go_first_come_first_served)
{
  run(semaphore_main);
}

asio::awaitable<void> semaphore_cancel_main()
{
  asioloop::semaphore sem{0};
  strings log;
  auto a = asioloop::create_task(acquire_and_log(sem, "A", log));
  auto b = asioloop::create_task(acquire_and_log(sem, "B", log));
  auto c = asioloop::create_task(acquire_and_log(sem, "C", log));
  co_await ticks(3);
  a.cancel(); // while waiting: takes no permit
  co_await ticks(3);
  BOOST_TEST(a.cancelled());
  sem.release(); // handed to B, cancelled before it resumes: goes on to C
  b.cancel();
  co_await ticks(3);
  BOOST_TEST(b.cancelled());
  BOOST_TEST(c.done());
  BOOST_TEST(log == (strings{"C"}), boost::test_tools::per_element());
  BOOST_TEST(sem.locked());
  // With nobody behind, the permit handed to a cancelled waiter comes back.
  auto d = asioloop::create_task(acquire_and_log(sem, "D", log));
  co_await ticks(3);
  sem.release();
  d.cancel();
  co_await ticks(3);
  BOOST_TEST(d.cancelled());
  BOOST_TEST(!sem.locked());
  co_await sem.acquire();
  BOOST_TEST(sem.locked());
}

BOOST_AUTO_TEST_CASE(a_cancelled_waiter_loses_no_permit)
{
  run(semaphore_cancel_main);
}

asio::awaitable<void> bounded_main()
{
  asioloop::bounded_semaphore sem{1};
  BOOST_CHECK_EXCEPTION(sem.release(), asioloop::invalid_state_error,
      [](const std::exception& e) { return says(e, "released too many times"); });
  {
    auto held = co_await sem.scoped();
    BOOST_TEST(sem.locked());
  }
  BOOST_TEST(!sem.locked());
  co_await sem.acquire();
  sem.release();
  BOOST_CHECK_THROW(sem.release(), asioloop::invalid_state_error);
  // Through a reference to its base, too.
  asioloop::semaphore& base = sem;
  BOOST_CHECK_THROW(base.release(), asioloop::invalid_state_error);
}

BOOST_AUTO_TEST_CASE(a_bounded_semaphore_refuses_extra_releases)
{
  run(bounded_main);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(condition)

asio::awaitable<void> wait_and_log_cond(asioloop::condition& c, std::string name, strings& log)
{
  auto held = co_await c.scoped();
  co_await c.wait();
  BOOST_TEST(c.locked()); // wait() returns with the lock held
  log.push_back(name);
}

asio::awaitable<void> condition_errors_main()
{
  asioloop::condition c;
  BOOST_CHECK_EXCEPTION(co_await c.wait(), asioloop::invalid_state_error,
      [](const std::exception& e) { return says(e, "lock is not acquired"); });
  BOOST_CHECK_THROW(c.notify(), asioloop::invalid_state_error);
  BOOST_CHECK_THROW(c.notify_all(), asioloop::invalid_state_error);
  BOOST_CHECK_THROW(c.release(), asioloop::invalid_state_error);
}

BOOST_AUTO_TEST_CASE(waiting_or_notifying_needs_the_lock)
{
  run(condition_errors_main);
}

asio::awaitable<void> notify_main()
{
  // test_notify of test_locks.py.
  asioloop::condition c;
  strings log;
  std::vector<task<void>> tasks;
  for (const char* name : {"1", "2", "3"})
    tasks.push_back(asioloop::create_task(wait_and_log_cond(c, name, log)));
  co_await ticks(3);
  BOOST_TEST(log.empty());
  {
    auto held = co_await c.scoped();
    c.notify(1);
    co_await ticks(3);
    BOOST_TEST(log.empty()); // the notified task needs the lock first
  }
  co_await ticks(3);
  BOOST_TEST(log == (strings{"1"}), boost::test_tools::per_element());
  {
    auto held = co_await c.scoped();
    c.notify(2048);
  }
  for (auto& t : tasks)
    co_await std::move(t);
  BOOST_TEST(log == (strings{"1", "2", "3"}), boost::test_tools::per_element());
  BOOST_TEST(!c.locked());
}

BOOST_AUTO_TEST_CASE(notify_wakes_first_come_first_served)
{
  run(notify_main);
}

asio::awaitable<void> notify_all_main()
{
  asioloop::lock shared;
  asioloop::condition c{shared};
  strings log;
  std::vector<task<void>> tasks;
  for (const char* name : {"1", "2", "3"})
    tasks.push_back(asioloop::create_task(wait_and_log_cond(c, name, log)));
  co_await ticks(3);
  {
    auto held = co_await shared.scoped();
    BOOST_TEST(c.locked()); // the condition's lock is the shared one
    c.notify_all();
  }
  for (auto& t : tasks)
    co_await std::move(t);
  BOOST_TEST(log == (strings{"1", "2", "3"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(notify_all_wakes_everyone)
{
  run(notify_all_main);
}

asio::awaitable<int> wait_for_value(asioloop::condition& c, int& value)
{
  auto held = co_await c.scoped();
  co_return co_await c.wait_for([&] { return value >= 3 ? value : 0; });
}

asio::awaitable<void> wait_for_main()
{
  asioloop::condition c;
  int value = 0;
  auto t = asioloop::create_task(wait_for_value(c, value));
  for (int i = 1; i <= 3; ++i)
  {
    co_await ticks(3);
    BOOST_TEST(!t.done());
    auto held = co_await c.scoped();
    value = i;
    c.notify();
  }
  BOOST_TEST(co_await std::move(t) == 3);
}

BOOST_AUTO_TEST_CASE(wait_for_waits_until_the_predicate_holds)
{
  run(wait_for_main);
}

asio::awaitable<void> cancelled_wait(asioloop::condition& c, strings& log)
{
  auto held = co_await c.scoped();
  try
  {
    co_await c.wait();
  }
  catch (const asioloop::cancelled_error&)
  {
    log.push_back(c.locked() ? "cancelled, lock held" : "cancelled, lock free");
    throw;
  }
}

asio::awaitable<void> cancel_reacquires_main()
{
  asioloop::condition c;
  strings log;
  auto t = asioloop::create_task(cancelled_wait(c, log));
  co_await ticks(3);
  co_await c.acquire();
  t.cancel();
  co_await ticks(3);
  // The cancelled waiter is waiting for the lock before it raises.
  BOOST_TEST(!t.done());
  BOOST_TEST(log.empty());
  c.release();
  co_await ticks(3);
  BOOST_TEST(t.cancelled());
  BOOST_TEST(log == (strings{"cancelled, lock held"}), boost::test_tools::per_element());
  BOOST_TEST(!c.locked()); // released by the waiter's guard
}

BOOST_AUTO_TEST_CASE(a_cancelled_wait_acquires_the_lock_before_raising)
{
  run(cancel_reacquires_main);
}

asio::awaitable<void> notified_then_cancelled_main(bool resumed_first)
{
  asioloop::condition c;
  strings log;
  auto a = asioloop::create_task(wait_and_log_cond(c, "A", log));
  auto b = asioloop::create_task(wait_and_log_cond(c, "B", log));
  co_await ticks(3);
  co_await c.acquire();
  if (resumed_first)
  {
    // A is notified and resumes, then is cancelled while it waits for the
    // lock: once it has the lock it raises, and passes the notification on.
    c.notify();
    co_await ticks(3);
    a.cancel();
  }
  else
  {
    // A is notified and cancelled before it resumes.
    c.notify();
    a.cancel();
  }
  co_await ticks(3);
  c.release();
  co_await std::move(b);
  co_await ticks(3);
  BOOST_TEST(a.cancelled());
  BOOST_TEST(log == (strings{"B"}), boost::test_tools::per_element());
  BOOST_TEST(!c.locked());
}

BOOST_AUTO_TEST_CASE(a_notification_to_a_cancelled_waiter_goes_to_the_next)
{
  run([] { return notified_then_cancelled_main(false); });
}

BOOST_AUTO_TEST_CASE(a_waiter_cancelled_while_reacquiring_passes_the_notification_on)
{
  run([] { return notified_then_cancelled_main(true); });
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(loops)

struct sentinel
{
  bool* destroyed;
  ~sentinel() { *destroyed = true; }
};

asio::awaitable<void> acquire_forever(asioloop::lock& l, bool* destroyed)
{
  sentinel s{destroyed};
  co_await l.acquire();
}

BOOST_AUTO_TEST_CASE(a_waiter_pending_when_the_loop_closes_is_destroyed)
{
  asioloop::lock l; // outlives the loop
  bool destroyed = false;
  {
    event_loop loop{asioloop::virtual_clock};
    loop.set_exception_handler([](event_loop&, const asioloop::error_context&) {});
    loop.call_soon([&] {
      loop.create_task(acquire_forever(l, &destroyed)); // takes it
      loop.create_task(acquire_forever(l, &destroyed)); // waits
    });
    asioloop::test::run_until(loop, [&] { return destroyed; });
    destroyed = false;
  }
  BOOST_TEST(destroyed);
  BOOST_TEST(l.locked()); // nobody released it
}

BOOST_AUTO_TEST_SUITE_END()
