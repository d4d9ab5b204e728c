//
// bench/asio_bench.cpp
//
// The baseline: the same workloads written directly on Boost.Asio, a plain
// io_context run by one thread, no strand.
//

#include "bench_common.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

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

} // namespace

int main(int argc, char** argv)
{
  return bench::main(argc, argv,
      {
          {"W1", {1'000'000, w1}},
          {"W1b", {1'000'000, w1b}},
          {"W8", {1'000'000, w8}},
      });
}
