// call_soon runs callbacks in registration order on the next iteration:
// the walkthrough's b1.
//
// asyncio:
//   def mark_done(future, result):
//       print(f'Set to: {result}')
//       future.set_result(result)
//
//   async def b1():
//       loop = asyncio.get_event_loop()
//       fut = asyncio.Future()
//       loop.call_soon(mark_done, fut, 'the result')
//       loop.call_soon(partial(print, 'Hello', flush=True))
//       loop.call_soon(partial(print, 'Greeting', flush=True))
//       print(f'Done: {fut.done()}')
//       await asyncio.sleep(0)
//       print(f'Done: {fut.done()}, Result: {fut.result()}')

#include <asioloop/asioloop.hpp>

#include <iostream>
#include <string>

namespace asio = boost::asio;
using namespace std::chrono_literals;

void mark_done(asioloop::future<std::string> fut, const std::string& result)
{
  std::cout << "Set to: " << result << '\n';
  fut.set_result(result);
}

void print(const std::string& text)
{
  std::cout << text << std::endl; // flush=True
}

asio::awaitable<void> b1()
{
  auto& loop = asioloop::get_running_loop();
  auto fut = loop.create_future<std::string>();
  loop.call_soon(mark_done, fut, "the result");
  loop.call_soon(print, "Hello");
  loop.call_soon(print, "Greeting");
  std::cout << "Done: " << (fut.done() ? "True" : "False") << '\n';
  co_await asioloop::sleep(0s);
  std::cout << "Done: " << (fut.done() ? "True" : "False")
            << ", Result: " << fut.result() << '\n';
}

int main()
{
  asioloop::event_loop loop;
  loop.run_until_complete(b1());
}
