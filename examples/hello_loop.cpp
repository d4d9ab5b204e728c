// The loop's core in a few lines: call_soon, call_soon_threadsafe, stop and
// run_until_complete on an owned loop.
//
// asyncio:
//   loop = asyncio.new_event_loop()
//   loop.call_soon(print, 'Hello')
//   loop.call_soon(print, 'World')
//   loop.call_soon(loop.stop)
//   loop.run_forever()
//   threading.Thread(target=lambda: loop.call_soon_threadsafe(greet, 'thread')).start()
//   print(loop.run_until_complete(main()))
//   loop.close()

#include <asioloop/asioloop.hpp>

#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <iostream>
#include <string>
#include <thread>

namespace asio = boost::asio;

void say(const std::string& text)
{
  std::cout << text << '\n';
}

asio::awaitable<std::string> main_coroutine(std::thread& helper)
{
  auto& loop = asioloop::get_running_loop();
  // Another thread hands work to the loop; it runs as loop work.
  helper = std::thread([&loop] {
    loop.call_soon_threadsafe(say, std::string("Hello from another thread"));
  });
  helper.join();
  co_await asio::post(asio::use_awaitable); // let the loop run it
  co_return "Done";
}

int main()
{
  asioloop::event_loop loop;

  loop.call_soon(say, "Hello");
  loop.call_soon(say, "World");
  loop.call_soon([&loop] { loop.stop(); });
  loop.run_forever();

  std::thread helper;
  std::cout << loop.run_until_complete(main_coroutine(helper)) << '\n';
  loop.close();
}
