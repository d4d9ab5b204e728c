//
// asioloop/detail/loop_core.hpp
//
// Distributed under the Boost Software License, Version 1.0.
//
// The loop's ready queue, shared by the event_loop, its executors and the
// drain handler that runs the queue on the underlying Asio context.
//
// Loop work is one FIFO. From loop work, a callback is linked onto the ready
// list with no lock and no atomic; from any other thread it is pushed on the
// inbox, a lock-free stack that the next drain moves onto the ready list. One
// drain handler at a time is in flight on the Asio context: it runs the batch
// of callbacks that were ready when it started (asyncio's iteration), then
// posts itself again if more became ready. A drained batch costs one Asio
// handler, however many callbacks it holds.
//
// The core is reference counted because in embedded mode a drain may still be
// queued on the host's context when the event_loop is destroyed; such a drain
// finds the core closed and does nothing.
//

#ifndef ASIOLOOP_DETAIL_LOOP_CORE_HPP
#define ASIOLOOP_DETAIL_LOOP_CORE_HPP

#include <asioloop/detail/callback.hpp>

#include <boost/asio/any_io_executor.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <typeinfo>
#include <vector>

namespace boost::asio {
class io_context;
class execution_context;
} // namespace boost::asio

namespace asioloop {
class event_loop;
} // namespace asioloop

namespace asioloop::detail {

class loop_core;

/// Loop work held outside the loop's queues — a future's waiting coroutines
/// and done callbacks — which the loop drops when it closes, so that a
/// coroutine waiting on a future that will never complete (and holding that
/// future) is destroyed instead of leaking in a cycle.
class loop_resource
{
public:
  virtual void drop() noexcept = 0;

  bool tracked() const noexcept { return tracked_; }

protected:
  loop_resource() = default;
  ~loop_resource() = default;

private:
  friend class loop_core;
  loop_resource* prev_ = nullptr;
  loop_resource* next_ = nullptr;
  bool tracked_ = false;
};

/// A pending task, as the loop lists it (all_tasks(), and the report of
/// tasks destroyed pending when the loop closes).
class task_link
{
public:
  /// The task's repr, for reports.
  virtual std::string describe() const = 0;

  /// The loop closed with the task pending: a coroutine that never started
  /// is destroyed now, as the frames of the started ones are.
  virtual void abandon() noexcept = 0;

  bool listed() const noexcept { return linked_; }

  /// The loop the task belongs to.
  loop_core& task_core() const noexcept { return *task_core_; }

protected:
  task_link() = default;
  ~task_link() = default;

private:
  friend class loop_core;
  loop_core* task_core_ = nullptr;
  task_link* prev_ = nullptr;
  task_link* next_ = nullptr;
  bool linked_ = false;

public:
  // After the pointers: the flags and task_base's share one word.

  /// The coroutine has returned; only its completion, already queued, is
  /// left. A loop closed now does not report the task as pending: a result
  /// it handed on (run_coroutine_threadsafe's) may already be in use.
  bool returned_ = false;
};

class loop_core : public std::enable_shared_from_this<loop_core>
{
public:
  using clock = std::chrono::steady_clock;

  /// Owned mode: drains are posted to @c ctx; @c virtual_time makes the
  /// loop's clock move only when the loop is idle or advanced by hand.
  loop_core(event_loop& owner, boost::asio::io_context& ctx, bool virtual_time);

  /// Embedded mode: drains are posted to @c host.
  loop_core(event_loop& owner, boost::asio::any_io_executor host);

  loop_core(const loop_core&) = delete;
  loop_core& operator=(const loop_core&) = delete;
  ~loop_core();

  /// Queues `f(a...)` with @c refs references (the queue's and the
  /// caller's). Any thread; from loop work the node comes from the slab.
  template <typename F, typename... A>
  callback_node* make_node(std::uint32_t refs, F&& f, A&&... a)
  {
    return make_callback(running_core == this ? slab_ : nullptr, refs,
        std::forward<F>(f), std::forward<A>(a)...);
  }

  /// Gives the slab up (it frees itself with its last slot still out): the
  /// core of a destroyed embedded loop may be kept a while. Closed loops only.
  void release_slab() noexcept;

  /// The loop's slab when called from this loop's work, else null: memory
  /// for loop work's objects (future states, done callbacks).
  node_slab* local_slab() const noexcept
  {
    return running_core == this ? slab_ : nullptr;
  }

  template <typename F, typename... A>
  callback_node* post(std::uint32_t refs, F&& f, A&&... a)
  {
    if (running_core == this)
    {
      auto* n = make_callback(
          slab_, refs, std::forward<F>(f), std::forward<A>(a)...);
      push_local(n);
      return n;
    }
    auto* n = make_callback(
        nullptr, refs, std::forward<F>(f), std::forward<A>(a)...);
    push_remote(n);
    return n;
  }

  /// Queues @c n from the thread that runs the loop's work.
  void push_local(callback_node* n) noexcept
  {
    link_ready(n);
    if (!draining_)
      schedule_drain();
  }

  /// Queues @c n from any thread.
  void push_remote(callback_node* n) noexcept
  {
    // Counted until the wake-up below is over: the loop may run the node and
    // its owner destroy the io_context while this thread is still inside
    // Asio's post (see wait_for_pushes()).
    struct counted
    {
      std::atomic<int>& c;
      explicit counted(std::atomic<int>& n) noexcept : c(n) { c.fetch_add(1, std::memory_order_seq_cst); }
      ~counted() { c.fetch_sub(1, std::memory_order_release); }
    } in_flight(pushing_);
    // Once the node is published the loop may take it and relink it: read
    // only the local copy of the previous head afterwards.
    callback_node* head = inbox_.load(std::memory_order_relaxed);
    do
      n->next_ = head;
    while (!inbox_.compare_exchange_weak(head, n,
        std::memory_order_seq_cst, std::memory_order_relaxed));
    // A push that lands after close() has finished is dropped here: nothing
    // will take it, and a callable that completes a concurrent_future when
    // destroyed must not wait for the loop's destruction.
    if (sealed_.load(std::memory_order_seq_cst))
      return discard(inbox_.exchange(nullptr, std::memory_order_seq_cst));
    // Only the push that makes the inbox non-empty needs to wake the loop:
    // a drain is then either queued, or running and will look again.
    if (head == nullptr)
      schedule_drain();
  }

  /// Waits until no other thread is inside push_remote(). Called after
  /// close() (pushes then discard themselves without touching Asio) and
  /// before the owned io_context is destroyed.
  void wait_for_pushes() const noexcept;

  /// Adds @c n (one reference) to the timer heap, due at @c when. Any
  /// thread: outside loop work the insertion travels through the inbox.
  void add_timer(clock::time_point when, callback_node* n);

  /// The loop's clock: real, or virtual.
  clock::time_point now() const noexcept
  {
    return virtual_ ? virtual_now_ : clock::now();
  }

  bool is_virtual() const noexcept { return virtual_; }

  /// Moves a virtual clock forward. Loop work, or the owning thread.
  void advance(clock::duration d) noexcept;

  /// Virtual time: if nothing is ready and a live timer is queued, moves the
  /// clock to it and schedules a drain. Returns false if there is none.
  bool jump_to_next_timer() noexcept;

  /// True while a drain is queued or running.
  bool drain_pending() const noexcept
  {
    return scheduled_.load(std::memory_order_seq_cst);
  }

  /// True once a stop request has ended the run; cleared by the next run.
  bool stop_latched() const noexcept { return stop_latched_; }
  void clear_stop_latch() noexcept { stop_latched_ = false; }

  /// Debug mode: slow callbacks and loop-affine calls from foreign threads
  /// are reported through the exception handler.
  bool debug_ = false;

  /// Reports (as loop work) a loop-affine call made from outside loop work
  /// while the loop runs. Called only in debug mode.
  void report_foreign_call(const char* what, const std::type_info& cb) noexcept;

  bool closed() const noexcept { return closed_.load(std::memory_order_acquire); }
  bool embedded() const noexcept { return owned_ctx_ == nullptr; }

  /// Makes sure one drain is queued or running.
  void schedule_drain() noexcept;

  /// Asks the owned loop to stop after the current batch.
  void request_stop() noexcept;

  /// Runs one batch of ready callbacks. Called by the drain handler.
  void drain();

  /// Called by the timer waker when the earliest timer is due. Any thread.
  void on_timer_due() noexcept { schedule_drain(); }

  /// Marks the core closed and destroys every queued callback unrun.
  void close() noexcept;

  /// Registers @c r to be dropped at close. Loop work only.
  void track(loop_resource& r) noexcept
  {
    if (r.tracked_)
      return;
    r.tracked_ = true;
    r.prev_ = nullptr;
    r.next_ = resources_;
    if (resources_)
      resources_->prev_ = &r;
    resources_ = &r;
  }

  /// Lists a pending task. Loop work only.
  void add_task(task_link& t) noexcept
  {
    t.task_core_ = this;
    t.linked_ = true;
    t.prev_ = nullptr;
    t.next_ = tasks_;
    if (tasks_)
      tasks_->prev_ = &t;
    tasks_ = &t;
  }

  void remove_task(task_link& t) noexcept
  {
    if (!t.linked_)
      return;
    t.linked_ = false;
    if (t.prev_)
      t.prev_->next_ = t.next_;
    else
      tasks_ = t.next_;
    if (t.next_)
      t.next_->prev_ = t.prev_;
  }

  /// Calls @c f on each pending task, most recent first.
  template <typename F>
  void for_each_task(F f) const
  {
    for (task_link* t = tasks_; t; t = t->next_)
      f(*t);
  }

  /// The event_loop is gone (its core may live on in a host's queue).
  void detach_owner() noexcept { owner_ = nullptr; }

  void untrack(loop_resource& r) noexcept
  {
    if (!r.tracked_)
      return;
    r.tracked_ = false;
    if (r.prev_)
      r.prev_->next_ = r.next_;
    else
      resources_ = r.next_;
    if (r.next_)
      r.next_->prev_ = r.prev_;
  }

  boost::asio::execution_context& context() const noexcept { return *context_; }
  event_loop* owner() const noexcept { return owner_; }

private:
  void link_ready(callback_node* n) noexcept
  {
    n->next_ = nullptr;
    if (ready_tail_)
      ready_tail_->next_ = n;
    else
      ready_head_ = n;
    ready_tail_ = n;
  }

  void post_drain() noexcept;
  void take_inbox() noexcept;
  void discard(callback_node* list) noexcept;
  void report(callback_node& n) noexcept;
  void run_batch(callback_node* batch);
  void run_batch_debug(callback_node* batch);
  void insert_timer(clock::time_point when, callback_node* n);
  void collect_due_timers(clock::time_point now) noexcept;
  void sweep_cancelled_timers() noexcept;
  void drop_cancelled_front() noexcept;
  void discard_timers() noexcept;
  bool arm_timer() noexcept;

  struct timer_entry
  {
    clock::time_point when;
    std::uint64_t seq; // equal due times run in registration order
    callback_node* node;
  };
  struct timer_later
  {
    bool operator()(const timer_entry& a, const timer_entry& b) const noexcept
    {
      return a.when != b.when ? a.when > b.when : a.seq > b.seq;
    }
  };
  struct waker;

  event_loop* owner_;
  boost::asio::io_context* owned_ctx_ = nullptr;
  boost::asio::any_io_executor host_;
  boost::asio::execution_context* context_;
  node_slab* slab_;

  // Touched by loop work only.
  callback_node* ready_head_ = nullptr;
  callback_node* ready_tail_ = nullptr;
  bool draining_ = false;
  bool stopping_ = false;
  bool stop_latched_ = false;

  // The timers: one heap, and one steady_timer armed at its earliest entry.
  std::vector<timer_entry> timers_;
  std::uint64_t timer_seq_ = 0;
  std::size_t timer_sweep_at_ = 1024;
  std::unique_ptr<waker> waker_;
  loop_resource* resources_ = nullptr;
  task_link* tasks_ = nullptr;
  clock::time_point armed_at_{};
  bool virtual_ = false;
  clock::time_point virtual_now_{};

  // Touched by any thread.
  std::atomic<callback_node*> inbox_{nullptr};
  std::atomic<bool> scheduled_{false};
  std::atomic<bool> closed_{false};
  std::atomic<int> pushing_{0}; // threads inside push_remote()
  std::atomic<bool> sealed_{false}; // close() is over: pushes discard themselves
};

} // namespace asioloop::detail

#endif // ASIOLOOP_DETAIL_LOOP_CORE_HPP
