// An event_loop embedded in a server's io_context, run by two threads, beside
// a plain Asio timer: loop work stays one FIFO and never runs concurrently.
//
// asyncio has no embedded mode: there the loop is the reactor. This is the
// shape of a loop living inside an existing Asio program.

#include <asioloop/asioloop.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <iostream>
#include <thread>

namespace asio = boost::asio;
using namespace std::chrono_literals;

int main()
{
  asio::io_context ioc(2);
  asioloop::event_loop loop{ioc.get_executor()};

  // A plain Asio timer on the host, not loop work.
  asio::steady_timer host_timer(ioc, 50ms);
  host_timer.async_wait([](auto) { std::cout << "host timer fired\n"; });

  // Loop work: callbacks, then a coroutine on the loop's executor.
  loop.call_soon_threadsafe([] { std::cout << "first callback\n"; });
  loop.call_soon_threadsafe([] { std::cout << "second callback\n"; });
  asio::co_spawn(loop.get_executor(),
      [&]() -> asio::awaitable<void> {
        auto& running = asioloop::get_running_loop();
        std::cout << "coroutine on the loop: "
                  << (&running == &loop ? "yes" : "no") << '\n';
        asio::steady_timer t(co_await asio::this_coro::executor, 100ms);
        co_await t.async_wait(asio::use_awaitable);
        std::cout << "coroutine resumed as loop work\n";
        running.close(); // the loop is done; the host goes on
      },
      asio::detached);

  std::thread second([&] { ioc.run(); });
  ioc.run();
  second.join();
  std::cout << "loop closed: " << std::boolalpha << loop.is_closed() << '\n';
}
