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
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <functional>
#include <future>
#include <memory>
#include <deque>
#include <optional>
#include <vector>

#include <thread>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>


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

// W6: n trivial functions posted to an asio::thread_pool (cores + 4
// threads, as the default executors), each posting its result back to the
// io_context; batches of 1,000 complete before the next is sent.
void w6(long n)
{
  constexpr long batch = 1000;
  asio::io_context ioc(1);
  asio::thread_pool pool(std::min(32u, std::thread::hardware_concurrency() + 4));
  long long total = 0;
  long left = 0;
  long next = 0;
  bench_clock::time_point t0, t1;
  std::function<void()> send_batch = [&] {
    left = batch;
    for (long i = next; i < next + batch; ++i)
      asio::post(pool, [&, i] {
        long v = i + 1;
        asio::post(ioc, [&, v] {
          total += v;
          if (--left == 0)
          {
            next += batch;
            if (next < n)
              send_batch();
            else
              t1 = bench_clock::now();
          }
        });
      });
  };
  auto work = asio::make_work_guard(ioc);
  asio::post(ioc, [&] {
    t0 = bench_clock::now();
    send_batch();
  });
  // Runs until the last batch is in.
  while (t1 == bench_clock::time_point{} && ioc.run_one() > 0)
  {
  }
  pool.join();
  bench::check(total == static_cast<long long>(n) * (n + 1) / 2, "W6 sum");
  bench::out("W6", "asio", "throughput", n / bench::seconds(t0, t1), "jobs/s");
}

// W7: an io_context runs in a second thread; this thread does n sequential
// round trips of asio::post + std::promise.
void w7(long n)
{
  asio::io_context ioc(1);
  auto work = asio::make_work_guard(ioc);
  std::thread runner([&] { ioc.run(); });
  auto round_trip = [&] {
    std::promise<int> p;
    auto f = p.get_future();
    asio::post(ioc, [&p] { p.set_value(1); });
    return f.get();
  };
  for (int i = 0; i < 200; ++i) // warm-up, as the peers
    round_trip();
  std::vector<double> lat(n);
  long total = 0;
  const auto t0 = bench_clock::now();
  for (long i = 0; i < n; ++i)
  {
    const auto s = bench_clock::now();
    total += round_trip();
    lat[i] = std::chrono::duration<double, std::micro>(bench_clock::now() - s).count();
  }
  const auto t1 = bench_clock::now();
  work.reset();
  runner.join();
  bench::check(total == n, "W7 total");
  std::sort(lat.begin(), lat.end());
  bench::out("W7", "asio", "throughput", n / bench::seconds(t0, t1), "round_trips/s");
  bench::out("W7", "asio", "p50_latency", lat[n / 2], "us");
  bench::out("W7", "asio", "p99_latency", lat[n * 99 / 100], "us");
}

// W10: a producer and a consumer coroutine, co_spawn'ed on one io_context,
// passing n ints through an experimental::channel. A channel has a fixed
// capacity: n stands for the peers' unbounded queue.
using w10_channel = asio::experimental::channel<void(boost::system::error_code, int)>;

asio::awaitable<void> w10_producer(w10_channel& ch, long n)
{
  for (long i = 0; i < n; ++i)
    co_await ch.async_send(boost::system::error_code{}, static_cast<int>(i), asio::deferred);
}

asio::awaitable<void> w10_consumer(w10_channel& ch, long n, long long& sum)
{
  for (long i = 0; i < n; ++i)
    sum += co_await ch.async_receive(asio::deferred);
}

void w10_run(long n, std::size_t capacity, const char* metric)
{
  asio::io_context ioc(1);
  w10_channel ch(ioc, capacity);
  long long sum = 0;
  bench_clock::time_point t0, t1;
  asio::post(ioc, [&] {
    t0 = bench_clock::now();
    asio::co_spawn(ioc, w10_consumer(ch, n, sum), [&](std::exception_ptr e) {
      bench::check(!e, "W10 consumer failed");
      t1 = bench_clock::now();
    });
    asio::co_spawn(ioc, w10_producer(ch, n), [](std::exception_ptr e) {
      bench::check(!e, "W10 producer failed");
    });
  });
  ioc.run();
  bench::check(sum == static_cast<long long>(n) * (n - 1) / 2, "W10 sum");
  bench::out("W10", "asio", metric, n / bench::seconds(t0, t1), "items/s");
}

void w10(long n)
{
  w10_run(n, static_cast<std::size_t>(n), "throughput");
  w10_run(n, 100, "throughput_maxsize_100");
}

// W9: the raw process baseline: two forked workers, each on a pair of
// pipes, 16-byte binary messages {job, x} -> {job, 2x}, no serialization.
// Cold start: fork to first result. Throughput: n jobs, one in flight per
// worker, driven by one io_context. Round trip: n sequential blocking
// write/read pairs with one worker, from this thread.
struct w9_worker
{
  pid_t pid = -1;
  int to = -1, from = -1; // the parent's ends
};

w9_worker w9_fork()
{
  int req[2], rsp[2];
  bench::check(::pipe(req) == 0 && ::pipe(rsp) == 0, "W9 pipe");
  w9_worker w;
  w.pid = ::fork();
  bench::check(w.pid >= 0, "W9 fork");
  if (w.pid == 0)
  {
    // Only this worker's two ends: another worker's kept open would hide
    // the EOF that ends it.
    for (int fd = 3; fd < 1024; ++fd)
      if (fd != req[0] && fd != rsp[1])
        ::close(fd);
    long long m[2];
    while (::read(req[0], m, sizeof m) == sizeof m)
    {
      m[1] *= 2;
      if (::write(rsp[1], m, sizeof m) != sizeof m)
        break;
    }
    std::_Exit(0);
  }
  ::close(req[0]);
  ::close(rsp[1]);
  w.to = req[1];
  w.from = rsp[0];
  return w;
}

long long w9_call(const w9_worker& w, long long x)
{
  long long m[2] = {0, x};
  bench::check(::write(w.to, m, sizeof m) == sizeof m, "W9 write");
  bench::check(::read(w.from, m, sizeof m) == sizeof m, "W9 read");
  return m[1];
}

struct w9_driver
{
  asio::posix::stream_descriptor to, from;
  long long out[2] = {0, 0}, in[2] = {0, 0};
};

void w9_close(const w9_worker& w)
{
  ::close(w.to);
  ::close(w.from);
  ::waitpid(w.pid, nullptr, 0);
}

void w9(long n)
{
  std::fflush(stdout);
  // Cold start: the median of 5, as in asioloop_bench.
  std::vector<double> cold;
  w9_worker ws[2];
  for (int i = 0; i < 5; ++i)
  {
    if (i > 0)
      for (auto& w : ws)
        w9_close(w);
    const auto c0 = bench_clock::now();
    ws[0] = w9_fork();
    ws[1] = w9_fork();
    bench::check(w9_call(ws[0], 21) == 42, "W9 cold result");
    const auto c1 = bench_clock::now();
    cold.push_back(std::chrono::duration<double, std::milli>(c1 - c0).count());
  }
  std::sort(cold.begin(), cold.end());

  asio::io_context ioc(1);
  long next = 0, done = 0;
  long long sum = 0;
  std::vector<std::unique_ptr<w9_driver>> ds;
  for (auto& w : ws)
    ds.push_back(std::make_unique<w9_driver>(
        w9_driver{asio::posix::stream_descriptor(ioc, ::dup(w.to)),
            asio::posix::stream_descriptor(ioc, ::dup(w.from))}));
  std::function<void(w9_driver&)> send = [&](w9_driver& d) {
    if (next == n)
      return;
    d.out[0] = next;
    d.out[1] = next++;
    asio::async_write(d.to, asio::buffer(d.out), [](boost::system::error_code ec, std::size_t) {
      bench::check(!ec, "W9 async write");
    });
    asio::async_read(d.from, asio::buffer(d.in), [&](boost::system::error_code ec, std::size_t) {
      bench::check(!ec, "W9 async read");
      sum += d.in[1];
      ++done;
      send(d);
    });
  };
  const auto t0 = bench_clock::now();
  for (auto& d : ds)
    send(*d);
  ioc.run();
  const auto t1 = bench_clock::now();
  bench::check(done == n && sum == static_cast<long long>(n) * (n - 1), "W9 sum");
  ds.clear();
  for (auto& w : ws) // the descriptors made the shared file descriptions non-blocking
    for (int fd : {w.to, w.from})
      ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);

  for (int i = 0; i < 200; ++i)
    w9_call(ws[0], i);
  std::vector<double> lat(n);
  for (long i = 0; i < n; ++i)
  {
    const auto s = bench_clock::now();
    bench::check(w9_call(ws[0], i) == 2 * i, "W9 round trip");
    lat[i] = std::chrono::duration<double, std::micro>(bench_clock::now() - s).count();
  }
  std::sort(lat.begin(), lat.end());
  for (auto& w : ws)
    w9_close(w);
  bench::out("W9", "asio", "throughput", n / bench::seconds(t0, t1), "jobs/s");
  bench::out("W9", "asio", "cold_start_first_result", cold[cold.size() / 2], "ms");
  bench::out("W9", "asio", "round_trip_p50", lat[n / 2], "us");
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
          {"W6", {100'000, w6}},
          {"W7", {20'000, w7}},
          {"W8", {1'000'000, w8}},
          {"W9", {2'000, w9}},
          {"W10", {1'000'000, w10}},
      });
}
