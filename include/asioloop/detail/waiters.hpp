//
// asioloop/detail/waiters.hpp
//
// Distributed under the Boost Software License, Version 1.0.
//
// What every synchronization primitive (queue, event, lock, semaphore,
// condition) is built on: a FIFO list of suspended waits, and the loop the
// primitive is bound to. asyncio keeps a deque of futures per primitive; here
// a waiter is one node holding the waiting handler, linked into the list
// while it waits.
//
// A waiter's life: waiting (in the list) -> woken (out of the list, its
// wake-up queued on the loop as one more ready callback) -> resumed. A
// cancellation that arrives while it waits takes it out of the list; one that
// arrives after it was woken but before it resumed still wins (the waiter
// sees cancelled_error, as a task cancelled in that window does in asyncio),
// and the primitive passes on what the wake-up gave it (an item, a permit,
// the lock, a notification): nothing is ever lost to a cancelled waiter.
//

#ifndef ASIOLOOP_DETAIL_WAITERS_HPP
#define ASIOLOOP_DETAIL_WAITERS_HPP

#include <asioloop/detail/completion.hpp>
#include <asioloop/detail/loop_core.hpp>
#include <asioloop/error.hpp>

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/deferred.hpp>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <type_traits>
#include <utility>

namespace asioloop::detail {

class waiter_list;

/// One suspended wait, holding its handler.
class waiter
{
public:
  enum class state : std::uint8_t
  {
    waiting,  // linked in its list
    woken,    // its wake-up is queued on the loop
    cancelled // its cancellation is queued, or it was cancelled after waking
  };

  waiter(const waiter&) = delete;
  waiter& operator=(const waiter&) = delete;
  virtual ~waiter() = default;

  /// Completes the handler with @c e (null: woken). Called once.
  virtual void complete(loop_core& core, std::exception_ptr e) = 0;

  // Managed by waiter_list.
  waiter* prev_ = nullptr;
  waiter* next_ = nullptr;
  waiter_list* list_ = nullptr;
  loop_core* core_ = nullptr;
  state state_ = state::waiting;

protected:
  waiter() = default;
};

template <typename Handler>
class waiter_impl final : public waiter
{
public:
  explicit waiter_impl(Handler h) : handler_(std::move(h)) {}

  void complete(loop_core& core, std::exception_ptr e) override
  {
    complete_from_loop(std::move(handler_), core, std::move(e));
  }

private:
  Handler handler_;
};

/// A primitive: the loop it is bound to, and what it does when a woken
/// waiter of one of its lists is cancelled before it resumed.
class sync_base : public loop_resource
{
public:
  sync_base(const sync_base&) = delete;
  sync_base& operator=(const sync_base&) = delete;

  /// Binds the primitive to the running loop, or checks that it is bound to
  /// it. Loop work only.
  /**
   * @throws no_running_loop_error outside loop work.
   * @throws std::runtime_error if the primitive belongs to another loop.
   */
  void bind()
  {
    if (running_core != core_ || !core_)
      bind_slow();
  }

  loop_core* core() const noexcept { return core_; }

  /// A waiter of @c list was woken, then cancelled before it resumed: pass on
  /// what the wake-up meant to give it.
  virtual void hand_on(waiter_list& list) noexcept = 0;

protected:
  explicit sync_base(const char* name) noexcept : name_(name) {}
  ~sync_base();

  /// The loop is closing: destroy every waiting waiter (and so the
  /// coroutines suspended in them). Implementations must not touch the
  /// primitive after destroying the first waiter: a coroutine frame that
  /// dies may hold the primitive itself. See waiter_list::detach_all().
  virtual void drop_waiters() noexcept = 0;

private:
  void drop() noexcept override;
  void bind_slow();

  loop_core* core_ = nullptr;
  const char* name_;
};

/// The waiters of one primitive's one kind of wait (a queue has two lists:
/// getters and putters), in FIFO order.
class waiter_list
{
public:
  explicit waiter_list(sync_base& owner) noexcept : owner_(&owner) {}
  waiter_list(const waiter_list&) = delete;
  waiter_list& operator=(const waiter_list&) = delete;
  ~waiter_list() { destroy_chain(detach_all()); }

  /// True if no waiter is waiting (woken ones may still be on their way).
  bool empty() const noexcept { return head_ == nullptr; }

  /// The number of waiters waiting.
  std::size_t size() const noexcept { return size_; }

  /// The number of waiters woken but not yet resumed.
  std::size_t in_flight() const noexcept { return in_flight_; }

  /// Wakes the first waiter; false if none was waiting.
  bool wake_one() noexcept
  {
    // Inline: every put and get calls it, and usually nobody waits.
    if (!head_)
      return false;
    wake_first();
    return true;
  }

  /// Wakes every waiter, in order.
  void wake_all() noexcept;

  /// Waits to be woken, as an Asio asynchronous operation: completes with a
  /// null exception when woken, with cancelled_error when cancelled through
  /// the handler's cancellation slot. Binds the primitive first (so that its
  /// errors are thrown where the coroutine awaits, not inside Asio).
  /**
   * @param at_front Wait ahead of the others: a waiter that was woken and
   * found nothing left (another took it) keeps its place in line.
   */
  auto wait(bool at_front = false)
  {
    owner_->bind();
    boost::asio::deferred_t token;
    return boost::asio::async_initiate<boost::asio::deferred_t,
        void(std::exception_ptr)>(initiate{this, at_front}, token);
  }

  /// Unlinks every waiting waiter and returns them as a chain, for
  /// destroy_chain(): a primitive that drops its waiters detaches all its
  /// lists first, because destroying one may destroy the primitive.
  waiter* detach_all() noexcept;

  /// Destroys a chain from detach_all() without completing its waiters.
  static void destroy_chain(waiter* chain) noexcept;

  /// Runs a queued wake-up or cancellation. (Internal.)
  void fire(waiter& w);

  /// Cancels @c w. (Internal: called by its cancellation slot handler.)
  void cancel(waiter& w) noexcept;

private:
  struct canceller
  {
    waiter_list* list;
    waiter* w;

    void operator()(boost::asio::cancellation_type_t type) const
    {
      using boost::asio::cancellation_type;
      if ((type & (cancellation_type::terminal | cancellation_type::partial
                      | cancellation_type::total))
          != cancellation_type::none)
        list->cancel(*w);
    }
  };

  struct initiate
  {
    waiter_list* list;
    bool at_front;

    template <typename Handler>
    void operator()(Handler&& handler) const
    {
      using handler_type = std::decay_t<Handler>;
      auto slot = boost::asio::get_associated_cancellation_slot(handler);
      auto* w = new waiter_impl<handler_type>(handler_type(std::forward<Handler>(handler)));
      list->link(w, at_front);
      if (slot.is_connected())
        slot.template emplace<canceller>(canceller{list, w});
    }
  };

  void link(waiter* w, bool at_front) noexcept;
  void wake_first() noexcept;
  void unlink(waiter& w) noexcept;
  void post(waiter* w) noexcept;

  sync_base* owner_;
  waiter* head_ = nullptr;
  waiter* tail_ = nullptr;
  std::size_t size_ = 0;
  std::size_t in_flight_ = 0;
};

} // namespace asioloop::detail

#endif // ASIOLOOP_DETAIL_WAITERS_HPP
