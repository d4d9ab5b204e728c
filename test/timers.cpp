//
// test/timers.cpp
//
// call_later, call_at, loop.time(), virtual time and debug mode. Timer tests
// run on virtual time unless they are about the real clock; those use
// generous bounds.
//

#include <asioloop/event_loop.hpp>

#include "support/loop_fixture.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using asioloop::event_loop;
using asioloop::test::journal;
using asioloop::test::run_until;
using asioloop::test::strings;
using namespace std::chrono_literals;

BOOST_AUTO_TEST_SUITE(ordering)

BOOST_AUTO_TEST_CASE(earlier_due_times_run_first_and_equal_ones_in_order)
{
  event_loop loop{asioloop::virtual_clock};
  journal j;
  loop.call_later(2s, [&] { j("2s"); });
  loop.call_later(1s, [&] { j("1s-a"); });
  loop.call_later(1s, [&] { j("1s-b"); });
  loop.call_at(loop.time() + 1s, [&] { j("1s-c"); });
  loop.call_later(3s, [&] { j("3s"); loop.stop(); });
  loop.run_forever();
  BOOST_TEST(j.lines == (strings{"1s-a", "1s-b", "1s-c", "2s", "3s"}),
      boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(past_due_times_run_on_the_next_iteration_earliest_first)
{
  event_loop loop{asioloop::virtual_clock};
  journal j;
  loop.call_soon([&] {
    loop.call_later(-1s, [&] { j("minus-1s"); });
    loop.call_later(-2s, [&] { j("minus-2s"); });
    loop.call_later(0s, [&] { j("zero"); });
    loop.call_soon([&] { j("soon"); });
    j("scheduler");
  });
  loop.call_later(1ms, [&] { loop.stop(); });
  loop.run_forever();
  // call_soon joined the ready queue at once; due timers join it at the
  // start of the next iteration, earliest first.
  BOOST_TEST(j.lines == (strings{"scheduler", "soon", "minus-2s", "minus-1s", "zero"}),
      boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(when_is_exact)
{
  event_loop loop{asioloop::virtual_clock};
  const auto t = loop.time();
  BOOST_TEST((loop.time() == t)); // virtual time stands still
  auto a = loop.call_later(1500ms, [] {});
  auto b = loop.call_at(t + 7s, [] {});
  auto c = loop.call_later(std::chrono::duration<double>(0.25), [] {});
  BOOST_TEST((a.when() == t + 1500ms));
  BOOST_TEST((b.when() == t + 7s));
  BOOST_TEST((c.when() == t + 250ms));
}

BOOST_AUTO_TEST_CASE(a_cancelled_timer_never_runs)
{
  event_loop loop{asioloop::virtual_clock};
  journal j;
  auto h = loop.call_later(1s, [&] { j("cancelled"); });
  loop.call_later(2s, [&] { j("kept"); loop.stop(); });
  h.cancel();
  BOOST_TEST(h.cancelled());
  loop.run_forever();
  BOOST_TEST(j.lines == (strings{"kept"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_timer_cancelled_during_its_batch_is_skipped)
{
  event_loop loop{asioloop::virtual_clock};
  journal j;
  asioloop::timer_handle second;
  loop.call_later(1s, [&] { j("first"); second.cancel(); });
  second = loop.call_later(1s, [&] { j("second"); });
  loop.call_later(1s, [&] { j("third"); loop.stop(); });
  loop.run_forever();
  BOOST_TEST(j.lines == (strings{"first", "third"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(many_random_timers_fire_in_time_order)
{
  event_loop loop{asioloop::virtual_clock};
  std::mt19937 rng(42);
  std::uniform_int_distribution<int> ms(0, 10000);
  constexpr int n = 20000;
  std::vector<std::pair<asioloop::clock::time_point, int>> fired;
  std::vector<std::pair<asioloop::clock::time_point, int>> expected;
  for (int i = 0; i < n; ++i)
  {
    auto h = loop.call_later(std::chrono::milliseconds(ms(rng)),
        [&fired, &loop](int i) { fired.emplace_back(loop.time(), i); }, i);
    expected.emplace_back(h.when(), i);
  }
  // Equal due times keep registration order: a stable sort gives the order.
  std::stable_sort(expected.begin(), expected.end(),
      [](auto& a, auto& b) { return a.first < b.first; });
  run_until(loop, [&] { return fired.size() == n; });
  BOOST_TEST_REQUIRE(fired.size() == static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i)
  {
    BOOST_TEST_REQUIRE(fired[i].second == expected[i].second);
    BOOST_TEST_REQUIRE((fired[i].first == expected[i].first)); // never early
  }
}

BOOST_AUTO_TEST_CASE(mass_cancellation_is_swept)
{
  event_loop loop{asioloop::virtual_clock};
  int ran = 0;
  std::vector<asioloop::timer_handle> handles;
  for (int i = 0; i < 50000; ++i)
  {
    handles.push_back(loop.call_later(10s, [&] { ++ran; }));
    handles.back().cancel();
  }
  loop.call_later(20s, [&] { loop.stop(); });
  loop.run_forever();
  BOOST_TEST(ran == 0);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(virtual_time)

BOOST_AUTO_TEST_CASE(a_long_delay_runs_at_once)
{
  event_loop loop{asioloop::virtual_clock};
  BOOST_TEST(loop.is_virtual_time());
  const auto start = loop.time();
  const auto wall = std::chrono::steady_clock::now();
  asioloop::clock::time_point fired_at{};
  loop.call_later(10s, [&] { fired_at = loop.time(); loop.stop(); });
  loop.run_forever();
  BOOST_TEST((fired_at - start == 10s));
  BOOST_TEST((std::chrono::steady_clock::now() - wall < 5s));
}

BOOST_AUTO_TEST_CASE(advance_moves_the_clock_by_hand)
{
  event_loop loop{asioloop::virtual_clock};
  journal j;
  const auto start = loop.time();
  loop.call_later(5s, [&] { j("5s"); });
  loop.call_later(20s, [&] { j("20s"); });
  loop.call_soon([&] {
    loop.advance(6s);
    BOOST_TEST((loop.time() - start == 6s));
    loop.call_soon([&] { j("after-advance"); loop.stop(); });
  });
  loop.run_forever();
  // The 5 s timer became due at the advance and joined the next iteration
  // after the callback already queued, as due timers do in asyncio; the 20 s
  // timer did not run.
  BOOST_TEST(j.lines == (strings{"after-advance", "5s"}), boost::test_tools::per_element());
  BOOST_CHECK_THROW(event_loop{}.advance(1s), std::logic_error);
}

BOOST_AUTO_TEST_CASE(pending_asio_work_is_waited_for_before_the_clock_jumps)
{
  event_loop loop{asioloop::virtual_clock};
  journal j;
  // A real Asio timer on the loop's executor is outside work: the virtual
  // clock must not jump past the hour while it is pending.
  asio::steady_timer real(loop.get_executor(), 20ms);
  real.async_wait([&](auto) { j("asio-timer"); });
  loop.call_later(1h, [&] { j("one-hour"); loop.stop(); });
  const auto wall = std::chrono::steady_clock::now();
  loop.run_forever();
  BOOST_TEST(j.lines == (strings{"asio-timer", "one-hour"}), boost::test_tools::per_element());
  BOOST_TEST((std::chrono::steady_clock::now() - wall < 10s));
}

BOOST_AUTO_TEST_CASE(an_idle_virtual_loop_waits_for_other_threads)
{
  event_loop loop{asioloop::virtual_clock};
  std::atomic<bool> ran{false};
  std::thread other([&] {
    std::this_thread::sleep_for(20ms);
    loop.call_soon_threadsafe([&] { ran = true; loop.stop(); });
  });
  loop.run_forever();
  other.join();
  BOOST_TEST(ran.load());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(real_time)

BOOST_AUTO_TEST_CASE(timers_never_fire_early)
{
  event_loop loop;
  int fired = 0;
  bool early = false;
  for (auto d : {30ms, 10ms, 20ms, 0ms})
  {
    auto when = loop.time() + d;
    loop.call_at(when, [&, when] {
      if (asioloop::clock::now() < when)
        early = true;
      ++fired;
    });
  }
  const auto start = asioloop::clock::now();
  run_until(loop, [&] { return fired == 4; });
  BOOST_TEST(!early);
  BOOST_TEST((asioloop::clock::now() - start >= 30ms));
  BOOST_TEST((asioloop::clock::now() - start < 10s)); // generous
}

BOOST_AUTO_TEST_CASE(a_sleeping_loop_wakes_for_its_timer)
{
  event_loop loop;
  auto h = loop.call_later(50ms, [&] { loop.stop(); });
  loop.run_forever(); // nothing else to do: it sleeps until the timer
  BOOST_TEST((asioloop::clock::now() >= h.when()));
}

BOOST_AUTO_TEST_CASE(timers_on_an_embedded_loop)
{
  asio::io_context ioc(2);
  event_loop loop{ioc.get_executor()};
  journal j;
  loop.call_soon_threadsafe([&] {
    loop.call_later(30ms, [&] { j("30ms"); });
    loop.call_later(10ms, [&] { j("10ms"); });
    loop.call_later(20ms, [&] { j("20ms"); loop.close(); });
  });
  std::thread other([&] { ioc.run(); });
  ioc.run();
  other.join();
  // The 30 ms timer was dropped by the close.
  BOOST_TEST(j.lines == (strings{"10ms", "20ms"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(call_later_from_another_thread_is_carried_over)
{
  event_loop loop;
  std::atomic<bool> ran{false};
  std::thread other([&] {
    loop.call_later(10ms, [&] { ran = true; loop.stop(); });
  });
  other.join();
  loop.run_forever();
  BOOST_TEST(ran.load());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(lifetime)

BOOST_AUTO_TEST_CASE(closing_destroys_pending_timers)
{
  auto token = std::make_shared<int>(0);
  std::weak_ptr<int> watch = token;
  bool ran = false;
  {
    event_loop loop;
    loop.call_later(1h, [&ran, token] { ran = true; });
    token.reset();
    BOOST_TEST(!watch.expired());
    loop.close();
    BOOST_TEST(watch.expired());
    BOOST_CHECK_THROW(loop.call_later(1s, [] {}), asioloop::loop_closed_error);
    BOOST_CHECK_THROW(loop.call_at(loop.time(), [] {}), asioloop::loop_closed_error);
  }
  BOOST_TEST(!ran);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(debug_mode)

BOOST_AUTO_TEST_CASE(slow_callbacks_are_reported)
{
  event_loop loop;
  BOOST_TEST(!loop.get_debug());
  loop.set_debug(true);
  BOOST_TEST(loop.get_debug());
  loop.slow_callback_duration = 5ms;
  std::vector<std::string> reports;
  loop.set_exception_handler(
      [&](event_loop&, const asioloop::error_context& c) { reports.push_back(c.message); });
  bool done = false;
  loop.call_soon([] { std::this_thread::sleep_for(30ms); });
  loop.call_soon([] {}); // fast: not reported
  loop.call_soon([&] { done = true; });
  run_until(loop, [&] { return done; });
  BOOST_TEST_REQUIRE(reports.size() == 1u);
  BOOST_TEST(reports[0].find("Executing ") == 0);
  BOOST_TEST(reports[0].find(" took ") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(slow_callbacks_are_not_reported_without_debug)
{
  event_loop loop;
  loop.slow_callback_duration = 1ms;
  int reports = 0;
  loop.set_exception_handler([&](event_loop&, const asioloop::error_context&) { ++reports; });
  bool done = false;
  loop.call_soon([] { std::this_thread::sleep_for(10ms); });
  loop.call_soon([&] { done = true; });
  run_until(loop, [&] { return done; });
  BOOST_TEST(reports == 0);
}

BOOST_AUTO_TEST_CASE(loop_affine_calls_from_other_threads_are_reported)
{
  event_loop loop;
  loop.set_debug(true);
  std::vector<std::string> reports;
  loop.set_exception_handler(
      [&](event_loop&, const asioloop::error_context& c) { reports.push_back(c.message); });
  std::atomic<int> ran{0};
  loop.call_soon([&] {
    std::thread([&] {
      loop.call_soon([&] { ++ran; });           // reported
      loop.call_later(1ms, [&] { ++ran; });     // reported
      loop.call_soon_threadsafe([&] { ++ran; }); // fine
    }).join();
  });
  run_until(loop, [&] { return ran == 3 && reports.size() == 2; });
  BOOST_TEST_REQUIRE(reports.size() == 2u);
  BOOST_TEST(reports[0].find("call_soon(") == 0);
  BOOST_TEST(reports[1].find("call_later(") == 0);
  // The report names the callback's type.
  BOOST_TEST(reports[0].find("loop_affine_calls_from_other_threads") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
