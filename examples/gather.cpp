// Two coroutines gathered: they run concurrently, so both results arrive
// after about 1 s, in the order given.
//
// asyncio:
//   async def a():
//       await asyncio.sleep(1)
//       return 'A'
//
//   async def b():
//       await asyncio.sleep(1)
//       return 'B'
//
//   start = time.perf_counter()
//   print(await asyncio.gather(a(), b()))        # ['A', 'B']
//   print(f'Cost: {time.perf_counter() - start:.2f}')
//   print(await asyncio.gather(*[a() for _ in range(3)]))

#include <asioloop/asioloop.hpp>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;

asio::awaitable<std::string> a()
{
  co_await asioloop::sleep(1s);
  co_return "A";
}

asio::awaitable<std::string> b()
{
  co_await asioloop::sleep(1s);
  co_return "B";
}

/// Prints a list of strings as Python does: ['A', 'B'].
void print(const std::vector<std::string>& items)
{
  std::cout << '[';
  for (std::size_t i = 0; i < items.size(); ++i)
    std::cout << (i ? ", '" : "'") << items[i] << '\'';
  std::cout << "]\n";
}

asio::awaitable<void> main_coroutine()
{
  const auto start = std::chrono::steady_clock::now();
  auto [ra, rb] = co_await asioloop::gather(a(), b());
  print({ra, rb});
  std::printf("Cost: %.2f\n",
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());

  // The range form: a vector of awaitables gives a vector of results.
  std::vector<asio::awaitable<std::string>> many;
  for (int i = 0; i < 3; ++i)
    many.push_back(a());
  print(co_await asioloop::gather(std::move(many)));
}

int main()
{
  asioloop::run(main_coroutine());
}
