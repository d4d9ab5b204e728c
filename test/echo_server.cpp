//
// test/echo_server.cpp
//
// The echo_server example's server, embedded in an io_context run by two
// threads: concurrent clients on loopback each get their lines back, and
// their blocking steps overlap on the default executor.
//

#include "../examples/echo_server.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/test/unit_test.hpp>

#include <future>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

/// Sends @c lines one by one, each answered before the next, and returns
/// the replies.
asio::awaitable<std::vector<std::string>> converse(
    tcp::endpoint server, std::vector<std::string> lines)
{
  tcp::socket socket(co_await asio::this_coro::executor);
  co_await socket.async_connect(server, asio::use_awaitable);
  std::vector<std::string> replies;
  std::string buffer;
  for (auto& line : lines)
  {
    co_await asio::async_write(socket, asio::buffer(line), asio::use_awaitable);
    auto n = co_await asio::async_read_until(
        socket, asio::dynamic_buffer(buffer), '\n', asio::use_awaitable);
    replies.push_back(buffer.substr(0, n));
    buffer.erase(0, n);
  }
  co_return replies;
}

} // namespace

BOOST_AUTO_TEST_CASE(concurrent_clients_are_served_at_once)
{
  asio::io_context host;
  auto work = asio::make_work_guard(host);
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i)
    threads.emplace_back([&] { host.run(); });
  {
    echo::server server(host, 50ms);
    echo::most_in_flight = 0;
    std::vector<std::future<std::vector<std::string>>> clients;
    for (int c = 0; c < 6; ++c)
    {
      std::vector<std::string> lines;
      for (int i = 0; i < 3; ++i)
        lines.push_back("client " + std::to_string(c) + " line " + std::to_string(i) + "\n");
      clients.push_back(asio::co_spawn(host, converse(server.endpoint(), lines),
          asio::use_future));
    }
    for (int c = 0; c < 6; ++c)
    {
      auto replies = clients[c].get();
      BOOST_REQUIRE(replies.size() == 3u);
      for (int i = 0; i < 3; ++i)
        BOOST_TEST(replies[i]
            == "CLIENT " + std::to_string(c) + " LINE " + std::to_string(i) + "\n");
    }
    // Six clients waiting 50 ms each: the blocking steps overlapped.
    BOOST_TEST(echo::most_in_flight.load() >= 2);
    server.stop();
    work.reset();
    host.stop();
    for (auto& t : threads)
      t.join();
  }
}
