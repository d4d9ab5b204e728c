#include <asioloop/asioloop.hpp>

#include <iostream>

int main()
{
  asioloop::event_loop loop;
  int ran = 0;
  loop.call_soon([&] { ++ran; loop.stop(); });
  loop.run_forever();
  std::cout << "asioloop " << ASIOLOOP_VERSION_STRING << ": " << ran << '\n';
  return ran == 1 ? 0 : 1;
}
