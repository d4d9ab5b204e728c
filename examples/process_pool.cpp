// Blocking functions run in worker processes, gathered from a coroutine: the
// walkthrough's item 7 (c3), then a job that crashes its worker and the pool
// carrying on.
//
// asyncio:
//   def a():
//       time.sleep(1)
//       return 'A'
//
//   def show_perf(func):
//       print('*' * 20)
//       start = time.perf_counter()
//       asyncio.run(func())
//       print(f'{func.__name__} Cost: {time.perf_counter() - start}')
//
//   async def c3():
//       loop = asyncio.get_running_loop()
//       with concurrent.futures.ProcessPoolExecutor() as e:
//           print(await asyncio.gather(
//               loop.run_in_executor(e, a),
//               loop.run_in_executor(e, b)))
//
//   show_perf(c3)       # ********************  ['A', 'B']  c3 Cost: 1.02...
//
// The workers are this program, started again: asioloop recognizes a worker
// before main() runs, so main() needs no code for it. Linux only.

#include <asioloop/asioloop.hpp>
#include <asioloop/process_pool.hpp>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <signal.h>
#include <unistd.h>

namespace asio = boost::asio;
using namespace std::chrono_literals;

// Plain blocking functions: each runs in a worker process.
std::string a()
{
  std::this_thread::sleep_for(1s);
  return "A";
}

std::string b()
{
  std::this_thread::sleep_for(1s);
  return "B";
}

int crash()
{
  ::kill(::getpid(), SIGKILL); // as a segfault or the OOM killer would
  return 0;
}

void print(const std::vector<std::string>& items)
{
  std::cout << '[';
  for (std::size_t i = 0; i < items.size(); ++i)
    std::cout << (i ? ", '" : "'") << items[i] << '\'';
  std::cout << "]\n";
}

asio::awaitable<void> c3()
{
  auto& loop = asioloop::get_running_loop();
  asioloop::process_pool_executor e{2};
  auto [ra, rb] = co_await asioloop::gather(
      loop.run_in_executor(e, a), loop.run_in_executor(e, b));
  print({ra, rb});
}

asio::awaitable<void> crash_and_carry_on()
{
  auto& loop = asioloop::get_running_loop();
  asioloop::process_pool_executor e{2};
  try
  {
    co_await loop.run_in_executor(e, crash);
  }
  catch (const asioloop::broken_executor_error& err)
  {
    std::cout << "crash: " << err.what() << '\n';
  }
  // The pool replaced the worker.
  std::cout << "after the crash: "
            << co_await loop.run_in_executor(e, [](int x) { return x * 2; }, 21) << '\n';
}

template <typename F>
void show_perf(F func, const char* name)
{
  std::printf("%s\n", std::string(20, '*').c_str());
  const auto start = std::chrono::steady_clock::now();
  asioloop::run(func());
  std::printf("%s Cost: %.16g\n", name,
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

int main()
{
  show_perf(c3, "c3");
  asioloop::run(crash_and_carry_on());
}
