// A task with done callbacks, awaited: the walkthrough's item 1.
//
// asyncio:
//   async def a():
//       await asyncio.sleep(1)
//       return 'A'
//
//   def callback(future):
//       print(f'Result: {future.result()}')
//
//   def callback2(future, n):
//       print(f'Result: {future.result()}, N: {n}')
//
//   task = loop.create_task(a())
//   task.add_done_callback(callback)
//   await task                      # Out: 'A'
//   task = loop.create_task(a())
//   task.add_done_callback(partial(callback2, n=1))
//   await task                      # Out: 'A'

#include <asioloop/asioloop.hpp>

#include <iostream>
#include <string>

namespace asio = boost::asio;
using namespace std::chrono_literals;

asio::awaitable<std::string> a()
{
  co_await asioloop::sleep(1s);
  co_return "A";
}

void callback(const asioloop::future<std::string>& future)
{
  std::cout << "Result: " << future.result() << '\n';
}

void callback2(const asioloop::future<std::string>& future, int n)
{
  std::cout << "Result: " << future.result() << ", N: " << n << '\n';
}

asio::awaitable<void> main_coroutine()
{
  auto& loop = asioloop::get_running_loop();

  auto task = loop.create_task(a());
  task.add_done_callback(callback);
  std::cout << co_await std::move(task) << '\n';

  task = loop.create_task(a());
  task.add_done_callback(callback2, 1);
  std::cout << co_await std::move(task) << '\n';
}

int main()
{
  asioloop::event_loop loop;
  loop.run_until_complete(main_coroutine());
}
