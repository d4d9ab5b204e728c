// An Asio TCP echo server that offloads its blocking step: the loop is
// embedded in the server's io_context (run by two threads), each connection
// is a task, and the slow, synchronous part of a request goes through
// run_in_executor. Three clients that each need a 100 ms blocking step are
// served in about 100 ms, not 300.
//
// asyncio:
//   async def serve(reader, writer):
//       while line := await reader.readline():
//           reply = await loop.run_in_executor(None, shout, line)
//           writer.write(reply)
//   server = await asyncio.start_server(serve, '127.0.0.1', 0)

#include "echo_server.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/use_future.hpp>

#include <cstdio>
#include <future>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;

asio::awaitable<std::string> client(tcp::endpoint server, std::string line)
{
  tcp::socket socket(co_await asio::this_coro::executor);
  co_await socket.async_connect(server, asio::use_awaitable);
  co_await asio::async_write(socket, asio::buffer(line), asio::use_awaitable);
  std::string reply;
  co_await asio::async_read_until(socket, asio::dynamic_buffer(reply), '\n',
      asio::use_awaitable);
  co_return reply;
}

int main()
{
  asio::io_context host;
  auto work = asio::make_work_guard(host);
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i)
    threads.emplace_back([&] { host.run(); });
  {
    echo::server server(host, 100ms);
    const auto start = std::chrono::steady_clock::now();
    std::vector<std::future<std::string>> replies;
    for (int i = 1; i <= 3; ++i)
      replies.push_back(asio::co_spawn(host,
          client(server.endpoint(), "hello from " + std::to_string(i) + "\n"),
          asio::use_future));
    for (std::size_t i = 0; i < replies.size(); ++i)
      std::cout << "client " << i + 1 << ": " << replies[i].get();
    std::printf("3 clients in %.1f s: their blocking steps ran at once\n",
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    server.stop();
    work.reset();
    host.stop();
    for (auto& t : threads)
      t.join();
  } // the server (and its loop) go before the io_context
}
