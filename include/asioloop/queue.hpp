//
// asioloop/queue.hpp
//
// Distributed under the Boost Software License, Version 1.0.
//

#ifndef ASIOLOOP_QUEUE_HPP
#define ASIOLOOP_QUEUE_HPP

#include <asioloop/detail/waiters.hpp>
#include <asioloop/error.hpp>
#include <asioloop/sync.hpp>

#include <boost/asio/awaitable.hpp>

#include <cstddef>
#include <deque>
#include <type_traits>
#include <utility>

namespace asioloop {

/// A FIFO queue between tasks: asyncio's Queue.
/**
 * Unbounded when @c maxsize is 0; otherwise put() waits while the queue
 * holds @c maxsize items. `co_await put(v)` on a queue with room and
 * `co_await get()` on a queue with items return without suspending, as in
 * asyncio.
 *
 * Waiting tasks are served in the order they began to wait: each put wakes
 * the first waiting getter, each get the first waiting putter, and a task
 * that arrives while a woken one has not yet resumed waits behind it rather
 * than taking its item (or its room). A waiting task that is cancelled never
 * takes an item, nor puts its own; one cancelled after it was woken, but
 * before it resumed, passes the wake-up on, so no item and no room is lost.
 *
 * The queue belongs to the loop whose work first waits on it (asyncio binds
 * its queues to the running loop in the same way), is used from that loop's
 * work only, and must outlive the tasks that wait on it. When the loop
 * closes, the tasks still waiting are destroyed with it. put_nowait(),
 * get_nowait() and the observers need no running loop.
 *
 * @tparam T The item type: move-constructible (copyable is not needed).
 *
 * @par Thread Safety
 * Distinct objects: Safe. Shared objects: Unsafe (loop work only). From
 * another thread, use `loop.call_soon_threadsafe([&] { q.put_nowait(v); })`.
 *
 * @par asyncio equivalent
 * `asyncio.Queue(maxsize)`
 *
 * @par Example
 * @code
 * asioloop::queue<int> q{10};
 * co_await q.put(42);        // in the producer
 * int v = co_await q.get();  // in the consumer
 * q.task_done();
 * @endcode
 */
template <typename T>
class queue final : private detail::sync_base
{
  static_assert(std::is_move_constructible_v<T>,
      "asioloop::queue<T> needs a move-constructible T");

public:
  using value_type = T;

  /// Creates a queue holding at most @c maxsize items; 0 means no limit.
  explicit queue(std::size_t maxsize = 0)
    : sync_base("asioloop::queue"), maxsize_(maxsize)
  {
    finished_.set();
  }

  /// The number of items in the queue.
  std::size_t qsize() const noexcept { return items_.size(); }

  /// The largest number of items the queue holds; 0 means no limit.
  std::size_t maxsize() const noexcept { return maxsize_; }

  /// Returns true if the queue holds no item.
  bool empty() const noexcept { return items_.empty(); }

  /// Returns true if the queue holds maxsize() items (never when unbounded).
  bool full() const noexcept { return maxsize_ > 0 && items_.size() >= maxsize_; }

  /// Puts @c item at the end of the queue, waiting for room if it is full.
  /**
   * @throws cancelled_error if the waiting task is cancelled; the item is
   * then not put.
   * @throws no_running_loop_error if it must wait outside loop work.
   *
   * @par asyncio equivalent
   * `await queue.put(item)`
   */
  boost::asio::awaitable<void> put(T item)
  {
    for (bool retry = false; !has_room(); retry = true)
      co_await putters_.wait(retry);
    put_nowait(std::move(item));
  }

  /// Puts @c item at the end of the queue, without waiting.
  /**
   * @throws queue_full_error if the queue is full.
   *
   * @par asyncio equivalent
   * `queue.put_nowait(item)`
   */
  void put_nowait(T item)
  {
    if (full())
      throw queue_full_error();
    items_.push_back(std::move(item));
    if (unfinished_++ == 0)
      finished_.clear();
    getters_.wake_one();
  }

  /// Takes the first item, waiting for one if the queue is empty.
  /**
   * @throws cancelled_error if the waiting task is cancelled; no item is
   * then taken.
   * @throws no_running_loop_error if it must wait outside loop work.
   *
   * @par asyncio equivalent
   * `await queue.get()`
   */
  boost::asio::awaitable<T> get()
  {
    for (bool retry = false; !has_item(); retry = true)
      co_await getters_.wait(retry);
    co_return get_nowait();
  }

  /// Takes the first item, without waiting.
  /**
   * @throws queue_empty_error if the queue is empty.
   *
   * @par asyncio equivalent
   * `queue.get_nowait()`
   */
  T get_nowait()
  {
    if (items_.empty())
      throw queue_empty_error();
    T item = std::move(items_.front());
    items_.pop_front();
    putters_.wake_one();
    return item;
  }

  /// Tells the queue that an item taken by get() has been processed.
  /**
   * join() returns once task_done() has been called for every item put.
   *
   * @throws invalid_state_error if called more times than items were put.
   *
   * @par asyncio equivalent
   * `queue.task_done()`
   */
  void task_done()
  {
    if (unfinished_ == 0)
      throw invalid_state_error("task_done() called more times than items were "
                                "put: call it once per item taken from the queue");
    if (--unfinished_ == 0)
      finished_.set();
  }

  /// Waits until every item put has been taken and marked task_done().
  /**
   * Returns at once if there is no unfinished item.
   *
   * @par asyncio equivalent
   * `await queue.join()`
   */
  boost::asio::awaitable<void> join()
  {
    if (unfinished_ > 0)
      co_await finished_.wait();
  }

private:
  // An item that no woken getter, about to resume, will take: a getter that
  // arrives meanwhile waits behind the woken ones instead of barging.
  bool has_item() const noexcept { return items_.size() > getters_.in_flight(); }

  // Room that no woken putter, about to resume, will fill.
  bool has_room() const noexcept
  {
    return maxsize_ == 0 || items_.size() + putters_.in_flight() < maxsize_;
  }

  void hand_on(detail::waiter_list& list) noexcept override
  {
    if (&list == &getters_ ? has_item() : has_room())
      list.wake_one();
  }

  void drop_waiters() noexcept override
  {
    // Both lists first: destroying a waiter may destroy the queue.
    detail::waiter* getters = getters_.detach_all();
    detail::waiter* putters = putters_.detach_all();
    detail::waiter_list::destroy_chain(getters);
    detail::waiter_list::destroy_chain(putters);
  }

  std::deque<T> items_;
  std::size_t maxsize_;
  std::size_t unfinished_ = 0;
  detail::waiter_list getters_{*this};
  detail::waiter_list putters_{*this};
  event finished_;
};

} // namespace asioloop

#endif // ASIOLOOP_QUEUE_HPP
