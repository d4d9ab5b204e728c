// A coroutine submitted to a loop in another thread: the walkthrough's item 8.
//
// asyncio:
//   def start_loop(loop):
//       asyncio.set_event_loop(loop)
//       loop.run_forever()
//
//   def shutdown(loop):
//       loop.stop()
//
//   async def b1():
//       new_loop = asyncio.new_event_loop()
//       t = Thread(target=start_loop, args=(new_loop,))
//       t.start()
//       future = asyncio.run_coroutine_threadsafe(a(), new_loop)
//       print(future)                                  # <Future ... state=pending>
//       print(f'Result: {future.result(timeout=2)}')   # Result: A
//       new_loop.call_soon_threadsafe(partial(shutdown, new_loop))
//
// Then the same with asioloop::loop_thread, which owns the loop and its
// thread, and a timeout shorter than the coroutine: TimeoutError.

#include <asioloop/asioloop.hpp>
#include <asioloop/concurrent_future.hpp>
#include <asioloop/loop_thread.hpp>

#include <functional>
#include <iostream>
#include <string>
#include <thread>

namespace asio = boost::asio;
using namespace std::chrono_literals;

asio::awaitable<std::string> a()
{
  co_await asioloop::sleep(1s);
  co_return "A";
}

void start_loop(asioloop::event_loop& loop)
{
  loop.run_forever();
}

void shutdown_loop(asioloop::event_loop& loop) // shutdown() is taken by POSIX
{
  loop.stop();
}

int main()
{
  {
    asioloop::event_loop new_loop;
    std::thread t(start_loop, std::ref(new_loop));
    auto future = asioloop::run_coroutine_threadsafe(a(), new_loop);
    std::cout << future << '\n';
    std::cout << "Result: " << future.result(2s) << '\n';
    new_loop.call_soon_threadsafe(shutdown_loop, std::ref(new_loop));
    t.join();
  }

  // loop_thread: the loop runs when it is constructed; its destructor stops
  // it through call_soon_threadsafe, after cancelling what is still pending.
  asioloop::loop_thread t;
  auto future = asioloop::run_coroutine_threadsafe(a(), t.loop());
  try
  {
    std::string result = future.result(500ms); // the coroutine takes 1 s
    std::cout << "Result: " << result << '\n';
  }
  catch (const asioloop::timeout_error& e)
  {
    std::cout << "timeout_error: " << e.what() << '\n';
  }
  future.cancel(); // cancels the task in the loop
  std::cout << future << '\n';
}
