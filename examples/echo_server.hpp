// An Asio TCP server with an asioloop event_loop embedded in its
// io_context: each connection is a task, and the blocking step of each
// request runs on the loop's default executor through run_in_executor, so
// one slow request never holds up the others. Shared by
// examples/echo_server.cpp and test/echo_server.cpp.

#ifndef ASIOLOOP_EXAMPLES_ECHO_SERVER_HPP
#define ASIOLOOP_EXAMPLES_ECHO_SERVER_HPP

#include <asioloop/asioloop.hpp>
#include <asioloop/thread_pool.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <atomic>
#include <cctype>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace echo {

namespace asio = boost::asio;
using asio::ip::tcp;

/// How many blocking steps ran at once, at most: the test reads it.
inline std::atomic<int> in_flight{0};
inline std::atomic<int> most_in_flight{0};

/// The blocking step: a slow, synchronous upper-casing of one line (a
/// database call or a file read in a real server).
inline std::string shout(std::string line, std::chrono::milliseconds cost)
{
  const int now = ++in_flight;
  for (int seen = most_in_flight; now > seen && !most_in_flight.compare_exchange_weak(seen, now);)
  {
  }
  std::this_thread::sleep_for(cost);
  for (char& c : line)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  --in_flight;
  return line;
}

/// Answers each line of one client with the line upper-cased.
inline asio::awaitable<void> serve(tcp::socket socket, std::chrono::milliseconds cost)
{
  auto& loop = asioloop::get_running_loop();
  std::string buffer;
  for (;;)
  {
    auto [ec, n] = co_await asio::async_read_until(socket,
        asio::dynamic_buffer(buffer), '\n', asio::as_tuple(asio::use_awaitable));
    if (ec)
      co_return; // the client left
    std::string line = buffer.substr(0, n);
    buffer.erase(0, n);
    std::string reply = co_await loop.run_in_executor(nullptr, shout, std::move(line), cost);
    co_await asio::async_write(socket, asio::buffer(reply), asio::use_awaitable);
  }
}

/// The server: an embedded loop on the host's io_context, a loopback
/// acceptor on an ephemeral port, and a task that accepts.
class server
{
public:
  server(asio::io_context& host, std::chrono::milliseconds cost)
    : acceptor_(host, tcp::endpoint(asio::ip::address_v4::loopback(), 0)),
      loop_(host.get_executor()), cost_(cost)
  {
    listener_ = loop_.create_task(listen(), "listener");
  }

  tcp::endpoint endpoint() const { return acceptor_.local_endpoint(); }

  /// Cancels the listener and the connections and waits for them, from any
  /// thread but the host's.
  void stop()
  {
    asioloop::run_coroutine_threadsafe(shutdown(), loop_).result(std::chrono::seconds(10));
  }

private:
  asio::awaitable<void> listen()
  {
    for (;;)
    {
      tcp::socket socket = co_await acceptor_.async_accept(asio::use_awaitable);
      std::erase_if(connections_, [](auto& t) { return t.done(); });
      connections_.push_back(asioloop::create_task(serve(std::move(socket), cost_)));
    }
  }

  asio::awaitable<void> shutdown()
  {
    listener_.cancel();
    for (auto& t : connections_)
      t.cancel();
    co_await asioloop::gather(asioloop::return_exceptions, listener_,
        asioloop::gather(asioloop::return_exceptions, connections_));
  }

  tcp::acceptor acceptor_;
  asioloop::event_loop loop_; // after the acceptor: closed before it goes
  std::chrono::milliseconds cost_;
  asioloop::task<void> listener_;
  std::vector<asioloop::task<void>> connections_;
};

} // namespace echo

#endif // ASIOLOOP_EXAMPLES_ECHO_SERVER_HPP
