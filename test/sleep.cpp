//
// test/sleep.cpp
//
// asioloop::sleep: ordering with the loop's timers, the plain yield of
// sleep(0s), completion tokens, virtual time, and cancellation.
//

#include <asioloop/sleep.hpp>

#include "support/loop_fixture.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/test/unit_test.hpp>

#include <string>
#include <vector>

namespace asio = boost::asio;
using asioloop::event_loop;
using asioloop::test::run_until;
using asioloop::test::strings;
using namespace std::chrono_literals;

BOOST_AUTO_TEST_CASE(sleep_orders_with_call_later_as_in_asyncio)
{
  // The walkthrough's b2: call_later(2, mark_done) then sleep(2).
  event_loop loop{asioloop::virtual_clock};
  strings out;
  auto b2 = [&]() -> asio::awaitable<void> {
    auto& l = asioloop::get_running_loop();
    std::string result;
    l.call_later(2s, [&] { out.push_back("Set to: the result"); result = "the result"; });
    l.call_later(1s, [&] { out.push_back("Hello"); });
    l.call_later(1s, [&] { out.push_back("Greeting"); });
    out.push_back("Done: False");
    co_await asioloop::sleep(2s);
    out.push_back("Done: True, Result: " + result);
  };
  loop.run_until_complete(b2());
  BOOST_TEST(out == (strings{"Done: False", "Hello", "Greeting", "Set to: the result",
                        "Done: True, Result: the result"}),
      boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(sleep_zero_yields_exactly_one_iteration)
{
  event_loop loop;
  strings out;
  auto co = [&]() -> asio::awaitable<void> {
    auto& l = asioloop::get_running_loop();
    l.call_soon([&] { out.push_back("soon-1"); });
    co_await asioloop::sleep(0s);
    out.push_back("resumed");
    l.call_soon([&] { out.push_back("soon-2"); });
    co_await asioloop::sleep(0s);
    out.push_back("resumed-again");
  };
  loop.call_soon([&] { out.push_back("before"); });
  loop.run_until_complete(co());
  // b1 of the walkthrough: callbacks queued before the sleep run first.
  BOOST_TEST(out == (strings{"before", "soon-1", "resumed", "soon-2", "resumed-again"}),
      boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(sleep_follows_virtual_time)
{
  event_loop loop{asioloop::virtual_clock};
  const auto start = loop.time();
  const auto wall = std::chrono::steady_clock::now();
  auto co = [&]() -> asio::awaitable<asioloop::clock::duration> {
    co_await asioloop::sleep(1h);
    co_return asioloop::get_running_loop().time() - start;
  };
  BOOST_TEST((loop.run_until_complete(co()) == 1h));
  BOOST_TEST((std::chrono::steady_clock::now() - wall < 5s));
}

BOOST_AUTO_TEST_CASE(sleep_takes_any_completion_token)
{
  event_loop loop{asioloop::virtual_clock};
  boost::system::error_code got = asio::error::eof;
  bool done = false;
  loop.call_soon([&] {
    asioloop::sleep(3s, [&](boost::system::error_code ec) { got = ec; done = true; });
  });
  run_until(loop, [&] { return done; });
  BOOST_TEST(!got);

  // use_awaitable works as well as the default deferred token.
  auto co = []() -> asio::awaitable<int> {
    co_await asioloop::sleep(1s, asio::use_awaitable);
    co_return 7;
  };
  BOOST_TEST(loop.run_until_complete(co()) == 7);
}

BOOST_AUTO_TEST_CASE(sleep_outside_loop_work_throws)
{
  BOOST_CHECK_THROW(asioloop::sleep(1s, [](boost::system::error_code) {}),
      asioloop::no_running_loop_error);
}

BOOST_AUTO_TEST_CASE(cancelling_a_sleeping_coroutine_wakes_it_at_once)
{
  event_loop loop{asioloop::virtual_clock};
  asio::cancellation_signal signal;
  std::string outcome;
  asioloop::clock::time_point woke{};
  const auto start = loop.time();
  asio::co_spawn(loop.get_executor(),
      [&]() -> asio::awaitable<void> {
        try
        {
          co_await asioloop::sleep(1h);
          outcome = "slept";
        }
        catch (const boost::system::system_error& e)
        {
          outcome = e.code() == asio::error::operation_aborted ? "aborted" : "other";
        }
        woke = asioloop::get_running_loop().time();
      },
      asio::bind_cancellation_slot(signal.slot(), asio::detached));
  loop.call_later(5s, [&] { signal.emit(asio::cancellation_type::terminal); });
  run_until(loop, [&] { return !outcome.empty(); });
  BOOST_TEST(outcome == "aborted");
  BOOST_TEST((woke - start == 5s)); // at once, not after the hour
}

BOOST_AUTO_TEST_CASE(a_callback_cancelled_sleep_completes_once)
{
  event_loop loop{asioloop::virtual_clock};
  asio::cancellation_signal signal;
  std::vector<boost::system::error_code> results;
  loop.call_soon([&] {
    asioloop::sleep(10s, asio::bind_cancellation_slot(signal.slot(),
        [&](boost::system::error_code ec) { results.push_back(ec); }));
  });
  loop.call_later(1s, [&] {
    signal.emit(asio::cancellation_type::terminal);
    signal.emit(asio::cancellation_type::terminal); // a second emit is harmless
  });
  loop.call_later(20s, [&] { loop.stop(); });
  loop.run_forever();
  BOOST_TEST_REQUIRE(results.size() == 1u);
  BOOST_TEST((results[0] == asio::error::operation_aborted));
}
