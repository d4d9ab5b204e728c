//
// asioloop/loop_thread.hpp
//
// Distributed under the Boost Software License, Version 1.0.
//

#ifndef ASIOLOOP_LOOP_THREAD_HPP
#define ASIOLOOP_LOOP_THREAD_HPP

#include <asioloop/event_loop.hpp>

#include <atomic>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

namespace asioloop {

/// An event_loop running in a thread of its own.
/**
 * The constructor creates an owned event_loop and a thread that runs it;
 * when it returns, the loop is running. Other threads submit work with
 * `t.loop().call_soon_threadsafe(...)` and run_coroutine_threadsafe().
 *
 * Stopping — stop(), the destructor, or `loop.stop()` from loop work —
 * ends the run the way asioloop::run() ends: the tasks still pending are
 * cancelled and awaited, then the loop is closed and the thread ends.
 * The event_loop object itself lives as long as the loop_thread, so a
 * thread that still calls `call_soon_threadsafe` or
 * run_coroutine_threadsafe() on a stopped loop gets loop_closed_error,
 * never a dangling loop: keep the loop_thread (for example in a
 * `std::shared_ptr`) until every such thread is done with it.
 *
 * An exception that escapes the loop's run (one thrown by a handler posted
 * straight to its `io_context`; loop callbacks are reported by the loop
 * itself) goes to the loop's exception handler, and the loop runs on.
 *
 * @par Thread Safety
 * Distinct objects: Safe. Shared objects: Safe for loop(), running() and
 * stop(), except from the loop's own thread.
 *
 * @par asyncio equivalent
 * @code
 * loop = asyncio.new_event_loop()
 * Thread(target=loop.run_forever).start()
 * ...
 * loop.call_soon_threadsafe(loop.stop)
 * @endcode
 */
class loop_thread
{
public:
  /// Starts a new loop in a new thread; returns once it runs.
  /**
   * @throws std::system_error if the thread cannot be started.
   */
  loop_thread();

  /// As loop_thread(), calling `setup(loop)` on the new thread before the
  /// loop runs: the place for set_exception_handler() and set_debug(),
  /// which are not thread-safe once the loop runs.
  /**
   * An exception from @c setup is rethrown by the constructor.
   */
  explicit loop_thread(std::function<void(event_loop&)> setup);

  /// Stops the loop (cancelling and awaiting its pending tasks), closes it
  /// and joins the thread. See stop().
  ~loop_thread();

  loop_thread(const loop_thread&) = delete;
  loop_thread& operator=(const loop_thread&) = delete;

  /// The loop. Valid until the loop_thread is destroyed; closed once stopped.
  event_loop& loop() noexcept { return *loop_; }

  /// Returns true until the loop has stopped and the thread has ended its run.
  bool running() const noexcept;

  /// Stops the loop through call_soon_threadsafe(), waits until its pending
  /// tasks are cancelled and done and the loop is closed, and joins the
  /// thread. A second call does nothing.
  /**
   * @throws std::logic_error if called from the loop's own thread, where
   * it would wait for itself.
   */
  void stop();

  /// The thread's id.
  std::thread::id get_id() const noexcept { return id_; }

private:
  void start(std::function<void(event_loop&)> setup);
  void run() noexcept;

  std::unique_ptr<event_loop> loop_;
  std::thread thread_;
  std::thread::id id_;
  std::mutex stop_mutex_;
  std::atomic<bool> finished_{false};
  bool cleaning_up_ = false; // the loop's thread only
};

} // namespace asioloop

#endif // ASIOLOOP_LOOP_THREAD_HPP
