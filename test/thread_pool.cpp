//
// test/thread_pool.cpp
//
// thread_pool_executor and run_in_executor: results and exceptions through
// both paths, shutdown with pending jobs, a cancelled job leaving the queue,
// the stop-token opt-in, and the default executor's lifetime.
//

#include <asioloop/thread_pool.hpp>

#include "support/loop_fixture.hpp"

#include <asioloop/compose.hpp>
#include <asioloop/sleep.hpp>

#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <latch>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <sys/resource.h>

namespace asio = boost::asio;
using asioloop::concurrent_future;
using asioloop::event_loop;
using asioloop::thread_pool_executor;
using namespace std::chrono_literals;

namespace {

int twice(int x)
{
  return 2 * x;
}

std::string fails(std::string what)
{
  throw std::runtime_error(what);
}

asio::awaitable<void> nap()
{
  co_await asioloop::sleep(1ms);
}

/// Blocks a worker until released, so tests can fill the queue behind it.
struct gate
{
  std::latch entered{1};
  std::latch release{1};
  void operator()()
  {
    entered.count_down();
    release.wait();
  }
};

/// Occupies a worker of @c pool with @c g, once it is running.
concurrent_future<void> occupy(thread_pool_executor& pool, gate& g)
{
  auto f = pool.submit(std::ref(g));
  g.entered.wait();
  return f;
}

} // namespace

BOOST_AUTO_TEST_SUITE(pool)

BOOST_AUTO_TEST_CASE(submit_returns_results_and_exceptions)
{
  thread_pool_executor pool{2};
  BOOST_TEST(pool.max_workers() == 2u);
  auto a = pool.submit(twice, 21);
  auto b = pool.submit(fails, "broken");
  auto c = pool.submit([](std::string s, int n) { return s + std::to_string(n); }, "n=", 3);
  BOOST_TEST(a.result(10s) == 42);
  BOOST_CHECK_EXCEPTION(b.result(10s), std::runtime_error,
      [](const std::runtime_error& e) { return std::string(e.what()) == "broken"; });
  BOOST_TEST(c.result(10s) == "n=3");
}

BOOST_AUTO_TEST_CASE(jobs_run_concurrently_up_to_max_workers)
{
  thread_pool_executor pool{3};
  std::latch all_in{3};
  std::vector<concurrent_future<void>> fs;
  for (int i = 0; i < 3; ++i)
    fs.push_back(pool.submit([&] { all_in.arrive_and_wait(); }));
  for (auto& f : fs)
    BOOST_TEST(f.wait_for(30s)); // would deadlock with fewer threads
}

BOOST_AUTO_TEST_CASE(shutdown_runs_the_queued_jobs_then_refuses_more)
{
  std::atomic<int> ran{0};
  thread_pool_executor pool{1};
  std::vector<concurrent_future<void>> fs;
  for (int i = 0; i < 50; ++i)
    fs.push_back(pool.submit([&] { ++ran; }));
  pool.shutdown();
  BOOST_TEST(ran == 50);
  for (auto& f : fs)
    BOOST_TEST(f.done());
  BOOST_CHECK_THROW(pool.submit(twice, 1), asioloop::broken_executor_error);
}

BOOST_AUTO_TEST_CASE(shutdown_with_cancel_futures_cancels_what_has_not_started)
{
  thread_pool_executor pool{1};
  gate g;
  auto running = occupy(pool, g);
  std::atomic<bool> stopped{false};
  auto stoppable = pool.submit([&](std::stop_token st) {
    while (!st.stop_requested())
      std::this_thread::sleep_for(1ms);
    stopped = true;
  });
  auto queued = pool.submit(twice, 1);
  std::thread releaser([&] {
    std::this_thread::sleep_for(50ms);
    g.release.count_down();
  });
  pool.shutdown(true, true);
  releaser.join();
  BOOST_TEST(running.done());
  BOOST_TEST(!running.cancelled());
  BOOST_TEST(stoppable.cancelled());
  BOOST_TEST(queued.cancelled());
  BOOST_TEST(!stopped);
}

BOOST_AUTO_TEST_CASE(a_running_job_that_takes_a_stop_token_is_asked_to_stop)
{
  thread_pool_executor pool{1};
  std::latch started{1};
  auto f = pool.submit([&](std::stop_token st, int code) {
    started.count_down();
    while (!st.stop_requested())
      std::this_thread::sleep_for(1ms);
    return code;
  }, 7);
  started.wait();
  pool.shutdown(true, true);
  BOOST_TEST(f.result() == 7);
}

BOOST_AUTO_TEST_CASE(a_cancelled_queued_job_never_runs)
{
  thread_pool_executor pool{1};
  gate g;
  auto running = occupy(pool, g);
  std::atomic<bool> ran{false};
  auto queued = pool.submit([&] { ran = true; });
  BOOST_TEST(queued.cancel());
  g.release.count_down();
  pool.shutdown();
  BOOST_TEST(queued.cancelled());
  BOOST_TEST(!ran);
}

namespace {

// Jobs that wait for each other: each returns true once all of them are
// running (false if that took 10 s).
struct rendezvous
{
  explicit rendezvous(int n) : expected(n) {}

  bool meet()
  {
    std::unique_lock lk(m);
    ++arrived;
    cv.notify_all();
    return cv.wait_for(lk, 10s, [&] { return arrived == expected; });
  }

  std::mutex m;
  std::condition_variable cv;
  int arrived = 0;
  const int expected;
};

// Submits n jobs that each wait for all n to run.
std::vector<concurrent_future<bool>> submit_meeting(thread_pool_executor& pool, int n)
{
  auto r = std::make_shared<rendezvous>(n);
  std::vector<concurrent_future<bool>> fs;
  for (int i = 0; i < n; ++i)
    fs.push_back(pool.submit([r] { return r->meet(); }));
  return fs;
}

// Starts n threads in the pool, then lets them fall asleep: later jobs get
// them through wake-ups and the watcher, not by starting threads.
void start_threads(thread_pool_executor& pool, int n)
{
  for (auto& f : submit_meeting(pool, n))
    BOOST_TEST_REQUIRE(f.result(30s));
  std::this_thread::sleep_for(10ms);
}

// The process's CPU time so far, user and system.
std::chrono::microseconds cpu_time()
{
  rusage ru;
  ::getrusage(RUSAGE_SELF, &ru);
  return std::chrono::seconds(ru.ru_utime.tv_sec) + std::chrono::microseconds(ru.ru_utime.tv_usec)
      + std::chrono::seconds(ru.ru_stime.tv_sec) + std::chrono::microseconds(ru.ru_stime.tv_usec);
}

} // namespace

// Two jobs submitted together run together, whichever worker takes the
// first: a worker just back for more work must not make the second wait
// for it.
BOOST_AUTO_TEST_CASE(jobs_submitted_together_do_not_wait_for_each_other)
{
  thread_pool_executor pool{4};
  for (int round = 0; round < 20; ++round)
  {
    // A job just ended: a worker is looking for more when the two arrive.
    pool.submit([] {}).result(10s);
    for (auto& f : submit_meeting(pool, 2))
      BOOST_TEST_REQUIRE(f.result(30s));
  }
}

// A burst stays on the threads already busy with it while they keep up,
// but never at the price of a job that waits for another: jobs queued
// behind blocked ones still get threads, up to max_workers.
BOOST_AUTO_TEST_CASE(every_worker_is_used_for_jobs_that_wait_for_each_other)
{
  thread_pool_executor pool{4};
  for (int round = 0; round < 5; ++round)
  {
    // After the first round the four threads exist and are asleep: the
    // jobs get them through the watcher, not by starting threads.
    std::this_thread::sleep_for(10ms);
    for (auto& f : submit_meeting(pool, 4))
      BOOST_TEST_REQUIRE(f.result(30s));
  }
}

// shutdown(wait) right after a burst still runs every queued job, even when
// they need threads that start only as the queue drains, and joins them all.
BOOST_AUTO_TEST_CASE(shutdown_during_a_burst_runs_it_and_joins_every_thread)
{
  std::vector<concurrent_future<bool>> fs;
  {
    thread_pool_executor pool{8};
    start_threads(pool, 4); // four of eight
    fs = submit_meeting(pool, 6);
  } // the destructor shuts the pool down, waiting
  for (auto& f : fs)
  {
    BOOST_TEST_REQUIRE(f.done());
    BOOST_TEST(f.result());
  }
}

// A backlog spreads: short jobs that each take the one thread on them
// longer than they come in still get more threads, even though the first
// job in the queue changes all the time.
BOOST_AUTO_TEST_CASE(a_backlog_of_short_blocking_jobs_spreads_over_the_pool)
{
  thread_pool_executor pool{4};
  start_threads(pool, 4);

  std::atomic<int> running{0};
  std::atomic<int> most{0};
  std::vector<concurrent_future<void>> fs;
  for (int i = 0; i < 400; ++i)
    fs.push_back(pool.submit([&] {
      const int now = ++running;
      int seen = most.load();
      while (now > seen && !most.compare_exchange_weak(seen, now))
      {
      }
      std::this_thread::sleep_for(50us); // shorter than the watch interval
      --running;
    }));
  for (auto& f : fs)
    f.result(60s);
  BOOST_TEST(most.load() >= 2); // 20 ms of jobs on one thread otherwise
}

// An idle pool sleeps: no thread keeps spinning for work.
BOOST_AUTO_TEST_CASE(an_idle_pool_uses_no_cpu)
{
  thread_pool_executor pool{2};
  pool.submit([] {}).result(10s);
  std::this_thread::sleep_for(50ms); // past the job's end
  const auto before = cpu_time();
  std::this_thread::sleep_for(500ms);
  BOOST_TEST((cpu_time() - before < 150ms)); // a spinning thread would take ~500 ms
}

// So does a pool whose only work is a long job: with nothing queued, the
// thread watching the queue for the busy one waits without polling.
BOOST_AUTO_TEST_CASE(a_pool_busy_with_a_long_job_uses_no_cpu)
{
  thread_pool_executor pool{2};
  std::latch release{1};
  auto blocked = pool.submit([&] { release.wait(); });
  pool.submit([] {}).result(10s); // the second thread: now the watcher
  std::this_thread::sleep_for(50ms);
  const auto before = cpu_time();
  std::this_thread::sleep_for(500ms);
  const auto used = cpu_time() - before;
  release.count_down();
  blocked.result(10s);
  BOOST_TEST((used < 10ms)); // polling every 200 us takes ~40 ms here
}

// A job may drop the last reference to its own pool: the pool is destroyed
// on that worker, which detaches itself and goes on.
BOOST_AUTO_TEST_CASE(a_job_may_destroy_its_own_pool)
{
  auto pool = std::make_shared<thread_pool_executor>(2);
  std::atomic<bool> done{false};
  auto f = pool->submit([p = pool, &done]() mutable {
    p.reset(); // not the last yet: the test still holds one
    return 7;
  });
  BOOST_TEST(f.result(10s) == 7);
  std::promise<void> go;
  std::shared_future<void> gate = go.get_future().share();
  auto keep = pool; // submit() needs the pool alive until it returns
  auto g = keep->submit([p = std::move(pool), gate, &done]() mutable {
    gate.wait();
    p.reset(); // the last reference: ~thread_pool_executor on this worker
    done = true;
    return 8;
  });
  keep.reset();
  go.set_value();
  BOOST_TEST(g.result(10s) == 8);
  BOOST_TEST(done.load());
}

// A future completed by hand (set_result() is public, for executors and
// tests) is left alone by the job: no second completion, no terminate().
BOOST_AUTO_TEST_CASE(a_future_completed_by_hand_is_left_alone)
{
  thread_pool_executor pool{1};
  std::promise<void> go;
  std::shared_future<void> gate = go.get_future().share();
  std::atomic<bool> second_ran{false};
  auto running = pool.submit([gate] { gate.wait(); return 1; });
  auto queued = pool.submit([&second_ran] { second_ran = true; return 2; });
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!running.running() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(1ms);
  running.set_result(10); // while its job runs
  queued.set_result(20);  // before its job starts
  go.set_value();
  pool.shutdown();
  BOOST_TEST(running.result() == 10);
  BOOST_TEST(queued.result() == 20);
  BOOST_TEST(!second_ran.load());
}

BOOST_AUTO_TEST_CASE(bad_arguments_are_refused)
{
  BOOST_CHECK_THROW(thread_pool_executor{0}, std::invalid_argument);
  BOOST_TEST(thread_pool_executor::default_max_workers() >= 5u);
  BOOST_TEST(thread_pool_executor::default_max_workers() <= 32u);
}

BOOST_AUTO_TEST_SUITE_END()

// ---- run_in_executor ------------------------------------------------------

BOOST_AUTO_TEST_SUITE(loop_side)

asio::awaitable<std::string> results_and_exceptions(thread_pool_executor& pool)
{
  auto& loop = asioloop::get_running_loop();
  std::string out = std::to_string(co_await loop.run_in_executor(pool, twice, 21));
  out += ",";
  out += std::to_string(co_await loop.run_in_executor(nullptr, twice, 4));
  out += ",";
  out += std::to_string(co_await asioloop::to_thread([](int a, int b) { return a + b; }, 2, 3));
  try
  {
    co_await loop.run_in_executor(nullptr, fails, "from a thread");
  }
  catch (const std::runtime_error& e)
  {
    out += std::string(",") + e.what();
  }
  co_return out;
}

BOOST_AUTO_TEST_CASE(results_and_exceptions_reach_the_loop)
{
  thread_pool_executor pool{2};
  event_loop loop;
  BOOST_TEST(loop.run_until_complete(results_and_exceptions(pool)) == "42,8,5,from a thread");
}

asio::awaitable<int> blocking_pair()
{
  // Each job waits for the other: only concurrent threads can finish them.
  auto both = std::make_shared<std::latch>(2);
  auto meet = [both] {
    both->arrive_and_wait();
    return 1;
  };
  auto [a, b] = co_await asioloop::gather(
      asioloop::to_thread(meet), asioloop::to_thread(meet));
  co_return a + b;
}

BOOST_AUTO_TEST_CASE(blocking_functions_run_concurrently_on_the_default_executor)
{
  event_loop loop;
  BOOST_TEST(loop.run_until_complete(blocking_pair()) == 2);
}

BOOST_AUTO_TEST_CASE(cancelling_a_queued_job_takes_it_off_the_queue)
{
  thread_pool_executor pool{1};
  event_loop loop;
  gate g;
  auto blocker = occupy(pool, g);
  std::atomic<bool> ran{false};
  auto fut = loop.run_in_executor(pool, [&] {
    ran = true;
    return 1;
  });
  BOOST_TEST(fut.cancel());
  // The cancellation reaches the job through the loop.
  loop.run_until_complete(nap());
  g.release.count_down();
  pool.shutdown();
  BOOST_TEST(fut.cancelled());
  BOOST_TEST(!ran);
}

BOOST_AUTO_TEST_CASE(a_running_job_that_takes_a_stop_token_is_stopped_by_cancel)
{
  thread_pool_executor pool{1};
  event_loop loop;
  auto started = std::make_shared<std::latch>(1);
  std::atomic<bool> saw_stop{false};
  auto fut = loop.run_in_executor(pool, [&, started](std::stop_token st, int code) {
    started->count_down();
    while (!st.stop_requested())
      std::this_thread::sleep_for(1ms);
    saw_stop = true;
    return code;
  }, 9);
  started->wait();
  fut.cancel();
  loop.run_until_complete(nap()); // the stop request goes out as loop work
  pool.shutdown();                // returns only once the job has stopped
  BOOST_TEST(saw_stop);
  BOOST_TEST(fut.cancelled());
}

asio::awaitable<void> leave_a_job_running(std::shared_ptr<std::atomic<bool>> finished)
{
  (void)asioloop::to_thread([finished] {
    std::this_thread::sleep_for(50ms);
    *finished = true;
  });
  co_return;
}

BOOST_AUTO_TEST_CASE(asioloop_run_waits_for_the_default_executor)
{
  auto finished = std::make_shared<std::atomic<bool>>(false);
  asioloop::run(leave_a_job_running(finished));
  BOOST_TEST(*finished);
}

asio::awaitable<std::chrono::nanoseconds> virtual_wait()
{
  auto& loop = asioloop::get_running_loop();
  const auto t0 = loop.time();
  loop.call_later(10s, [] {});
  co_await loop.run_in_executor(nullptr, [] { std::this_thread::sleep_for(30ms); });
  co_return loop.time() - t0;
}

BOOST_AUTO_TEST_CASE(virtual_time_waits_for_executor_jobs)
{
  event_loop loop{asioloop::virtual_clock};
  // The clock would jump to the 10 s timer if the job did not count.
  BOOST_TEST(loop.run_until_complete(virtual_wait()) < 10s);
}

BOOST_AUTO_TEST_CASE(a_replaced_default_executor_is_used_and_shut_down_on_close)
{
  auto pool = std::make_shared<thread_pool_executor>(1);
  std::thread::id worker;
  {
    event_loop loop;
    loop.set_default_executor(pool);
    BOOST_TEST(&loop.default_executor() == pool.get());
    auto id = loop.run_until_complete(loop.run_in_executor(
        nullptr, [] { return std::this_thread::get_id(); }));
    BOOST_TEST((id != std::this_thread::get_id()));
    loop.close();
    BOOST_CHECK_THROW(loop.run_in_executor(nullptr, twice, 1), asioloop::loop_closed_error);
  }
  BOOST_CHECK_THROW(pool->submit(twice, 1), asioloop::broken_executor_error);
  BOOST_CHECK_THROW(event_loop{}.set_default_executor(nullptr), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(shutdown_with_pending_jobs_leaves_no_loop_future_hanging)
{
  thread_pool_executor pool{1};
  event_loop loop;
  gate g;
  auto blocker = occupy(pool, g);
  std::vector<asioloop::future<int>> fs;
  for (int i = 0; i < 5; ++i)
    fs.push_back(loop.run_in_executor(pool, twice, i));
  pool.shutdown(false, true);
  g.release.count_down();
  asioloop::test::run_until(loop, [&] {
    for (auto& f : fs)
      if (!f.done())
        return false;
    return true;
  });
  for (auto& f : fs)
    BOOST_TEST(f.cancelled());
}

BOOST_AUTO_TEST_SUITE_END()

