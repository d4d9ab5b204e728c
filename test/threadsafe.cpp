//
// test/threadsafe.cpp
//
// Stress: many threads submitting to one loop, run_coroutine_threadsafe
// racing cancel, stop and close, loops closed under fire, and loop_thread
// created and destroyed many times. Meant to run under ThreadSanitizer.
//

#include <asioloop/concurrent_future.hpp>
#include <asioloop/loop_thread.hpp>
#include <asioloop/sleep.hpp>

#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using asioloop::event_loop;
using asioloop::loop_thread;
using asioloop::run_coroutine_threadsafe;
using namespace std::chrono_literals;

namespace {

asio::awaitable<int> value_after(std::chrono::microseconds d, int v)
{
  if (d > 0us)
    co_await asioloop::sleep(d);
  else
    co_await asioloop::sleep(0s);
  co_return v;
}

} // namespace

BOOST_AUTO_TEST_CASE(eight_threads_lose_nothing_and_keep_their_order)
{
  constexpr int threads = 8;
  constexpr long per_thread = 100'000;
  loop_thread t;
  // Touched by loop work only.
  std::vector<long> last(threads, -1);
  long ran = 0;
  long misordered = 0;
  std::promise<void> all_ran;
  std::vector<std::thread> producers;
  for (int id = 0; id < threads; ++id)
    producers.emplace_back([&, id] {
      for (long i = 0; i < per_thread; ++i)
        t.loop().call_soon_threadsafe([&, id, i] {
          if (last[id] != i - 1)
            ++misordered;
          last[id] = i;
          if (++ran == threads * per_thread)
            all_ran.set_value();
        });
    });
  for (auto& p : producers)
    p.join();
  auto done = all_ran.get_future();
  BOOST_TEST_REQUIRE((done.wait_for(120s) == std::future_status::ready));
  // Read on the loop's thread, where they were written.
  auto check = [&]() -> asio::awaitable<long> { co_return ran * 1000 + misordered; };
  BOOST_TEST(run_coroutine_threadsafe(check(), t.loop()).result()
      == threads * per_thread * 1000);
}

BOOST_AUTO_TEST_CASE(run_coroutine_threadsafe_races_cancel_stop_and_close)
{
  for (int round = 0; round < 20; ++round)
  {
    auto t = std::make_unique<loop_thread>([](event_loop& loop) {
      // Tasks destroyed pending at close are expected here.
      loop.set_exception_handler([](event_loop&, const asioloop::error_context&) {});
    });
    std::atomic<bool> go{false};
    std::atomic<long> values{0}, cancels{0}, closed{0}, other{0};
    std::vector<std::thread> clients;
    for (int id = 0; id < 4; ++id)
      clients.emplace_back([&, id] {
        std::mt19937 rng(round * 16 + id);
        while (!go)
          std::this_thread::yield();
        for (int i = 0; i < 300; ++i)
        {
          try
          {
            auto f = run_coroutine_threadsafe(
                value_after(std::chrono::microseconds(rng() % 200), i), t->loop());
            if (rng() % 3 == 0)
              f.cancel();
            try
            {
              if (f.result(30s) == i)
                ++values;
              else
                ++other;
            }
            catch (const asioloop::cancelled_error&)
            {
              ++cancels;
            }
          }
          catch (const asioloop::loop_closed_error&)
          {
            ++closed;
          }
          catch (...)
          {
            ++other; // a timeout_error would mean a lost future
          }
        }
      });
    go = true;
    std::this_thread::sleep_for(std::chrono::microseconds(500 * (round % 5)));
    t->stop(); // cancels and awaits what is pending, then closes
    for (auto& c : clients)
      c.join();
    t.reset();
    BOOST_TEST(other.load() == 0);
    BOOST_TEST(values + cancels + closed == 4 * 300);
  }
}

BOOST_AUTO_TEST_CASE(a_loop_closed_under_fire)
{
  // Other threads keep submitting while the loop stops and closes: they get
  // loop_closed_error, or a future failed with it, never a crash or a hang.
  for (int round = 0; round < 20; ++round)
  {
    auto loop = std::make_unique<event_loop>();
    loop->set_exception_handler([](event_loop&, const asioloop::error_context&) {});
    std::atomic<bool> stop_firing{false};
    std::atomic<long> refused{0}, failed{0}, fine{0}, bad{0};
    std::vector<std::thread> shooters;
    for (int id = 0; id < 3; ++id)
      shooters.emplace_back([&, id] {
        while (!stop_firing)
        {
          try
          {
            if (id == 0)
            {
              loop->call_soon_threadsafe([] {});
              ++fine;
              continue;
            }
            auto f = run_coroutine_threadsafe(value_after(0us, 1), *loop);
            try
            {
              f.result(30s);
              ++fine;
            }
            catch (const asioloop::loop_closed_error&)
            {
              ++failed;
            }
            catch (const asioloop::cancelled_error&)
            {
              ++fine;
            }
          }
          catch (const asioloop::loop_closed_error&)
          {
            ++refused;
          }
          catch (...)
          {
            ++bad;
          }
        }
      });
    std::thread runner([&] {
      loop->call_later(std::chrono::milliseconds(round % 4), [&] { loop->stop(); });
      loop->run_forever();
      loop->close();
    });
    runner.join();
    // Keep firing at the closed loop until it has refused something.
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (refused == 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(1ms);
    std::this_thread::sleep_for(1ms);
    stop_firing = true;
    for (auto& s : shooters)
      s.join();
    BOOST_TEST(bad.load() == 0);
    BOOST_TEST(refused.load() > 0);
  }
}

BOOST_AUTO_TEST_CASE(loop_thread_a_thousand_times)
{
  long sum = 0;
  for (int i = 0; i < 1000; ++i)
  {
    loop_thread t;
    if (i % 10 == 0)
      sum += run_coroutine_threadsafe(value_after(0us, 1), t.loop()).result();
    if (i % 7 == 0) // some with a task still pending at the end
      run_coroutine_threadsafe(value_after(1'000'000'000us, 1), t.loop());
  }
  BOOST_TEST(sum == 100);
}
