//
// bench/asio_bench.cpp
//
// The baseline: the same workloads written directly on Boost.Asio, a plain
// io_context run by one thread, no strand.
//

#include "bench_common.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <functional>
#include <memory>
#include <deque>
#include <optional>
#include <vector>

#include <thread>


namespace asio = boost::asio;
using bench::bench_clock;

namespace {

void w1(long n)
{
  asio::io_context ioc(1);
  long count = 0;
  bench_clock::time_point t0, t_end;
  asio::post(ioc, [&] {
    t0 = bench_clock::now();
    for (long i = 0; i < n; ++i)
      asio::post(ioc, [&] {
        if (++count == n)
          t_end = bench_clock::now();
      });
  });
  ioc.run();
  bench::check(count == n, "W1 count");
  bench::out("W1", "asio", "throughput", n / bench::seconds(t0, t_end), "callbacks/s");
}

struct chain
{
  asio::io_context* ioc;
  long* count;
  long n;
  bench_clock::time_point* t_end;
  void operator()() const
  {
    if (++*count == n)
      *t_end = bench_clock::now();
    else
      asio::post(*ioc, *this);
  }
};

void w1b(long n)
{
  asio::io_context ioc(1);
  long count = 0;
  bench_clock::time_point t0, t_end;
  asio::post(ioc, [&] {
    t0 = bench_clock::now();
    asio::post(ioc, chain{&ioc, &count, n, &t_end});
  });
  ioc.run();
  bench::check(count == n, "W1b count");
  bench::out("W1b", "asio", "throughput", n / bench::seconds(t0, t_end), "callbacks/s");
}

void w8(long n)
{
  asio::io_context ioc(1);
  auto work = asio::make_work_guard(ioc);
  long count = 0;
  bench_clock::time_point t0, t_end;
  std::thread producer;
  asio::post(ioc, [&] {
    producer = std::thread([&] {
      t0 = bench_clock::now();
      for (long i = 0; i < n; ++i)
        asio::post(ioc, [&] {
          if (++count == n)
          {
            t_end = bench_clock::now();
            work.reset();
          }
        });
    });
  });
  ioc.run();
  producer.join();
  bench::check(count == n, "W8 count");
  bench::out("W8", "asio", "throughput", n / bench::seconds(t0, t_end), "callbacks/s");
}

// One steady_timer per timer, the plain way to write it on Asio.
void w2(const char* id, long n)
{
  asio::io_context ioc(1);
  const auto delays = bench::w2_delays(n);
  bench::w2_record rec(n);
  std::deque<asio::steady_timer> timers;
  asio::post(ioc, [&] {
    rec.t0 = bench_clock::now();
    for (auto delay : delays)
    {
      const auto due = bench_clock::now() + delay;
      timers.emplace_back(ioc, delay).async_wait(
          [&, due](boost::system::error_code) { rec.fired(due); });
    }
    rec.t_sched = bench_clock::now();
  });
  ioc.run();
  rec.report(id, "asio");
}

// Asio runs every cancelled timer's handler (operation_aborted): the run
// ends when the last of them has run.
void w3(long n)
{
  asio::io_context ioc(1);
  std::deque<asio::steady_timer> timers;
  long fired = 0, aborted = 0;
  bench_clock::time_point t0, t1;
  asio::post(ioc, [&] {
    t0 = bench_clock::now();
    for (long i = 0; i < n; ++i)
    {
      auto& t = timers.emplace_back(ioc, std::chrono::seconds(10));
      t.async_wait([&](boost::system::error_code ec) {
        if (ec)
          ++aborted;
        else
          ++fired;
        if (aborted == n)
          t1 = bench_clock::now();
      });
    }
    for (auto& t : timers)
      t.cancel();
  });
  ioc.run();
  bench::check(fired == 0 && aborted == n, "W3 cancelled");
  bench::out("W3", "asio", "throughput", n / bench::seconds(t0, t1), "pairs/s");
}

asio::awaitable<int> w4_task(int i)
{
  co_await asio::post(asio::deferred); // one yield
  co_return i;
}

// co_spawn on a plain io_context; each completion adds to the sum.
void w4(long n)
{
  asio::io_context ioc(1);
  bench_clock::time_point t0, t1;
  long rss0 = 0, rss1 = 0;
  long long sum = 0;
  long done = 0;
  asio::post(ioc, [&] {
    rss0 = bench::peak_rss();
    t0 = bench_clock::now();
    for (long i = 0; i < n; ++i)
      asio::co_spawn(ioc, w4_task(static_cast<int>(i)),
          [&](std::exception_ptr, int v) {
            sum += v;
            if (++done == n)
            {
              t1 = bench_clock::now();
              rss1 = bench::peak_rss();
            }
          });
  });
  ioc.run();
  bench::check(sum == static_cast<long long>(n) * (n - 1) / 2, "W4 sum");
  bench::out("W4", "asio", "throughput", n / bench::seconds(t0, t1), "tasks/s");
  bench::out("W4", "asio", "bytes_per_task", double(rss1 - rss0) / n, "bytes");
}

// A minimal future written directly on Asio: shared state with one value and
// a list of callbacks, each posted to the io_context when the value is set.
struct mini_future_state
{
  std::optional<int> value;
  std::vector<std::function<void(int)>> callbacks;
};

void w5(long n)
{
  asio::io_context ioc(1);
  long count = 0;
  bench_clock::time_point t0, t_end;
  asio::post(ioc, [&] {
    t0 = bench_clock::now();
    for (long i = 0; i < n; ++i)
    {
      auto st = std::make_shared<mini_future_state>();
      st->callbacks.emplace_back([&](int) {
        if (++count == n)
          t_end = bench_clock::now();
      });
      st->value = static_cast<int>(i);
      for (auto& cb : st->callbacks)
        asio::post(ioc, [st, cb = std::move(cb)] { cb(*st->value); });
      st->callbacks.clear();
    }
  });
  ioc.run();
  bench::check(count == n, "W5 count");
  bench::out("W5", "asio", "throughput", n / bench::seconds(t0, t_end), "ops/s");
}

} // namespace

int main(int argc, char** argv)
{
  return bench::main(argc, argv,
      {
          {"W1", {1'000'000, w1}},
          {"W1b", {1'000'000, w1b}},
          {"W2", {200'000, [](long n) { w2("W2", n); }}},
          {"W2L", {20'000, [](long n) { w2("W2L", n); }}},
          {"W3", {200'000, w3}},
          {"W4", {200'000, w4}},
          {"W5", {500'000, w5}},
          {"W8", {1'000'000, w8}},
      });
}
