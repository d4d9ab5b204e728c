//
// asioloop/sync.hpp
//
// Distributed under the Boost Software License, Version 1.0.
//

#ifndef ASIOLOOP_SYNC_HPP
#define ASIOLOOP_SYNC_HPP

#include <asioloop/detail/waiters.hpp>
#include <asioloop/error.hpp>
#include <asioloop/event_loop.hpp>

#include <boost/asio/awaitable.hpp>

#include <cstddef>
#include <mutex>
#include <type_traits>
#include <utility>

namespace asioloop {

/// Holds a lock, semaphore permit or condition's lock, and releases it when
/// destroyed: asyncio's `async with lock:`.
/**
 * Returned by the `scoped()` operation of lock, semaphore, bounded_semaphore
 * and condition. Movable, not copyable.
 *
 * @par Example
 * @code
 * {
 *   auto held = co_await l.scoped();
 *   // ... the lock is held ...
 * } // released here, also when an exception leaves the block
 * @endcode
 */
template <typename Lockable>
class [[nodiscard]] lock_guard
{
public:
  /// A guard that holds nothing.
  lock_guard() noexcept = default;

  /// Takes over @c l, which the caller has acquired.
  lock_guard(Lockable& l, std::adopt_lock_t) noexcept : l_(&l) {}

  lock_guard(lock_guard&& other) noexcept : l_(std::exchange(other.l_, nullptr)) {}

  lock_guard& operator=(lock_guard&& other) noexcept
  {
    if (this != &other)
    {
      reset();
      l_ = std::exchange(other.l_, nullptr);
    }
    return *this;
  }

  ~lock_guard() { reset(); }

  /// Releases what the guard holds, before the guard's end.
  /**
   * @throws invalid_state_error if the guard holds nothing.
   */
  void unlock()
  {
    if (!l_)
      throw invalid_state_error(
          "unlock() of a lock_guard that holds nothing (already unlocked, or moved from)");
    std::exchange(l_, nullptr)->release();
  }

  /// Returns true if the guard holds its lock.
  bool owns_lock() const noexcept { return l_ != nullptr; }

  explicit operator bool() const noexcept { return l_ != nullptr; }

private:
  void reset() noexcept
  {
    if (l_)
      std::exchange(l_, nullptr)->release();
  }

  Lockable* l_ = nullptr;
};

/// A flag that tasks can wait for: asyncio's Event.
/**
 * set() wakes every waiting task, in the order they began to wait; wait()
 * on a set event returns without suspending.
 *
 * Like every asioloop synchronization primitive, an event belongs to one
 * loop: the one whose work first waits on it (asyncio binds a primitive to
 * the running loop in the same way). It is used from that loop's work only,
 * and must outlive the tasks that wait on it. When the loop closes, the
 * tasks still waiting are destroyed with it.
 *
 * @par Thread Safety
 * Distinct objects: Safe. Shared objects: Unsafe (loop work only).
 *
 * @par asyncio equivalent
 * `asyncio.Event`
 */
class event final : private detail::sync_base
{
public:
  /// Creates an event that is not set.
  event() noexcept : sync_base("asioloop::event") {}

  /// Sets the flag and wakes every waiting task.
  void set();

  /// Clears the flag: later wait()s suspend until set() is called again.
  void clear() noexcept { value_ = false; }

  /// Returns true if the flag is set.
  bool is_set() const noexcept { return value_; }

  /// Waits until the flag is set; returns at once if it is.
  /**
   * @throws cancelled_error if the waiting task is cancelled.
   * @throws no_running_loop_error outside loop work.
   *
   * @par asyncio equivalent
   * `await event.wait()`
   */
  boost::asio::awaitable<void> wait();

private:
  void hand_on(detail::waiter_list&) noexcept override {}
  void drop_waiters() noexcept override;

  detail::waiter_list waiters_{*this};
  bool value_ = false;
};

/// A mutual-exclusion lock for tasks: asyncio's Lock.
/**
 * Tasks acquire it in the order they asked (FIFO): release() hands the lock
 * straight to the first waiting task, so a task that arrives later cannot
 * take it first. A waiting task that is cancelled never takes the lock; one
 * cancelled after the lock was handed to it, but before it resumed, passes
 * the lock on.
 *
 * The lock is not reentrant, and not owned by a task: any loop work may
 * release it, as in asyncio. It belongs to the loop that first waits on it
 * (see event).
 *
 * @par Thread Safety
 * Distinct objects: Safe. Shared objects: Unsafe (loop work only).
 *
 * @par asyncio equivalent
 * `asyncio.Lock`
 *
 * @par Example
 * @code
 * asioloop::lock l;
 * auto held = co_await l.scoped(); // async with l:
 * @endcode
 */
class lock final : private detail::sync_base
{
public:
  /// Creates an unlocked lock.
  lock() noexcept : sync_base("asioloop::lock") {}

  /// Acquires the lock, waiting for it if it is held.
  /**
   * Returns without suspending if the lock is free.
   *
   * @throws cancelled_error if the waiting task is cancelled; the lock is
   * then not acquired.
   *
   * @par asyncio equivalent
   * `await lock.acquire()`
   */
  boost::asio::awaitable<void> acquire();

  /// Acquires the lock and returns a guard that releases it.
  /**
   * @par asyncio equivalent
   * `async with lock:`
   */
  boost::asio::awaitable<lock_guard<lock>> scoped();

  /// Releases the lock, handing it to the first waiting task if there is one.
  /**
   * @throws invalid_state_error if the lock is not held.
   *
   * @par asyncio equivalent
   * `lock.release()`
   */
  void release();

  /// Returns true if the lock is held (or handed to a task about to resume).
  bool locked() const noexcept { return locked_; }

private:
  void hand_on(detail::waiter_list&) noexcept override;
  void drop_waiters() noexcept override;

  detail::waiter_list waiters_{*this};
  bool locked_ = false;
};

/// A counter of permits for tasks: asyncio's Semaphore.
/**
 * acquire() takes a permit, waiting while there is none; release() gives one
 * back, straight to the first waiting task if there is one (FIFO). A
 * waiting task that is cancelled never takes a permit; one cancelled after a
 * permit was handed to it, but before it resumed, gives the permit back. It
 * belongs to the loop that first waits on it (see event).
 *
 * @par Thread Safety
 * Distinct objects: Safe. Shared objects: Unsafe (loop work only).
 *
 * @par asyncio equivalent
 * `asyncio.Semaphore`
 */
class semaphore : private detail::sync_base
{
public:
  /// Creates a semaphore with @c value permits.
  /**
   * @throws std::invalid_argument if @c value is negative.
   */
  explicit semaphore(std::ptrdiff_t value = 1) : semaphore(value, false) {}

  /// Takes a permit, waiting for one if there is none.
  /**
   * Returns without suspending if a permit is free and no task waits.
   *
   * @throws cancelled_error if the waiting task is cancelled; no permit is
   * then taken.
   *
   * @par asyncio equivalent
   * `await sem.acquire()`
   */
  boost::asio::awaitable<void> acquire();

  /// Takes a permit and returns a guard that gives it back.
  /**
   * @par asyncio equivalent
   * `async with sem:`
   */
  boost::asio::awaitable<lock_guard<semaphore>> scoped();

  /// Gives a permit back, to the first waiting task if there is one.
  /**
   * @throws invalid_state_error for a bounded_semaphore that would go
   * above its initial value.
   *
   * @par asyncio equivalent
   * `sem.release()`
   */
  void release();

  /// Returns true if acquire() would wait: no permit is free.
  bool locked() const noexcept { return value_ == 0; }

protected:
  semaphore(std::ptrdiff_t value, bool bounded);

private:
  void hand_on(detail::waiter_list&) noexcept override;
  void drop_waiters() noexcept override;

  detail::waiter_list waiters_{*this};
  std::ptrdiff_t value_;
  std::ptrdiff_t bound_; // 0: unbounded
};

/// A semaphore that refuses to be released above its initial value:
/// asyncio's BoundedSemaphore.
/**
 * @par asyncio equivalent
 * `asyncio.BoundedSemaphore`
 */
class bounded_semaphore final : public semaphore
{
public:
  /// Creates a semaphore with @c value permits, at most.
  /**
   * @throws std::invalid_argument if @c value is negative.
   */
  explicit bounded_semaphore(std::ptrdiff_t value = 1) : semaphore(value, true) {}

  /// Takes a permit and returns a guard that gives it back.
  boost::asio::awaitable<lock_guard<bounded_semaphore>> scoped();
};

/// A condition variable for tasks: asyncio's Condition.
/**
 * A task holding the condition's lock calls wait(), which releases the
 * lock, waits for notify() or notify_all(), then acquires the lock again
 * before returning — also when the task is cancelled while waiting, as in
 * asyncio: the cancellation is raised once the lock is held again, so the
 * caller's guard releases it. notify() wakes waiting tasks in the order they
 * began to wait; a task notified then cancelled before it resumed passes the
 * notification on.
 *
 * The lock is the condition's own, or one given to the constructor and
 * shared with other conditions. It belongs to the loop that first waits on
 * it (see event).
 *
 * @par Thread Safety
 * Distinct objects: Safe. Shared objects: Unsafe (loop work only).
 *
 * @par asyncio equivalent
 * `asyncio.Condition`
 *
 * @par Example
 * @code
 * auto held = co_await cond.scoped();           // async with cond:
 * co_await cond.wait_for([&] { return ready; }); //   await cond.wait_for(...)
 * @endcode
 */
class condition final : private detail::sync_base
{
public:
  /// Creates a condition with a lock of its own.
  condition() noexcept : sync_base("asioloop::condition"), lock_(&own_) {}

  /// Creates a condition on @c l, which must outlive it.
  explicit condition(asioloop::lock& l) noexcept
    : sync_base("asioloop::condition"), lock_(&l)
  {
  }

  /// Acquires the underlying lock.
  boost::asio::awaitable<void> acquire() { return lock_->acquire(); }

  /// Acquires the underlying lock and returns a guard that releases it.
  boost::asio::awaitable<lock_guard<condition>> scoped();

  /// Releases the underlying lock.
  /**
   * @throws invalid_state_error if it is not held.
   */
  void release() { lock_->release(); }

  /// Returns true if the underlying lock is held.
  bool locked() const noexcept { return lock_->locked(); }

  /// Releases the lock, waits to be notified, and acquires the lock again.
  /**
   * @throws invalid_state_error if the lock is not held.
   * @throws cancelled_error if the task is cancelled while waiting (raised
   * once the lock is held again).
   *
   * @par asyncio equivalent
   * `await cond.wait()`
   */
  boost::asio::awaitable<void> wait();

  /// Waits until @c pred() is true, and returns its last value.
  /**
   * @c pred is called with the lock held: first at once, then after each
   * wake-up.
   *
   * @par asyncio equivalent
   * `await cond.wait_for(predicate)`
   */
  template <typename Predicate>
  boost::asio::awaitable<std::decay_t<std::invoke_result_t<Predicate&>>> wait_for(
      Predicate pred)
  {
    auto result = pred();
    while (!result)
    {
      co_await wait();
      result = pred();
    }
    co_return result;
  }

  /// Wakes up to @c n waiting tasks, first come first woken.
  /**
   * @throws invalid_state_error if the lock is not held.
   *
   * @par asyncio equivalent
   * `cond.notify(n)`
   */
  void notify(std::size_t n = 1);

  /// Wakes every waiting task.
  /**
   * @throws invalid_state_error if the lock is not held.
   *
   * @par asyncio equivalent
   * `cond.notify_all()`
   */
  void notify_all();

private:
  void hand_on(detail::waiter_list&) noexcept override;
  void drop_waiters() noexcept override;
  void check_locked(const char* what) const;

  asioloop::lock own_;
  asioloop::lock* lock_;
  detail::waiter_list waiters_{*this};
};

} // namespace asioloop

#endif // ASIOLOOP_SYNC_HPP
