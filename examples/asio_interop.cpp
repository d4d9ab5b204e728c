// asioloop and plain Asio in one program: an Asio TCP echo exchange on
// loopback, an Asio timer, co_spawn, and asioloop tasks and sleep, all in
// coroutines on the loop's executor.
//
// asyncio has this in one library (asyncio.open_connection, start_server);
// here the sockets are Asio's, and they complete as loop work.

#include <asioloop/asioloop.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <iostream>
#include <string>

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;

// A one-shot echo server, written as plain Asio.
asio::awaitable<void> echo_once(tcp::acceptor& acceptor)
{
  tcp::socket peer = co_await acceptor.async_accept(asio::use_awaitable);
  std::array<char, 5> buf{};
  co_await asio::async_read(peer, asio::buffer(buf), asio::use_awaitable);
  co_await asio::async_write(peer, asio::buffer(buf), asio::use_awaitable);
}

asio::awaitable<std::string> client(tcp::endpoint server)
{
  auto ex = co_await asio::this_coro::executor;
  tcp::socket socket(ex);
  co_await socket.async_connect(server, asio::use_awaitable);
  co_await asio::async_write(socket, asio::buffer(std::string("hello")), asio::use_awaitable);
  std::array<char, 5> buf{};
  co_await asio::async_read(socket, asio::buffer(buf), asio::use_awaitable);
  co_return std::string(buf.data(), buf.size());
}

asio::awaitable<void> main_coroutine()
{
  auto& loop = asioloop::get_running_loop();
  auto ex = co_await asio::this_coro::executor; // the loop's executor

  tcp::acceptor acceptor(ex, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  asio::co_spawn(ex, echo_once(acceptor), asio::detached); // plain co_spawn

  auto echoed = loop.create_task(client(acceptor.local_endpoint())); // a task
  std::cout << "created " << echoed << '\n';
  asio::steady_timer timer(ex, 10ms); // Asio's own timer
  co_await timer.async_wait(asio::use_awaitable);
  std::cout << "timer fired\n";

  std::cout << "echoed: " << co_await std::move(echoed) << '\n';
  co_await asioloop::sleep(10ms); // asioloop's sleep, in the same coroutine
  std::cout << "task " << echoed << '\n';
}

int main()
{
  asioloop::event_loop loop;
  loop.run_until_complete(main_coroutine());
}
