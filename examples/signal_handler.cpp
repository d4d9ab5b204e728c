// Signal handlers that run as loop work: the loop stops cleanly on a signal.
//
// asyncio:
//   loop.add_signal_handler(signal.SIGUSR1, on_signal, 'SIGUSR1')
//   loop.call_soon(os.kill, os.getpid(), signal.SIGUSR1)
//   loop.run_forever()
//   loop.remove_signal_handler(signal.SIGUSR1)

#include <asioloop/asioloop.hpp>

#include <csignal>
#include <iostream>
#include <string>

int main()
{
  asioloop::event_loop loop;

  loop.add_signal_handler(SIGUSR1, [&loop](const std::string& name) {
    std::cout << "Got " << name << ", stopping\n";
    loop.stop();
  }, std::string("SIGUSR1"));

  loop.call_soon([] {
    std::cout << "Sending SIGUSR1 to myself\n";
    std::raise(SIGUSR1);
  });
  loop.run_forever();

  std::cout << "Handler removed: " << std::boolalpha
            << loop.remove_signal_handler(SIGUSR1) << '\n';
}
