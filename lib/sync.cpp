//
// lib/sync.cpp
//
// Distributed under the Boost Software License, Version 1.0.
//

#include <asioloop/sync.hpp>

#include <boost/asio/this_coro.hpp>

#include <memory>
#include <stdexcept>
#include <string>

namespace asio = boost::asio;

namespace asioloop::detail {

// ---------------------------------------------------------------- sync_base

sync_base::~sync_base()
{
  if (tracked())
    core_->untrack(*this);
}

void sync_base::bind_slow()
{
  loop_core* running = running_core;
  if (!running || !running->owner())
    throw no_running_loop_error();
  if (core_ == running)
    return;
  if (core_)
    throw std::runtime_error(std::string(name_)
        + " is bound to a different event loop: a synchronization primitive "
          "belongs to the loop whose work first waited on it");
  if (running->closed())
    throw loop_closed_error(name_);
  core_ = running;
  // Listed in the loop until it closes, so that closing the loop destroys
  // the coroutines still waiting here, as it does those waiting on futures.
  running->track(*this);
}

void sync_base::drop() noexcept
{
  core_ = nullptr;
  drop_waiters(); // last: it may destroy *this
}

// ---------------------------------------------------------------- waiter_list

namespace {

// The queued wake-up (or cancellation) of one waiter. It owns the waiter: a
// loop closed before it runs destroys it, and the coroutine with it.
struct waiter_wakeup
{
  waiter_list* list;
  waiter* w;

  explicit waiter_wakeup(waiter_list* l, waiter* x) noexcept : list(l), w(x) {}
  waiter_wakeup(waiter_wakeup&& o) noexcept
    : list(o.list), w(std::exchange(o.w, nullptr))
  {
  }
  waiter_wakeup(const waiter_wakeup&) = delete;
  waiter_wakeup& operator=(const waiter_wakeup&) = delete;
  ~waiter_wakeup() { delete w; }

  void operator()()
  {
    std::unique_ptr<waiter> own(std::exchange(w, nullptr));
    list->fire(*own);
  }
};

} // namespace

void waiter_list::link(waiter* w, bool at_front) noexcept
{
  w->list_ = this;
  w->core_ = owner_->core();
  w->state_ = waiter::state::waiting;
  if (at_front)
  {
    w->prev_ = nullptr;
    w->next_ = head_;
    if (head_)
      head_->prev_ = w;
    else
      tail_ = w;
    head_ = w;
  }
  else
  {
    w->next_ = nullptr;
    w->prev_ = tail_;
    if (tail_)
      tail_->next_ = w;
    else
      head_ = w;
    tail_ = w;
  }
  ++size_;
}

void waiter_list::unlink(waiter& w) noexcept
{
  if (w.prev_)
    w.prev_->next_ = w.next_;
  else
    head_ = w.next_;
  if (w.next_)
    w.next_->prev_ = w.prev_;
  else
    tail_ = w.prev_;
  w.prev_ = w.next_ = nullptr;
  --size_;
}

void waiter_list::post(waiter* w) noexcept
{
  loop_core* core = w->core_;
  if (core->closed())
  {
    // Only while the loop closes (a dying coroutine releasing a lock, say):
    // nothing runs any more, so the waiter dies unrun.
    if (w->state_ == waiter::state::woken)
      --in_flight_;
    delete w;
    return;
  }
  core->post(1, waiter_wakeup(this, w));
}

void waiter_list::wake_first() noexcept
{
  waiter* w = head_;
  unlink(*w);
  w->state_ = waiter::state::woken;
  ++in_flight_;
  post(w);
}

void waiter_list::wake_all() noexcept
{
  while (wake_one())
  {
  }
}

void waiter_list::fire(waiter& w)
{
  loop_core& core = *w.core_;
  if (w.state_ == waiter::state::woken)
  {
    --in_flight_;
    w.complete(core, nullptr);
  }
  else
    w.complete(core, std::make_exception_ptr(cancelled_error()));
}

void waiter_list::cancel(waiter& w) noexcept
{
  switch (w.state_)
  {
  case waiter::state::waiting:
    // A loop that is closing drops the waiters still listed: leave this one
    // to it (deleting it here would destroy the handler running this call).
    if (w.core_->closed())
      return;
    unlink(w);
    w.state_ = waiter::state::cancelled;
    post(&w);
    break;
  case waiter::state::woken:
    // The wake-up is queued and will complete the waiter with the
    // cancellation; what it was woken for goes to the next in line.
    w.state_ = waiter::state::cancelled;
    --in_flight_;
    owner_->hand_on(*this);
    break;
  case waiter::state::cancelled:
    break;
  }
}

waiter* waiter_list::detach_all() noexcept
{
  waiter* chain = std::exchange(head_, nullptr);
  tail_ = nullptr;
  size_ = 0;
  return chain;
}

void waiter_list::destroy_chain(waiter* chain) noexcept
{
  while (chain)
  {
    waiter* w = chain;
    chain = w->next_;
    delete w;
  }
}

} // namespace asioloop::detail

namespace asioloop {

// ---------------------------------------------------------------- event

void event::set()
{
  if (value_)
    return;
  value_ = true;
  waiters_.wake_all();
}

asio::awaitable<void> event::wait()
{
  if (value_)
    co_return;
  co_await waiters_.wait();
}

void event::drop_waiters() noexcept
{
  detail::waiter_list::destroy_chain(waiters_.detach_all());
}

// ---------------------------------------------------------------- lock

asio::awaitable<void> lock::acquire()
{
  if (!locked_ && waiters_.empty())
  {
    locked_ = true;
    co_return;
  }
  // Woken means the lock was handed to this task by release(): locked_
  // stayed true all along, so no later arrival could take it in between.
  co_await waiters_.wait();
}

asio::awaitable<lock_guard<lock>> lock::scoped()
{
  co_await acquire();
  co_return lock_guard<lock>(*this, std::adopt_lock);
}

void lock::release()
{
  if (!locked_)
    throw invalid_state_error(
        "release() of a lock that is not acquired: acquire() it first");
  hand_on(waiters_);
}

void lock::hand_on(detail::waiter_list&) noexcept
{
  if (!waiters_.wake_one())
    locked_ = false;
}

void lock::drop_waiters() noexcept
{
  detail::waiter_list::destroy_chain(waiters_.detach_all());
}

// ---------------------------------------------------------------- semaphore

semaphore::semaphore(std::ptrdiff_t value, bool bounded)
  : sync_base(bounded ? "asioloop::bounded_semaphore" : "asioloop::semaphore"),
    value_(value), bound_(bounded ? value : 0)
{
  if (value < 0)
    throw std::invalid_argument("a semaphore's initial value must be >= 0, not "
        + std::to_string(value));
}

asio::awaitable<void> semaphore::acquire()
{
  if (value_ > 0 && waiters_.empty())
  {
    --value_;
    co_return;
  }
  // Woken means release() handed its permit to this task.
  co_await waiters_.wait();
}

asio::awaitable<lock_guard<semaphore>> semaphore::scoped()
{
  co_await acquire();
  co_return lock_guard<semaphore>(*this, std::adopt_lock);
}

void semaphore::release()
{
  if (bound_ > 0 && value_ >= bound_)
    throw invalid_state_error("bounded_semaphore released too many times: "
                              "release() only what acquire() took");
  hand_on(waiters_);
}

void semaphore::hand_on(detail::waiter_list&) noexcept
{
  if (!waiters_.wake_one())
    ++value_;
}

void semaphore::drop_waiters() noexcept
{
  detail::waiter_list::destroy_chain(waiters_.detach_all());
}

asio::awaitable<lock_guard<bounded_semaphore>> bounded_semaphore::scoped()
{
  co_await acquire();
  co_return lock_guard<bounded_semaphore>(*this, std::adopt_lock);
}

// ---------------------------------------------------------------- condition

asio::awaitable<lock_guard<condition>> condition::scoped()
{
  co_await lock_->acquire();
  co_return lock_guard<condition>(*this, std::adopt_lock);
}

void condition::check_locked(const char* what) const
{
  if (!lock_->locked())
    throw invalid_state_error(std::string(what)
        + "() on a condition whose lock is not acquired: acquire() it first "
          "(co_await cond.scoped())");
}

asio::awaitable<void> condition::wait()
{
  check_locked("wait");
  bind(); // errors before the lock is released, not after
  lock_->release();

  std::exception_ptr error;
  bool notified = false;
  try
  {
    co_await waiters_.wait();
    notified = true;
  }
  catch (...)
  {
    error = std::current_exception();
  }

  // The lock is acquired again even if the task is cancelled, as asyncio
  // does: the caller's guard will release it. Asio would throw at each
  // co_await of a cancelled coroutine; that is turned off meanwhile, and a
  // new cancellation during the acquire is kept and raised afterwards.
  const bool throws = co_await asio::this_coro::throw_if_cancelled();
  co_await asio::this_coro::throw_if_cancelled(false);
  for (;;)
  {
    try
    {
      co_await lock_->acquire();
      break;
    }
    catch (...)
    {
      error = std::current_exception();
    }
  }
  co_await asio::this_coro::throw_if_cancelled(throws);

  if (error)
  {
    // Notified, but leaving with an error: the notification goes to another.
    if (notified)
      waiters_.wake_one();
    std::rethrow_exception(error);
  }
}

void condition::notify(std::size_t n)
{
  check_locked("notify");
  for (std::size_t i = 0; i < n && waiters_.wake_one(); ++i)
  {
  }
}

void condition::notify_all()
{
  check_locked("notify_all");
  waiters_.wake_all();
}

void condition::hand_on(detail::waiter_list&) noexcept
{
  waiters_.wake_one();
}

void condition::drop_waiters() noexcept
{
  detail::waiter_list::destroy_chain(waiters_.detach_all());
}

} // namespace asioloop
