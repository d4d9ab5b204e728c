//
// test/process_pool.cpp
//
// process_pool_executor: calls, argument conversion and sendable types,
// remote exceptions, each way a worker can die, the wrong-function guard,
// the initializer, max_tasks_per_child, shutdown, oversized messages, a job
// that prints, a job that reads a global, and no leftover processes (also
// after the parent is killed). Every wait has a generous bound: workers are
// real processes on a possibly loaded machine.
//

#include <asioloop/process_pool.hpp>

#include "support/loop_fixture.hpp"

#include <asioloop/compose.hpp>
#include <asioloop/event_loop.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/test/unit_test.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <future>
#include <thread>
#include <tuple>
#include <vector>

extern char** environ;

namespace asio = boost::asio;
using asioloop::broken_executor_error;
using asioloop::concurrent_future;
using asioloop::process_pool_executor;
using asioloop::process_pool_options;
using asioloop::remote_error;
using namespace std::chrono_literals;

// A user type, sent through the customization point.
struct point
{
  int x = 0;
  double y = 0;
  std::string label;
};

template <>
struct asioloop::serializer<point>
{
  static void write(asioloop::wire_writer& w, const point& p)
  {
    w.put(p.x);
    w.put(p.y);
    w.put(p.label);
  }
  static point read(asioloop::wire_reader& r)
  {
    return point{r.get<int>(), r.get<double>(), r.get<std::string>()};
  }
};

namespace asioloop::detail {

struct pp_test_access
{
  static void enqueue(process_pool_executor& p, std::unique_ptr<pp_job> j)
  {
    p.enqueue(std::move(j));
  }
};

} // namespace asioloop::detail

// A global with a dynamic initializer: a job must see it constructed.
std::string g_constructed = std::string("constructed") + " at startup";
int g_initialized_by = 0;

namespace {

constexpr auto bound = 30s;

int twice(int x) { return x * 2; }
std::string greet(const std::string& who, int times)
{
  std::string s;
  for (int i = 0; i < times; ++i)
    s += "hello " + who + (i + 1 < times ? ", " : "");
  return s;
}
double half(double x) { return x / 2; }
std::string read_global() { return g_constructed; }
int my_pid() { return static_cast<int>(::getpid()); }
void nothing() {}

std::tuple<std::vector<int>, std::map<std::string, int>, std::pair<bool, char>,
    std::optional<std::string>, std::optional<int>>
echo_containers(std::vector<int> v, std::map<std::string, int> m, std::pair<bool, char> p,
    std::optional<std::string> o, std::optional<int> none)
{
  v.push_back(static_cast<int>(v.size()));
  m["n"] = static_cast<int>(m.size());
  return {v, m, p, o, none};
}

point move_point(point p, int dx)
{
  p.x += dx;
  p.label += "!";
  return p;
}

std::vector<std::string> by_ref(std::vector<std::string>& v, std::string&& s)
{
  v.push_back(std::move(s));
  return v;
}

struct custom_failure : std::runtime_error
{
  using std::runtime_error::runtime_error;
};

int fail_with(int how)
{
  if (how == 0)
    throw std::invalid_argument("bad argument 0");
  if (how == 1)
    throw custom_failure("custom failure");
  throw 42; // not a std::exception: only its type can travel
}

// Each way a worker can die, in the middle of a call.
int die(int how)
{
  std::cout.flush();
  switch (how)
  {
  case 0:
    ::kill(::getpid(), SIGKILL);
    break;
  case 1:
    // A segfault by signal: a sanitizer's SEGV handler would otherwise turn
    // a real one into an exit status.
    ::signal(SIGSEGV, SIG_DFL);
    ::raise(SIGSEGV);
    break;
  case 2:
    ::_exit(3);
  case 3:
    std::exit(4);
  default:
    break;
  }
  std::this_thread::sleep_for(60s);
  return -1;
}

int slow(int ms)
{
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return ms;
}

// Says which worker runs it (on the shared stdout), then sleeps.
int announce_then_sleep(int ms)
{
  std::printf("worker %d\n", static_cast<int>(::getpid()));
  std::fflush(stdout);
  return slow(ms);
}

std::string big_result(int n) { return std::string(static_cast<std::size_t>(n), 'x'); }
std::size_t length_of(const std::string& s) { return s.size(); }

int print_and_return(int x)
{
  std::cout << "worker says " << x << std::endl;
  std::fprintf(stderr, "worker stderr %d\n", x);
  return x + 1;
}

void init_ok() { g_initialized_by = 7; }
int initialized() { return g_initialized_by; }
void init_fails() { throw std::runtime_error("initializer refuses"); }

template <typename T>
T get(concurrent_future<T> f)
{
  return std::move(f).result(bound);
}

/// Checks that @c f fails with broken_executor_error naming @c expected
/// (the signal or the exit status).
void expect_broken(concurrent_future<int> f, const std::string& expected)
{
  try
  {
    get(std::move(f));
    BOOST_FAIL("no exception");
  }
  catch (const broken_executor_error& e)
  {
    BOOST_TEST_MESSAGE(e.what());
    BOOST_TEST(std::string(e.what()).find(expected) != std::string::npos,
        "message: " << e.what());
  }
}

/// Six calls queued behind one that dies: a death loses no other call.
std::vector<concurrent_future<int>> submit_six(process_pool_executor& pool)
{
  std::vector<concurrent_future<int>> behind;
  for (int i = 0; i < 6; ++i)
    behind.push_back(pool.submit(twice, i));
  return behind;
}

void expect_six(std::vector<concurrent_future<int>>& behind)
{
  for (std::size_t i = 0; i < behind.size(); ++i)
    BOOST_TEST(get(behind[i]) == 2 * static_cast<int>(i));
}

/// True if @c pid is neither running nor a zombie of ours.
bool gone(int pid)
{
  if (::kill(pid, 0) != 0)
    return errno == ESRCH;
  // Reparented zombies (after the parent was killed) are not running either.
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  const auto close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'Z';
}

bool wait_gone(int pid, std::chrono::seconds limit = 30s)
{
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!gone(pid))
  {
    if (std::chrono::steady_clock::now() > deadline)
      return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

/// The children of this process: /proc lists each thread's.
std::vector<int> my_children()
{
  std::vector<int> kids;
  const std::string tasks = "/proc/" + std::to_string(::getpid()) + "/task";
  if (DIR* d = ::opendir(tasks.c_str()))
  {
    while (dirent* e = ::readdir(d))
    {
      if (e->d_name[0] == '.')
        continue;
      std::ifstream f(tasks + "/" + e->d_name + "/children");
      int pid;
      while (f >> pid)
        kids.push_back(pid);
    }
    ::closedir(d);
  }
  return kids;
}

} // namespace

BOOST_AUTO_TEST_SUITE(process_pool)

BOOST_AUTO_TEST_CASE(calls_a_free_function)
{
  process_pool_executor pool{2};
  BOOST_TEST(pool.max_workers() == 2u);
  BOOST_TEST(get(pool.submit(twice, 21)) == 42);
  BOOST_TEST(get(pool.submit(&twice, -4)) == -8);
  BOOST_CHECK_THROW(pool.submit(static_cast<int (*)(int)>(nullptr), 1), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(converts_arguments_like_invoke)
{
  process_pool_executor pool{1};
  // const char* becomes the std::string parameter; int becomes double.
  BOOST_TEST(get(pool.submit(greet, "you", 2)) == "hello you, hello you");
  BOOST_TEST(get(pool.submit(half, 3)) == 1.5);
  std::vector<std::string> v{"a"};
  BOOST_TEST((get(pool.submit(by_ref, v, std::string("b")))
      == std::vector<std::string>{"a", "b"}));
  BOOST_TEST(v.size() == 1u); // the worker had its own copy
  pool.submit(nothing).result(bound);
}

BOOST_AUTO_TEST_CASE(sends_containers_and_user_types)
{
  process_pool_executor pool{1};
  auto [v, m, p, o, none] = get(pool.submit(echo_containers, std::vector<int>{5, 6},
      std::map<std::string, int>{{"a", 1}}, std::pair<bool, char>{true, 'z'},
      std::optional<std::string>{"opt"}, std::nullopt));
  BOOST_TEST((v == std::vector<int>{5, 6, 2}));
  BOOST_TEST((m == std::map<std::string, int>{{"a", 1}, {"n", 1}}));
  BOOST_TEST(p.first);
  BOOST_TEST(p.second == 'z');
  BOOST_TEST(o.value() == "opt");
  BOOST_TEST(!none.has_value());

  const point q = get(pool.submit(move_point, point{1, 2.5, "p"}, 10));
  BOOST_TEST(q.x == 11);
  BOOST_TEST(q.y == 2.5);
  BOOST_TEST(q.label == "p!");
}

BOOST_AUTO_TEST_CASE(sends_captureless_lambdas)
{
  process_pool_executor pool{1};
  BOOST_TEST(get(pool.submit([](int a, int b) { return a * b; }, 6, 7)) == 42);
  // A generic lambda gets the arguments as their own types.
  BOOST_TEST(get(pool.submit([](auto s) { return s + s; }, std::string("ab"))) == "abab");
  BOOST_TEST(get(pool.submit([] { return g_constructed; })) == "constructed at startup");
}

BOOST_AUTO_TEST_CASE(a_job_sees_the_executables_globals_constructed)
{
  process_pool_executor pool{1};
  BOOST_TEST(get(pool.submit(read_global)) == "constructed at startup");
  BOOST_TEST(get(pool.submit(my_pid)) != static_cast<int>(::getpid()));
}

BOOST_AUTO_TEST_CASE(an_exception_arrives_as_remote_error)
{
  process_pool_executor pool{1};
  try
  {
    get(pool.submit(fail_with, 0));
    BOOST_FAIL("no exception");
  }
  catch (const remote_error& e)
  {
    BOOST_TEST(e.type_name() == "std::invalid_argument");
    BOOST_TEST(std::string(e.what()) == "std::invalid_argument: bad argument 0");
  }
  try
  {
    get(pool.submit(fail_with, 1));
    BOOST_FAIL("no exception");
  }
  catch (const remote_error& e)
  {
    BOOST_TEST(e.type_name() == "(anonymous namespace)::custom_failure");
    BOOST_TEST(std::string(e.what()).find("custom failure") != std::string::npos);
  }
  try
  {
    get(pool.submit(fail_with, 2));
    BOOST_FAIL("no exception");
  }
  catch (const remote_error& e)
  {
    BOOST_TEST(e.type_name() == "int");
  }
  // The worker survived all three.
  BOOST_TEST(get(pool.submit(twice, 1)) == 2);
  BOOST_TEST(pool.worker_pids().size() == 1u);
}

BOOST_AUTO_TEST_CASE(a_dying_worker_fails_its_call_and_is_replaced)
{
  process_pool_executor pool{2};
  const char* expected[] = {"killed by signal 9 (SIGKILL)", "killed by signal 11 (SIGSEGV)",
      "exited with status 3", "exited with status 4"};
  for (int how = 0; how < 4; ++how)
  {
    BOOST_TEST_CONTEXT("way " << how)
    {
      // Jobs on the other worker, and queued behind, all complete.
      auto other = pool.submit(slow, 100);
      const auto t0 = std::chrono::steady_clock::now();
      auto doomed = pool.submit(die, how);
      auto behind = submit_six(pool);
      expect_broken(doomed, expected[how]);
      BOOST_TEST((std::chrono::steady_clock::now() - t0 < bound));
      BOOST_TEST(get(other) == 100);
      expect_six(behind);
    }
  }
  BOOST_TEST(get(pool.submit(twice, 5)) == 10);
}

BOOST_AUTO_TEST_CASE(an_unknown_function_is_refused_not_called)
{
  process_pool_executor pool{1};
  // A request as another build would make it: the right shape, a build-id
  // that this executable does not have.
  auto job = std::make_unique<asioloop::detail::pp_job_of<int>>();
  auto fut = job->future;
  job->request.resize(asioloop::detail::pp_header_size);
  asioloop::wire_writer w(job->request);
  const std::string fake = "gnu:0123456789abcdefghij";
  w.put(static_cast<std::uint8_t>(fake.size()));
  w.put_bytes(fake.data(), fake.size());
  w.put(std::uint64_t(0x1000));
  w.put(std::uint8_t(0));
  w.put(std::uint64_t(0));
  asioloop::detail::pp_test_access::enqueue(pool, std::move(job));
  try
  {
    get(fut);
    BOOST_FAIL("no exception");
  }
  catch (const remote_error& e)
  {
    BOOST_TEST(e.type_name() == "asioloop::unknown_function");
    BOOST_TEST(std::string(e.what()).find("nothing was called") != std::string::npos);
  }
  BOOST_TEST(get(pool.submit(twice, 4)) == 8);
}

BOOST_AUTO_TEST_CASE(initializer_runs_once_per_worker)
{
  process_pool_executor pool{2, {.initializer = init_ok}};
  BOOST_TEST(get(pool.submit(initialized)) == 7);
  BOOST_TEST(g_initialized_by == 0); // not in this process
}

BOOST_AUTO_TEST_CASE(a_failing_initializer_breaks_the_pool)
{
  process_pool_executor pool{1, {.initializer = init_fails}};
  auto f = pool.submit(twice, 1);
  try
  {
    get(f);
    BOOST_FAIL("no exception");
  }
  catch (const broken_executor_error& e)
  {
    BOOST_TEST(std::string(e.what()).find("initializer") != std::string::npos);
    BOOST_TEST(std::string(e.what()).find("initializer refuses") != std::string::npos);
  }
  BOOST_CHECK_THROW(pool.submit(twice, 1), broken_executor_error);
}

BOOST_AUTO_TEST_CASE(max_tasks_per_child_replaces_workers)
{
  process_pool_executor pool{1, {.max_tasks_per_child = 2}};
  std::set<int> pids;
  for (int i = 0; i < 6; ++i)
    pids.insert(get(pool.submit(my_pid)));
  BOOST_TEST(pids.size() == 3u);
}

BOOST_AUTO_TEST_CASE(shutdown_waits_for_pending_jobs)
{
  std::vector<concurrent_future<int>> fs;
  process_pool_executor pool{1};
  for (int i = 0; i < 5; ++i)
    fs.push_back(pool.submit(slow, 20));
  pool.shutdown(true);
  for (auto& f : fs)
    BOOST_TEST((f.done() && f.result() == 20));
  BOOST_CHECK_THROW(pool.submit(twice, 1), broken_executor_error);
  BOOST_TEST(pool.worker_pids().empty());
  pool.shutdown(); // again: harmless
}

BOOST_AUTO_TEST_CASE(shutdown_can_cancel_pending_jobs)
{
  process_pool_executor pool{1};
  auto running = pool.submit(slow, 300);
  // Wait until it runs, so that it is not among those cancelled.
  const auto deadline = std::chrono::steady_clock::now() + bound;
  while (!running.running() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(1ms);
  std::vector<concurrent_future<int>> queued;
  for (int i = 0; i < 5; ++i)
    queued.push_back(pool.submit(slow, 300));
  pool.shutdown(false, true);
  pool.shutdown(true);
  BOOST_TEST(running.result() == 300);
  int cancelled = 0;
  for (auto& f : queued)
    cancelled += f.cancelled();
  // How long a call takes is not known yet: none was sent ahead.
  BOOST_TEST(cancelled == 5);
}

// A busy worker is sent calls ahead of time only while calls are short.
// A call sent ahead has started (it can no longer be cancelled); a queued
// one waits for a free worker.
BOOST_AUTO_TEST_CASE(only_short_calls_are_sent_ahead)
{
  {
    process_pool_executor pool{1};
    for (int i = 0; i < 20; ++i)
      get(pool.submit(twice, i)); // well under a millisecond each
    auto busy = pool.submit(slow, 500);
    auto next = pool.submit(twice, 1);
    const auto deadline = std::chrono::steady_clock::now() + bound;
    while (!next.running() && !busy.done() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(1ms);
    BOOST_TEST(!busy.done());
    BOOST_TEST(next.running()); // sent behind the busy call
    BOOST_TEST(!next.cancel());
    BOOST_TEST(get(next) == 2);
  }
  {
    process_pool_executor pool{1};
    for (int i = 0; i < 3; ++i)
      get(pool.submit(slow, 20)); // 20 ms each: one at a time
    auto busy = pool.submit(slow, 500);
    auto next = pool.submit(twice, 1);
    std::this_thread::sleep_for(100ms);
    BOOST_TEST(!next.running()); // queued
    BOOST_TEST(next.cancel());
    BOOST_TEST(get(busy) == 500);
  }
}

BOOST_AUTO_TEST_CASE(oversized_messages_are_refused)
{
  process_pool_executor pool{1, {.max_message_size = 1024}};
  BOOST_CHECK_THROW(get(pool.submit(length_of, std::string(2000, 'a'))), std::length_error);
  try
  {
    get(pool.submit(big_result, 2000));
    BOOST_FAIL("no exception");
  }
  catch (const remote_error& e)
  {
    BOOST_TEST(e.type_name() == "asioloop::message_too_large");
  }
  BOOST_TEST(get(pool.submit(big_result, 10)) == "xxxxxxxxxx");
}

BOOST_AUTO_TEST_CASE(a_job_may_print)
{
  // The workers inherit stdout and stderr: point them at files first.
  char out_name[] = "/tmp/asioloop-pp-out-XXXXXX";
  const int out = ::mkstemp(out_name);
  BOOST_REQUIRE(out >= 0);
  std::fflush(stdout);
  std::cout.flush();
  const int saved = ::dup(1);
  ::dup2(out, 1);
  int result = 0;
  {
    process_pool_executor pool{1};
    result = get(pool.submit(print_and_return, 41));
  }
  std::fflush(stdout);
  ::dup2(saved, 1);
  ::close(saved);
  ::close(out);
  std::ifstream f(out_name);
  std::stringstream text;
  text << f.rdbuf();
  ::unlink(out_name);
  BOOST_TEST(result == 42);
  BOOST_TEST(text.str().find("worker says 41") != std::string::npos, "stdout: " << text.str());
}

namespace {

template <typename T>
asio::awaitable<T> wait(concurrent_future<T> f)
{
  co_return co_await std::move(f);
}

asio::awaitable<std::tuple<std::string, std::string>> two_jobs(process_pool_executor& pool)
{
  co_return co_await asioloop::gather(wait(pool.submit([](std::string s) { return s; }, "A")),
      wait(pool.submit(greet, "B", 1)));
}

asio::awaitable<int> await_one(process_pool_executor& pool, int x)
{
  co_return co_await pool.submit(twice, x);
}

} // namespace

BOOST_AUTO_TEST_CASE(awaited_in_a_loop)
{
  // The loops outlive the pool: the pool's thread may still be inside the
  // post that delivered a result when the loop has already run it.
  asioloop::event_loop loop;
  asioloop::event_loop other{asioloop::virtual_clock};
  process_pool_executor pool{2};
  auto [a, b] = loop.run_until_complete(two_jobs(pool));
  BOOST_TEST(a == "A");
  BOOST_TEST(b == "hello B");
  // One pool serves several loops.
  BOOST_TEST(other.run_until_complete(await_one(pool, 8)) == 16);
}

// A call written straight to an idle worker is waited for by reading the
// worker's socket on the waiting thread; the pool's thread reads it
// otherwise. These cases hand the socket from one to the other.

namespace {

/// Both workers started and idle.
void warm_up(process_pool_executor& pool)
{
  std::vector<concurrent_future<int>> fs;
  for (int i = 0; i < 2 * static_cast<int>(pool.max_workers()); ++i)
    fs.push_back(pool.submit(slow, 20));
  for (auto& f : fs)
    get(f);
}

} // namespace

BOOST_AUTO_TEST_CASE(sequential_calls_from_several_threads)
{
  process_pool_executor pool{2};
  warm_up(pool);
  std::vector<std::thread> threads;
  std::vector<int> wrong(4, 0);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i)
        if (pool.submit(twice, t * 1000 + i).result(bound) != 2 * (t * 1000 + i))
          ++wrong[static_cast<std::size_t>(t)];
    });
  for (auto& th : threads)
    th.join();
  for (int t = 0; t < 4; ++t)
    BOOST_TEST(wrong[static_cast<std::size_t>(t)] == 0);
}

BOOST_AUTO_TEST_CASE(a_timed_out_wait_hands_the_socket_back)
{
  process_pool_executor pool{1};
  warm_up(pool);
  // The waiter gives up first; the pool's thread must then read the reply.
  auto f = pool.submit(slow, 300);
  BOOST_CHECK_THROW(f.result(10ms), asioloop::timeout_error);
  const auto deadline = std::chrono::steady_clock::now() + bound;
  while (!f.done() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(1ms);
  BOOST_TEST(f.done());
  BOOST_TEST(f.result() == 300);
  // Time-outs racing the reply: whoever reads it, it arrives once.
  for (int i = 0; i < 20; ++i)
  {
    auto g = pool.submit(slow, 2 + i % 3);
    try
    {
      (void)g.result(std::chrono::milliseconds(1 + i % 4));
    }
    catch (const asioloop::timeout_error&)
    {
    }
    BOOST_TEST(get(g) == 2 + i % 3);
  }
  BOOST_TEST(get(pool.submit(twice, 3)) == 6);
}

BOOST_AUTO_TEST_CASE(a_call_never_waited_for_completes)
{
  // Declared first, destroyed last: the callback may still be unlocking.
  std::mutex m;
  std::condition_variable cv;
  int got = 0;
  process_pool_executor pool{1};
  warm_up(pool);
  // Written straight to the worker, but no one blocks on it: the pool's
  // thread reads the reply.
  auto f = pool.submit(twice, 21);
  f.add_done_callback([&](const concurrent_future<int>& d) {
    std::lock_guard lk(m);
    got = d.result();
    cv.notify_all();
  });
  std::unique_lock lk(m);
  BOOST_TEST(cv.wait_for(lk, bound, [&] { return got != 0; }));
  BOOST_TEST(got == 42);
}

BOOST_AUTO_TEST_CASE(a_waiter_completes_pipelined_calls_in_order)
{
  std::mutex m;
  std::condition_variable cv;
  std::vector<int> order;
  process_pool_executor pool{1};
  // Short jobs: the pool sends several ahead to the worker.
  for (int i = 0; i < 20; ++i)
    get(pool.submit(twice, i));
  std::vector<concurrent_future<int>> fs;
  for (int i = 0; i < 30; ++i)
  {
    // The first goes straight to the worker and holds it, while the rest
    // are sent ahead behind it.
    fs.push_back(i == 0 ? pool.submit(slow, 30) : pool.submit(twice, i));
    fs.back().add_done_callback([&m, &cv, &order, i](const concurrent_future<int>&) {
      std::lock_guard lk(m);
      order.push_back(i);
      cv.notify_all();
    });
  }
  // Waiting on the first reads the worker's socket while replies to the
  // others arrive behind it; waiting on the last reads the rest.
  BOOST_TEST(get(fs.front()) == 30);
  BOOST_TEST(get(fs.back()) == 58);
  for (int i = 1; i < 30; ++i)
    BOOST_TEST(get(fs[static_cast<std::size_t>(i)]) == 2 * i);
  // A future is done before its callbacks have run: wait for them.
  std::unique_lock lk(m);
  BOOST_TEST(cv.wait_for(lk, bound, [&] { return order.size() == 30u; }));
  for (std::size_t i = 0; i < order.size(); ++i)
    BOOST_TEST(order[i] == static_cast<int>(i));
}

BOOST_AUTO_TEST_CASE(a_worker_dying_under_a_waiter_is_reported_and_replaced)
{
  process_pool_executor pool{2};
  warm_up(pool);
  for (int how = 0; how < 2; ++how)
  {
    BOOST_TEST_CONTEXT("way " << how)
    {
      const auto before = pool.worker_pids();
      // Straight to an idle worker, then more behind it on the same one.
      auto doomed = pool.submit(die, how);
      auto other = pool.submit(slow, 50);
      auto behind = submit_six(pool);
      const char* expected[] = {"signal 9 (SIGKILL)", "signal 11 (SIGSEGV)"};
      expect_broken(doomed, expected[how]);
      BOOST_TEST(get(other) == 50);
      expect_six(behind);
      BOOST_TEST(get(pool.submit(twice, 7)) == 14);
      BOOST_TEST(pool.worker_pids() != before);
    }
  }
}

BOOST_AUTO_TEST_CASE(shutdown_while_a_thread_reads_its_reply)
{
  process_pool_executor pool{1};
  warm_up(pool);
  auto f = pool.submit(slow, 100);
  int got = 0;
  std::thread t([&] { got = f.result(bound); });
  std::this_thread::sleep_for(20ms); // usually blocked on the socket by now
  pool.shutdown(true);
  t.join();
  BOOST_TEST(got == 100);
  BOOST_TEST(pool.worker_pids().empty());
}

BOOST_AUTO_TEST_CASE(max_tasks_per_child_with_waiting_threads)
{
  process_pool_executor pool{2, {.max_tasks_per_child = 3}};
  std::set<int> pids;
  for (int i = 0; i < 12; ++i)
    pids.insert(get(pool.submit(my_pid)));
  BOOST_TEST(pids.size() >= 4u);
  BOOST_TEST(get(pool.submit(twice, 2)) == 4);
}

// A done callback runs on the thread that read the reply, here most often
// the one blocked in result(): shutting the pool down there must not wait
// for that very thread.
BOOST_AUTO_TEST_CASE(a_done_callback_may_shut_the_pool_down)
{
  auto pool = std::make_unique<process_pool_executor>(1);
  BOOST_TEST(get(pool->submit(twice, 0)) == 0); // the worker is up and idle
  std::promise<int> out;
  auto result = out.get_future();
  std::thread caller([&] {
    auto f = pool->submit(twice, 21); // written straight to the idle worker
    f.add_done_callback([&](const concurrent_future<int>&) { pool->shutdown(true); });
    out.set_value(f.result());
  });
  if (result.wait_for(bound) != std::future_status::ready)
  {
    caller.detach();
    BOOST_FAIL("shutdown(true) in a done callback deadlocked");
  }
  caller.join();
  BOOST_TEST(result.get() == 42);
  BOOST_CHECK_THROW(pool->submit(twice, 1), broken_executor_error);
  pool.reset();
}

// The constructor spawns the first worker on the calling thread; a worker
// must not die with that thread (as it would with PR_SET_PDEATHSIG).
BOOST_AUTO_TEST_CASE(workers_outlive_the_thread_that_made_the_pool)
{
  std::unique_ptr<process_pool_executor> pool;
  int first = 0;
  std::thread([&] {
    pool = std::make_unique<process_pool_executor>(1);
    first = pool->submit(my_pid).result(30s); // the worker is up: then this thread ends
  }).join();
  std::this_thread::sleep_for(200ms); // room for a signal to land
  BOOST_TEST(pool->submit(my_pid).result(30s) == first);
  BOOST_TEST(pool->worker_pids() == std::vector<int>{first}, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(no_processes_are_left_behind)
{
  std::vector<int> pids;
  {
    process_pool_executor pool{2};
    std::vector<concurrent_future<int>> fs;
    for (int i = 0; i < 8; ++i)
      fs.push_back(pool.submit(slow, 10));
    for (auto& f : fs)
      get(f);
    pids = pool.worker_pids();
    BOOST_TEST(!pids.empty());
    pool.submit(die, 0); // one more, dying, left to the destructor
  }
  for (int pid : pids)
    BOOST_TEST(gone(pid), "pid " << pid);
  BOOST_TEST(my_children().empty());
}

// Run only by parent_killed_leaves_no_worker, in a process of its own:
// two workers, each in the middle of a long call.
BOOST_AUTO_TEST_CASE(parent_killed_helper, *boost::unit_test::disabled())
{
  process_pool_executor pool{2};
  auto a = pool.submit(announce_then_sleep, 60'000);
  auto b = pool.submit(announce_then_sleep, 60'000);
  std::this_thread::sleep_for(120s);
}

BOOST_AUTO_TEST_CASE(parent_killed_leaves_no_worker)
{
  int fds[2];
  BOOST_REQUIRE(::pipe(fds) == 0);
  posix_spawn_file_actions_t fa;
  ::posix_spawn_file_actions_init(&fa);
  ::posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  ::posix_spawn_file_actions_addclose(&fa, fds[0]);
  std::string self = boost::unit_test::framework::master_test_suite().argv[0];
  char arg[] = "--run_test=process_pool/parent_killed_helper";
  char log[] = "--log_level=nothing";
  char* argv[] = {self.data(), arg, log, nullptr};
  pid_t helper = 0;
  BOOST_REQUIRE(::posix_spawn(&helper, "/proc/self/exe", &fa, nullptr, argv, environ) == 0);
  ::posix_spawn_file_actions_destroy(&fa);
  ::close(fds[1]);
  // Each worker says so once it runs its call: then both are busy.
  std::vector<int> workers;
  std::string line;
  char c;
  while (workers.size() < 2 && ::read(fds[0], &c, 1) == 1)
  {
    if (c != '\n')
    {
      line += c;
      continue;
    }
    int pid = 0;
    if (std::sscanf(line.c_str(), "worker %d", &pid) == 1)
      workers.push_back(pid);
    line.clear();
  }
  ::close(fds[0]);
  BOOST_TEST_REQUIRE(workers.size() == 2u);
  BOOST_TEST(workers[0] != workers[1]);
  ::kill(helper, SIGKILL);
  int status;
  ::waitpid(helper, &status, 0);
  for (int w : workers)
    BOOST_TEST(wait_gone(w), "worker " << w << " outlived its parent");
}

BOOST_AUTO_TEST_SUITE_END()
