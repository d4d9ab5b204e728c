//
// bench/asioloop_bench.cpp
//
// asioloop on the workloads of ../shared/bench/WORKLOADS.md, in owned mode
// ("asioloop") and embedded in an io_context run by one thread
// ("asioloop-embedded").
//

#include <asioloop/event_loop.hpp>
#include <asioloop/future.hpp>
#include <asioloop/sleep.hpp>
#include <asioloop/task.hpp>

#include "bench_common.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/executor_work_guard.hpp>

#include <memory>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>
#include <thread>

namespace asio = boost::asio;
using asioloop::event_loop;
using bench::bench_clock;

namespace {

// Runs @c body as loop work on an owned or an embedded loop, until
// @c body's work calls finish().
struct harness
{
  explicit harness(bool embedded)
  {
    if (embedded)
    {
      host = std::make_unique<asio::io_context>(1);
      loop = std::make_unique<event_loop>(host->get_executor());
    }
    else
      loop = std::make_unique<event_loop>();
  }

  template <typename F>
  void run(F body)
  {
    if (!host)
    {
      loop->call_soon(body);
      loop->run_forever();
      return;
    }
    auto work = asio::make_work_guard(*host);
    loop->call_soon_threadsafe(body);
    guard = &work;
    host->run();
  }

  // Ends run() once the current batch is over.
  void finish()
  {
    if (!host)
      loop->stop();
    else
      guard->reset();
  }

  const char* impl() const { return host ? "asioloop-embedded" : "asioloop"; }

  std::unique_ptr<asio::io_context> host;
  std::unique_ptr<event_loop> loop;
  asio::executor_work_guard<asio::io_context::executor_type>* guard = nullptr;
};

void w1(long n, bool embedded)
{
  harness h(embedded);
  long count = 0;
  bench_clock::time_point t0, t_sched, t_end;
  auto cb = [&] {
    if (++count == n)
    {
      t_end = bench_clock::now();
      h.finish();
    }
  };
  h.run([&] {
    t0 = bench_clock::now();
    for (long i = 0; i < n; ++i)
      h.loop->call_soon(cb);
    t_sched = bench_clock::now();
  });
  bench::check(count == n, "W1 count");
  bench::out("W1", h.impl(), "throughput", n / bench::seconds(t0, t_end), "callbacks/s");
  bench::out("W1", h.impl(), "schedule_only", n / bench::seconds(t0, t_sched), "callbacks/s");
}

void w1b(long n, bool embedded)
{
  harness h(embedded);
  long count = 0;
  bench_clock::time_point t0, t_end;
  struct step
  {
    harness* h;
    long* count;
    long n;
    bench_clock::time_point* t_end;
    void operator()() const
    {
      if (++*count == n)
      {
        *t_end = bench_clock::now();
        h->finish();
      }
      else
        h->loop->call_soon(*this);
    }
  };
  h.run([&] {
    t0 = bench_clock::now();
    h.loop->call_soon(step{&h, &count, n, &t_end});
  });
  bench::check(count == n, "W1b count");
  bench::out("W1b", h.impl(), "throughput", n / bench::seconds(t0, t_end), "callbacks/s");
}

void w8(long n, bool embedded)
{
  harness h(embedded);
  long count = 0;
  bench_clock::time_point t0, t_end;
  std::thread producer;
  auto cb = [&] {
    if (++count == n)
    {
      t_end = bench_clock::now();
      h.finish();
    }
  };
  h.run([&] {
    // The loop is running: start producing from another thread.
    producer = std::thread([&] {
      t0 = bench_clock::now();
      for (long i = 0; i < n; ++i)
        h.loop->call_soon_threadsafe(cb);
    });
  });
  producer.join();
  bench::check(count == n, "W8 count: callbacks were lost");
  bench::out("W8", h.impl(), "throughput", n / bench::seconds(t0, t_end), "callbacks/s");
}

void w2(const char* id, long n, bool embedded)
{
  harness h(embedded);
  const auto delays = bench::w2_delays(n);
  bench::w2_record rec(n);
  auto cb = [&](bench_clock::time_point due) {
    if (rec.fired(due))
      h.finish();
  };
  h.run([&] {
    rec.t0 = bench_clock::now();
    for (auto delay : delays)
      h.loop->call_later(delay, cb, bench_clock::now() + delay);
    rec.t_sched = bench_clock::now();
  });
  rec.report(id, h.impl());
}

void w2_full(long n, bool embedded) { w2("W2", n, embedded); }
void w2_light(long n, bool embedded) { w2("W2L", n, embedded); }

void w3(long n, bool embedded)
{
  harness h(embedded);
  long fired = 0;
  bench_clock::time_point t0, t1;
  std::vector<asioloop::timer_handle> handles;
  handles.reserve(n);
  h.run([&] {
    t0 = bench_clock::now();
    for (long i = 0; i < n; ++i)
      handles.push_back(h.loop->call_later(std::chrono::seconds(10), [&] { ++fired; }));
    for (auto& t : handles)
      t.cancel();
    // Two iterations, as the peers' two sleep(0)s.
    h.loop->call_soon([&] {
      h.loop->call_soon([&] {
        t1 = bench_clock::now();
        h.finish();
      });
    });
  });
  bench::check(fired == 0, "W3: a cancelled timer fired");
  for (auto& t : handles)
    bench::check(t.cancelled(), "W3: a handle is not cancelled");
  bench::out("W3", h.impl(), "throughput", n / bench::seconds(t0, t1), "pairs/s");
}

void w5(long n, bool embedded)
{
  harness h(embedded);
  long count = 0;
  bench_clock::time_point t0, t_end;
  auto done = [&](const asioloop::future<int>&) {
    if (++count == n)
    {
      t_end = bench_clock::now();
      h.finish();
    }
  };
  h.run([&] {
    t0 = bench_clock::now();
    for (long i = 0; i < n; ++i)
    {
      auto f = h.loop->create_future<int>();
      f.add_done_callback(done);
      f.set_result(static_cast<int>(i));
    }
  });
  bench::check(count == n, "W5 count");
  bench::out("W5", h.impl(), "throughput", n / bench::seconds(t0, t_end), "ops/s");
}

asio::awaitable<int> w4_task(int i)
{
  co_await asioloop::sleep(std::chrono::seconds(0));
  co_return i;
}

void w4(long n, bool embedded)
{
  harness h(embedded);
  bench_clock::time_point t0, t1;
  long rss0 = 0, rss1 = 0;
  long long sum = 0;
  std::vector<asioloop::task<int>> tasks;
  tasks.reserve(n);
  auto main = [&]() -> asio::awaitable<void> {
    rss0 = bench::peak_rss();
    t0 = bench_clock::now();
    for (long i = 0; i < n; ++i)
      tasks.push_back(h.loop->create_task(w4_task(static_cast<int>(i))));
    // No gather yet: awaiting each in turn collects the same results.
    for (auto& t : tasks)
      sum += co_await std::move(t);
    t1 = bench_clock::now();
    rss1 = bench::peak_rss();
  };
  h.run([&] {
    h.loop->create_task(main()).add_done_callback(
        [&](const asioloop::future<void>&) { h.finish(); });
  });
  bench::check(sum == static_cast<long long>(n) * (n - 1) / 2, "W4 sum");
  bench::out("W4", h.impl(), "throughput", n / bench::seconds(t0, t1), "tasks/s");
  bench::out("W4", h.impl(), "bytes_per_task", double(rss1 - rss0) / n, "bytes");
}

// Each mode runs in a child process of its own, so that neither inherits
// the other's warmed-up heap: fresh memory is a large part of W1's cost.
template <void (*W)(long, bool)>
void both(long n)
{
  for (bool embedded : {false, true})
  {
    std::fflush(stdout);
    const pid_t child = ::fork();
    bench::check(child >= 0, "fork");
    if (child == 0)
    {
      W(n, embedded);
      std::fflush(stdout);
      std::_Exit(0);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    bench::check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed");
  }
}

} // namespace

int main(int argc, char** argv)
{
  return bench::main(argc, argv,
      {
          {"W1", {1'000'000, both<w1>}},
          {"W1b", {1'000'000, both<w1b>}},
          {"W2", {200'000, both<w2_full>}},
          {"W2L", {20'000, both<w2_light>}},
          {"W3", {200'000, both<w3>}},
          {"W4", {200'000, both<w4>}},
          {"W5", {500'000, both<w5>}},
          {"W8", {1'000'000, both<w8>}},
      });
}
