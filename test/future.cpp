//
// test/future.cpp
//
// future<T>: every state transition and its error, done callbacks and their
// order, awaiting with and without tokens, cancellation, repr, lifetime.
//

#include <asioloop/future.hpp>

#include "support/loop_fixture.hpp"

#include <asioloop/sleep.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/test/unit_test.hpp>

#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace asio = boost::asio;
using asioloop::event_loop;
using asioloop::future;
using asioloop::test::repr;
using asioloop::test::run_until;
using asioloop::test::strings;
using namespace std::chrono_literals;

namespace {



std::vector<int>* order_log = nullptr;

void record(const future<int>& f, int tag)
{
  order_log->push_back(tag * 100 + f.result());
}

} // namespace

BOOST_AUTO_TEST_SUITE(states)

BOOST_AUTO_TEST_CASE(a_result_is_set_once)
{
  event_loop loop;
  auto f = loop.create_future<int>();
  BOOST_TEST(f.valid());
  BOOST_TEST(!f.done());
  BOOST_TEST(!f.cancelled());
  BOOST_CHECK_THROW(f.result(), asioloop::invalid_state_error);
  BOOST_CHECK_THROW(f.exception(), asioloop::invalid_state_error);
  f.set_result(42);
  BOOST_TEST(f.done());
  BOOST_TEST(f.result() == 42);
  BOOST_TEST(!f.exception());
  BOOST_CHECK_THROW(f.set_result(1), asioloop::invalid_state_error);
  BOOST_CHECK_THROW(f.set_exception(std::make_exception_ptr(std::runtime_error("x"))),
      asioloop::invalid_state_error);
  BOOST_TEST(!f.cancel());
  BOOST_TEST(f.result() == 42);
  BOOST_TEST(&f.get_loop() == &loop);
}

BOOST_AUTO_TEST_CASE(an_exception_is_rethrown_by_result)
{
  event_loop loop;
  auto f = loop.create_future<std::string>();
  f.set_exception(std::make_exception_ptr(std::runtime_error("boom")));
  BOOST_TEST(f.done());
  BOOST_CHECK_EXCEPTION(f.result(), std::runtime_error,
      [](const std::runtime_error& e) { return std::string(e.what()) == "boom"; });
  BOOST_TEST(static_cast<bool>(f.exception()));
  BOOST_CHECK_THROW(f.set_exception(nullptr), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(cancel_carries_its_message)
{
  event_loop loop;
  auto f = loop.create_future<int>();
  BOOST_TEST(f.cancel("no longer needed"));
  BOOST_TEST(f.cancelled());
  BOOST_TEST(f.done());
  BOOST_TEST(!f.cancel());
  BOOST_CHECK_EXCEPTION(f.result(), asioloop::cancelled_error,
      [](const asioloop::cancelled_error& e) {
        return std::string(e.what()) == "no longer needed";
      });
  BOOST_CHECK_THROW(f.exception(), asioloop::cancelled_error);
  BOOST_CHECK_THROW(f.set_result(1), asioloop::invalid_state_error);
  try
  {
    f.set_result(1);
  }
  catch (const asioloop::invalid_state_error& e)
  {
    BOOST_TEST(std::string(e.what()).find("cancelled") != std::string::npos);
  }
  auto g = loop.create_future<void>();
  g.cancel();
  BOOST_CHECK_EXCEPTION(g.result(), asioloop::cancelled_error,
      [](const asioloop::cancelled_error& e) { return std::string(e.what()) == "cancelled"; });
}

BOOST_AUTO_TEST_CASE(void_futures)
{
  event_loop loop;
  auto f = loop.create_future();
  f.set_result();
  BOOST_TEST(f.done());
  f.result();
  BOOST_CHECK_THROW(f.set_result(), asioloop::invalid_state_error);
}

BOOST_AUTO_TEST_CASE(copies_share_the_state)
{
  event_loop loop;
  auto f = loop.create_future<int>();
  future<int> g = f;
  g.set_result(5);
  BOOST_TEST(f.result() == 5);
  BOOST_TEST((f == g));
}

BOOST_AUTO_TEST_CASE(a_closed_loop_makes_no_futures)
{
  event_loop loop;
  loop.close();
  BOOST_CHECK_THROW(loop.create_future<int>(), asioloop::loop_closed_error);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(done_callbacks)

BOOST_AUTO_TEST_CASE(run_in_order_through_the_ready_queue)
{
  event_loop loop;
  std::vector<int> log;
  order_log = &log;
  auto f = loop.create_future<int>();
  f.add_done_callback(record, 1);
  f.add_done_callback([&](const future<int>& g, int n) { log.push_back(n * 100 + g.result()); }, 2);
  f.add_done_callback(record, 3);
  loop.call_soon([&] {
    f.set_result(7);
    log.push_back(-1); // callbacks never run inline
  });
  run_until(loop, [&] { return log.size() == 4; });
  BOOST_TEST(log == (std::vector<int>{-1, 107, 207, 307}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_callback_added_after_completion_is_scheduled_at_once)
{
  event_loop loop;
  strings log;
  auto f = loop.create_future<int>();
  f.set_result(1);
  loop.call_soon([&] {
    f.add_done_callback([&](const future<int>&) { log.push_back("callback"); });
    loop.call_soon([&] { log.push_back("soon"); });
    log.push_back("adder");
  });
  run_until(loop, [&] { return log.size() == 3; });
  BOOST_TEST(log == (strings{"adder", "callback", "soon"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(remove_by_function_pointer_and_by_id)
{
  event_loop loop;
  std::vector<int> log;
  order_log = &log;
  auto f = loop.create_future<int>();
  f.add_done_callback(record, 1);
  auto id = f.add_done_callback([&](const future<int>&) { log.push_back(-2); });
  f.add_done_callback(record, 3);
  f.add_done_callback([&](const future<int>&) { log.push_back(-4); });
  BOOST_TEST(f.remove_done_callback(record) == 2u);
  BOOST_TEST(f.remove_done_callback(record) == 0u);
  BOOST_TEST(f.remove_done_callback(id) == 1u);
  BOOST_TEST(f.remove_done_callback(id) == 0u);
  f.set_result(0);
  run_until(loop, [&] { return !log.empty(); });
  BOOST_TEST(log == (std::vector<int>{-4}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(awaiting)

BOOST_AUTO_TEST_CASE(co_await_gives_the_value_and_keeps_the_handle)
{
  event_loop loop;
  auto f = loop.create_future<std::string>();
  loop.call_soon([f]() mutable { f.set_result("A"); });
  auto co = [&]() -> asio::awaitable<std::string> {
    std::string a = co_await std::move(f);
    std::string b = co_await f(); // a named future, through its call operator
    co_return a + b;
  };
  BOOST_TEST(loop.run_until_complete(co()) == "AA");
  BOOST_TEST(f.valid());
  BOOST_TEST(f.result() == "A");
}

BOOST_AUTO_TEST_CASE(callbacks_added_before_the_await_run_before_the_wake_up)
{
  event_loop loop;
  strings log;
  auto f = loop.create_future<int>();
  f.add_done_callback([&](const future<int>&) { log.push_back("callback-1"); });
  auto co = [&]() -> asio::awaitable<void> {
    int v = co_await std::move(f);
    log.push_back("resumed " + std::to_string(v));
  };
  asio::co_spawn(loop.get_executor(), co(), asio::detached);
  loop.call_soon([&] {
    f.add_done_callback([&](const future<int>&) { log.push_back("callback-2"); });
  });
  loop.call_soon([&] { loop.call_soon([&] { f.set_result(3); }); });
  run_until(loop, [&] { return log.size() == 3; });
  // The waiter registered before callback-2, so it resumes before it.
  BOOST_TEST(log == (strings{"callback-1", "resumed 3", "callback-2"}),
      boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(exceptions_and_cancellation_reach_the_coroutine)
{
  event_loop loop;
  auto failing = loop.create_future<int>();
  failing.set_exception(std::make_exception_ptr(std::logic_error("bad")));
  auto co = [&]() -> asio::awaitable<int> { co_return co_await std::move(failing); };
  BOOST_CHECK_THROW(loop.run_until_complete(co()), std::logic_error);

  auto cancelled = loop.create_future<void>();
  loop.call_soon([&] { cancelled.cancel("stop it"); });
  auto co2 = [&]() -> asio::awaitable<void> { co_await std::move(cancelled); };
  BOOST_CHECK_EXCEPTION(loop.run_until_complete(co2()), asioloop::cancelled_error,
      [](const asioloop::cancelled_error& e) { return std::string(e.what()) == "stop it"; });
}

BOOST_AUTO_TEST_CASE(any_completion_token)
{
  event_loop loop;
  auto f = loop.create_future<int>();
  int got = 0;
  f([&](std::exception_ptr e, int v) { got = e ? -1 : v; });
  auto deferred = f(asio::deferred);
  auto co = [&]() -> asio::awaitable<int> {
    int a = co_await std::move(deferred);
    int b = co_await f(asio::use_awaitable);
    co_return a + b;
  };
  loop.call_soon([&] { f.set_result(21); });
  BOOST_TEST(loop.run_until_complete(co()) == 42);
  BOOST_TEST(got == 21);
}

BOOST_AUTO_TEST_CASE(cancelling_the_wait_cancels_the_future)
{
  event_loop loop{asioloop::virtual_clock};
  auto f = loop.create_future<int>();
  asio::cancellation_signal signal;
  std::string outcome;
  asio::co_spawn(loop.get_executor(),
      [&]() -> asio::awaitable<void> {
        try
        {
          co_await std::move(f);
          outcome = "value";
        }
        catch (const asioloop::cancelled_error&)
        {
          outcome = "cancelled";
        }
      },
      asio::bind_cancellation_slot(signal.slot(), asio::detached));
  loop.call_later(1s, [&] { signal.emit(asio::cancellation_type::terminal); });
  run_until(loop, [&] { return !outcome.empty(); });
  BOOST_TEST(outcome == "cancelled");
  BOOST_TEST(f.cancelled());
}

BOOST_AUTO_TEST_CASE(a_coroutine_waiting_at_close_is_destroyed_not_leaked)
{
  auto token = std::make_shared<int>(0);
  std::weak_ptr<int> watch = token;
  {
    event_loop loop;
    auto f = loop.create_future<int>();
    asio::co_spawn(loop.get_executor(),
        [f, token]() mutable -> asio::awaitable<void> {
          co_await std::move(f); // never completes
        },
        asio::detached);
    token.reset();
    loop.call_soon([&] { loop.call_soon([&] { loop.stop(); }); });
    loop.run_forever();
    BOOST_TEST(!watch.expired()); // the coroutine waits, holding the token
  }
  BOOST_TEST(watch.expired()); // the close destroyed its frame
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_CASE(repr_is_asyncio_like)
{
  event_loop loop;
  auto f = loop.create_future<int>();
  BOOST_TEST(repr(f) == "<future pending>");
  f.set_result(42);
  BOOST_TEST(repr(f) == "<future finished result=42>");
  auto s = loop.create_future<std::string>();
  s.set_result("A");
  BOOST_TEST(repr(s) == "<future finished result='A'>");
  auto c = loop.create_future<int>();
  c.cancel();
  BOOST_TEST(repr(c) == "<future cancelled>");
  auto e = loop.create_future<int>();
  e.set_exception(std::make_exception_ptr(std::runtime_error("boom")));
  BOOST_TEST(repr(e) == "<future finished exception=std::runtime_error('boom')>");
  auto v = loop.create_future();
  v.set_result();
  BOOST_TEST(repr(v) == "<future finished result=None>");
}
