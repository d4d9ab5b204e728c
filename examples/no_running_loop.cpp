// The two errors of the walkthrough's item 2: asking for the running loop
// where none runs, and running a loop inside another one on the same thread.
//
// asyncio:
//   asyncio.get_running_loop()        # RuntimeError: no running event loop
//   async def main():
//       other = asyncio.new_event_loop()
//       other.run_until_complete(a())  # RuntimeError: Cannot run the event
//                                      # loop while another loop is running

#include <asioloop/asioloop.hpp>

#include <iostream>
#include <stdexcept>

namespace asio = boost::asio;

asio::awaitable<int> a()
{
  co_return 1;
}

asio::awaitable<void> main_coroutine()
{
  asioloop::event_loop other;
  try
  {
    other.run_until_complete(a());
  }
  catch (const std::runtime_error& e)
  {
    std::cout << "RuntimeError: " << e.what() << '\n';
  }
  co_return;
}

int main()
{
  try
  {
    asioloop::get_running_loop();
  }
  catch (const asioloop::no_running_loop_error& e)
  {
    std::cout << "RuntimeError: " << e.what() << '\n';
  }

  asioloop::event_loop loop;
  loop.run_until_complete(main_coroutine());
}
