//
// test/support/loop_fixture.hpp
//
// Helpers shared by the tests: step a loop until a condition holds, with a
// deadline, instead of sleeping.
//

#ifndef ASIOLOOP_TEST_SUPPORT_LOOP_FIXTURE_HPP
#define ASIOLOOP_TEST_SUPPORT_LOOP_FIXTURE_HPP

#include <asioloop/event_loop.hpp>
#include <asioloop/sleep.hpp>

#include <boost/asio/awaitable.hpp>

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace asioloop::test {

/// Records the order in which callbacks run.
struct journal
{
  std::vector<std::string> lines;
  void operator()(std::string s) { lines.push_back(std::move(s)); }
};

using strings = std::vector<std::string>;

/// What `std::cout << x` prints: the repr of futures and tasks.
template <typename T>
std::string repr(const T& x)
{
  std::ostringstream os;
  os << x;
  return os.str();
}

/// The loop's time since @c t0, in whole milliseconds (virtual-time tests).
inline std::chrono::milliseconds elapsed(event_loop& loop, clock::time_point t0)
{
  return std::chrono::duration_cast<std::chrono::milliseconds>(loop.time() - t0);
}

/// Lets the loop run @c n iterations.
inline boost::asio::awaitable<void> ticks(int n)
{
  for (int i = 0; i < n; ++i)
    co_await asioloop::sleep(std::chrono::seconds(0));
}

/// Runs an owned loop until @c done() holds, failing the test after
/// @c limit. Returns whether @c done() held.
inline bool run_until(event_loop& loop, std::function<bool()> done,
    std::chrono::steady_clock::duration limit = std::chrono::seconds(20))
{
  const auto deadline = std::chrono::steady_clock::now() + limit;
  struct poller
  {
    event_loop* loop;
    std::function<bool()>* done;
    std::chrono::steady_clock::time_point deadline;
    void operator()() const
    {
      // A timer, not call_soon: a loop that always has work ready is never
      // idle, and a virtual clock moves only when the loop is idle.
      if ((*done)() || std::chrono::steady_clock::now() > deadline)
        loop->stop();
      else
        loop->call_later(std::chrono::milliseconds(1), *this);
    }
  };
  loop.call_soon(poller{&loop, &done, deadline});
  loop.run_forever();
  const bool ok = done();
  BOOST_CHECK_MESSAGE(ok, "the loop did not reach the expected state in time");
  return ok;
}

} // namespace asioloop::test

#endif // ASIOLOOP_TEST_SUPPORT_LOOP_FIXTURE_HPP
