// Timeouts: wait_for gives up on slow work (cancelling it), and wait with
// first_completed returns as soon as one task is done.
//
// asyncio:
//   async def work(name, delay):
//       await asyncio.sleep(delay)
//       return name
//
//   print(await asyncio.wait_for(work('fast', 0.1), timeout=1))
//   try:
//       await asyncio.wait_for(work('slow', 2), timeout=0.2)
//   except TimeoutError:
//       print('slow: timed out')
//
//   tasks = [asyncio.create_task(work(n, d)) for n, d in
//            [('first', 0.1), ('second', 0.3)]]
//   done, pending = await asyncio.wait(tasks, return_when=FIRST_COMPLETED)
//   print('done:', [t.result() for t in done], 'pending:', len(pending))
//   for t in pending: t.cancel()

#include <asioloop/asioloop.hpp>

#include <chrono>
#include <iostream>
#include <string>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;

asio::awaitable<std::string> work(std::string name, std::chrono::milliseconds delay)
{
  try
  {
    co_await asioloop::sleep(delay);
  }
  catch (...)
  {
    std::cout << name << ": cancelled\n";
    throw;
  }
  co_return name;
}

asio::awaitable<void> main_coroutine()
{
  std::cout << co_await asioloop::wait_for(work("fast", 100ms), 1s) << '\n';
  try
  {
    co_await asioloop::wait_for(work("slow", 2000ms), 200ms);
  }
  catch (const asioloop::timeout_error& e)
  {
    std::cout << "slow: " << e.what() << '\n';
  }

  std::vector<asioloop::task<std::string>> tasks{
      asioloop::create_task(work("first", 100ms)),
      asioloop::create_task(work("second", 300ms))};
  auto [done, pending] =
      co_await asioloop::wait(tasks, asioloop::return_when::first_completed);
  std::cout << "done: " << done.front().result() << ", pending: " << pending.size()
            << '\n';
  for (auto& t : pending)
    t.cancel();
}

int main()
{
  asioloop::run(main_coroutine());
}
