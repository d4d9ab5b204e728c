// Blocking functions on the default executor: the walkthrough's item 6.
// Two 1-second blocking calls gathered through run_in_executor finish in
// about 1 s; a coroutine that blocks inside gives no concurrency.
//
// asyncio:
//   def a():
//       time.sleep(1)
//       return 'A'
//
//   async def b():
//       await asyncio.sleep(1)
//       return 'B'
//
//   def show_perf(func):
//       print('*' * 20)
//       start = time.perf_counter()
//       asyncio.run(func())
//       print(f'{func.__name__} Cost: {time.perf_counter() - start}')
//
//   async def c1():
//       loop = asyncio.get_running_loop()
//       await asyncio.gather(loop.run_in_executor(None, a), b())
//
//   async def blocking_a():        # wrong: blocks the loop, no concurrency
//       time.sleep(1)
//       return 'A'
//
//   async def c2():
//       await asyncio.gather(blocking_a(), b())

#include <asioloop/asioloop.hpp>
#include <asioloop/thread_pool.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

namespace asio = boost::asio;
using namespace std::chrono_literals;

std::string a()
{
  std::this_thread::sleep_for(1s);
  return "A";
}

asio::awaitable<std::string> b()
{
  co_await asioloop::sleep(1s);
  co_return "B";
}

template <typename F>
void show_perf(const char* name, F func)
{
  std::printf("%s\n", std::string(20, '*').c_str());
  const auto start = std::chrono::steady_clock::now();
  asioloop::run(func());
  std::printf("%s Cost: %.16g\n", name,
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

asio::awaitable<void> c1()
{
  auto& loop = asioloop::get_running_loop();
  co_await asioloop::gather(loop.run_in_executor(nullptr, a), b());
}

// Wrong: a coroutine that blocks holds up the whole loop.
asio::awaitable<std::string> blocking_a()
{
  std::this_thread::sleep_for(1s);
  co_return "A";
}

asio::awaitable<void> c2()
{
  co_await asioloop::gather(blocking_a(), b());
}

int main()
{
  show_perf("c1", c1); // about 1 s
  show_perf("c2", c2); // about 2 s
}
