// A producer and three workers sharing a bounded queue, run as one
// task_group: the producer waits for room, each worker for a job, and the
// group ends when all of them have.
//
// asyncio:
//   async def producer(q, n, workers):
//       for i in range(1, n + 1):
//           await q.put(i)                  # waits while the queue is full
//       for _ in range(workers):
//           await q.put(0)                  # one stop mark per worker
//
//   async def worker(q, name):
//       done = 0
//       while (job := await q.get()) != 0:
//           await asyncio.sleep(job / 100)  # the work
//           print(f'{name} did job {job}')
//           done += job
//       return done
//
//   q = asyncio.Queue(maxsize=2)
//   async with asyncio.TaskGroup() as tg:
//       tg.create_task(producer(q, 9, 3))
//       ws = [tg.create_task(worker(q, f'worker-{i}')) for i in (1, 2, 3)]
//   print('total:', sum(w.result() for w in ws))

#include <asioloop/asioloop.hpp>

#include <chrono>
#include <iostream>
#include <string>
#include <vector>

namespace asio = boost::asio;
using namespace std::chrono_literals;

asio::awaitable<void> producer(asioloop::queue<int>& q, int n, int workers)
{
  for (int i = 1; i <= n; ++i)
    co_await q.put(i);
  for (int w = 0; w < workers; ++w)
    co_await q.put(0);
}

asio::awaitable<int> worker(asioloop::queue<int>& q, std::string name)
{
  int done = 0;
  for (int job; (job = co_await q.get()) != 0;)
  {
    co_await asioloop::sleep(job * 10ms);
    std::cout << name << " did job " << job << '\n';
    done += job;
  }
  co_return done;
}

asio::awaitable<void> main_coroutine()
{
  asioloop::queue<int> q{2};
  asioloop::task_group tg;
  tg.create_task(producer(q, 9, 3));
  std::vector<asioloop::task<int>> workers;
  for (int i = 1; i <= 3; ++i)
    workers.push_back(tg.create_task(worker(q, "worker-" + std::to_string(i))));
  co_await tg.wait();
  int total = 0;
  for (auto& w : workers)
    total += w.result();
  std::cout << "total: " << total << '\n';
}

int main()
{
  asioloop::run(main_coroutine());
}
