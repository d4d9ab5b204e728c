// call_at on the loop's clock: the walkthrough's b3.
//
// asyncio:
//   async def b3():
//       loop = asyncio.get_event_loop()
//       now = loop.time()
//       fut = asyncio.Future()
//       loop.call_at(now + 2, mark_done, fut, 'the result')
//       loop.call_at(now + 1, partial(print, 'Hello', flush=True))
//       loop.call_at(now + 1, partial(print, 'Greeting', flush=True))
//       print(f'Done: {fut.done()}')
//       await asyncio.sleep(2)
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

asio::awaitable<void> b3()
{
  auto& loop = asioloop::get_running_loop();
  const auto now = loop.time();
  auto fut = loop.create_future<std::string>();
  loop.call_at(now + 2s, mark_done, fut, "the result");
  loop.call_at(now + 1s, print, "Hello");
  loop.call_at(now + 1s, print, "Greeting");
  std::cout << "Done: " << (fut.done() ? "True" : "False") << '\n';
  co_await asioloop::sleep(2s);
  std::cout << "Done: " << (fut.done() ? "True" : "False")
            << ", Result: " << fut.result() << '\n';
}

int main()
{
  asioloop::event_loop loop;
  loop.run_until_complete(b3());
}
