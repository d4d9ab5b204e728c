//
// lib/thread_pool.cpp
//
// Distributed under the Boost Software License, Version 1.0.
//

#include <asioloop/thread_pool.hpp>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

namespace asioloop {

namespace detail {

// Each worker thread holds the core: a pool destroyed by one of its own
// jobs (or a done callback run on a worker) detaches that thread, which
// must still find the core when its job returns.
class thread_pool_core : public std::enable_shared_from_this<thread_pool_core>
{
public:
  explicit thread_pool_core(std::size_t max) : max_(max) {}

  ~thread_pool_core()
  {
    // Nothing is left normally (workers drain the queue before they end);
    // a job a worker could not be started for is.
    while (head_)
    {
      std::unique_ptr<pool_job> j(head_);
      head_ = head_->next_;
      j->cancel();
    }
  }

  std::size_t max() const noexcept { return max_; }

  void push(std::unique_ptr<pool_job> job)
  {
    std::unique_lock lk(m_);
    if (shutdown_)
      throw broken_executor_error(
          "submit() on a thread_pool_executor that was shut down");
    pool_job* j = job.release();
    if (tail_)
      tail_->next_ = j;
    else
      head_ = j;
    tail_ = j;
    ++queued_;
    if (busy_ > 0 || woken_ > 0)
    {
      // A thread running a job, or woken for one, comes back to the queue
      // when it is done: more threads for a burst of short jobs would only
      // be in each other's way, and in the submitter's on few cores. The
      // watcher makes sure that a job does not wait long for threads that
      // are slow to come back, or never do (a job that waits for the next).
      if (watcher_)
      {
        // A watcher with nothing to watch waits without a timeout.
        if (parked_ && queued_ == 1)
        {
          lk.unlock();
          watch_cv_.notify_one();
        }
        return;
      }
      if (want_watcher())
      {
        lk.unlock();
        cv_.notify_one();
        return;
      }
    }
    else if (watcher_ && !watcher_wanted_)
    {
      // Nobody is coming back to the queue: the watcher takes the job.
      take_now_ = true;
      lk.unlock();
      watch_cv_.notify_one();
      return;
    }
    else if (sleepers_ > wakes_pending())
    {
      ++woken_;
      lk.unlock();
      cv_.notify_one();
      return;
    }
    // Every thread is busy: start another, as Python's pool does.
    if (live_ < max_)
    {
      try
      {
        start_thread();
      }
      catch (...)
      {
        if (live_ > 0)
          return; // the running threads will take it
        unlink_tail(j);
        delete j;
        throw;
      }
    }
  }

  void shutdown(bool wait, bool cancel_futures)
  {
    pool_job* dropped = nullptr;
    {
      std::lock_guard lk(m_);
      shutdown_ = true;
      if (cancel_futures)
      {
        dropped = head_;
        head_ = tail_ = nullptr;
        queued_ = 0;
      }
    }
    cv_.notify_all();
    watch_cv_.notify_all();
    // Outside the lock: it runs the jobs' stop callbacks, which may submit.
    if (cancel_futures)
      stop_.request_stop();
    while (dropped)
    {
      std::unique_ptr<pool_job> j(dropped);
      dropped = dropped->next_;
      j->cancel();
    }
    if (wait)
      join();
  }

  /// Waits until every worker has ended, except the calling thread if it
  /// is one (a job that shuts down its own pool).
  void join()
  {
    std::unique_lock lk(m_);
    const std::size_t self = current_ == this ? 1 : 0;
    for (;;)
    {
      // A thread may start while the queue drains (a job left behind with
      // nobody idle): join in rounds until no thread is left.
      if (!threads_.empty())
      {
        std::vector<std::thread> threads;
        threads.swap(threads_);
        lk.unlock();
        for (auto& t : threads)
          if (t.get_id() == std::this_thread::get_id())
            t.detach();
          else
            t.join();
        lk.lock();
        continue;
      }
      // Threads another shutdown() took to join: wait for them too.
      if (live_ <= self)
        return;
      ended_.wait(lk);
    }
  }

private:
  void work()
  {
    current_ = this;
    std::unique_lock lk(m_);
    for (;;)
    {
      if (head_)
      {
        std::unique_ptr<pool_job> j(head_);
        head_ = head_->next_;
        if (!head_)
          tail_ = nullptr;
        --queued_;
        ++pops_;
        // Jobs are left and this thread will be busy: somebody must watch
        // them (the watcher may just have left its post for this job), or,
        // with nobody idle, a new thread take them.
        bool wake = false;
        if (head_ && !watcher_)
        {
          if (want_watcher())
            wake = true;
          else if (live_ < max_)
          {
            try
            {
              start_thread();
            }
            catch (...)
            {
              // The jobs wait for a busy thread, as at max_workers.
            }
          }
        }
        ++busy_;
        auto stop = stop_.get_token();
        lk.unlock();
        if (wake)
          cv_.notify_one();
        j->run(std::move(stop));
        j.reset();
        lk.lock();
        --busy_;
        continue;
      }
      if (shutdown_)
        break;
      if (!watcher_ && (busy_ > 0 || woken_ > 0))
      {
        // Out of work while others are busy: watch the queue for them.
        watcher_ = true;
        watch(lk);
        continue;
      }
      // No spinning for more work before sleeping: on a machine with few
      // cores a spinning thread takes the core the submitting thread needs
      // (W6 ran 2-5 times slower with a 50 us spin than without).
      ++sleepers_;
      cv_.wait(lk, [this] { return head_ || shutdown_ || wakes_pending() > 0; });
      --sleepers_;
      if (watcher_wanted_)
      {
        watcher_wanted_ = false;
        watch(lk);
      }
      else if (woken_ > 0)
        --woken_;
    }
    --live_;
    ended_.notify_all();
  }

  /// Watches the queue while other threads work, with the lock held, and
  /// returns to take a job: when a job queued an interval ago is still
  /// queued (the busy threads do not keep up, or are blocked), or when a
  /// submit found nobody else coming. With nothing queued it waits without
  /// a timeout: a pool whose threads are all in long jobs uses no CPU.
  void watch(std::unique_lock<std::mutex>& lk)
  {
    for (;;)
    {
      if (!head_)
      {
        parked_ = true;
        watch_cv_.wait(lk, [this] { return shutdown_ || take_now_ || head_; });
        parked_ = false;
        if (shutdown_ || take_now_)
          break;
      }
      const std::size_t queued = queued_;
      const std::size_t pops = pops_;
      if (watch_cv_.wait_for(lk, watch_interval, [this] { return shutdown_ || take_now_; }))
        break;
      // Fewer jobs were taken than were queued then: the first is one of
      // those, and it waited the whole interval.
      if (head_ && pops_ - pops < queued)
        break;
    }
    take_now_ = false;
    watcher_ = false;
  }

  void start_thread()
  {
    threads_.emplace_back([self = shared_from_this()] { self->work(); });
    ++live_;
  }

  /// Asks a sleeping thread to watch, if one is left to ask; the caller
  /// notifies cv_ once it has let go of the lock.
  bool want_watcher() noexcept
  {
    if (sleepers_ <= wakes_pending())
      return false;
    watcher_ = watcher_wanted_ = true;
    return true;
  }

  /// Sleeping threads woken and not yet up.
  std::size_t wakes_pending() const noexcept
  {
    return woken_ + (watcher_wanted_ ? 1 : 0);
  }

  /// Takes @c j, the queue's last job, back out of it.
  void unlink_tail(pool_job* j) noexcept
  {
    pool_job* prev = nullptr;
    for (pool_job* p = head_; p != j; p = p->next_)
      prev = p;
    (prev ? prev->next_ : head_) = nullptr;
    tail_ = prev;
    --queued_;
  }

  /// How long the first queued job may wait for busy threads before the
  /// watcher takes it: a burst of jobs spreads to one more thread per
  /// interval while the threads on it cannot keep up.
  static constexpr std::chrono::microseconds watch_interval{200};

  static thread_local const thread_pool_core* current_; // the worker's pool

  std::mutex m_;
  std::condition_variable cv_;          // sleeping threads
  std::condition_variable watch_cv_;    // the watcher
  std::condition_variable ended_; // live_ went down
  pool_job* head_ = nullptr;
  pool_job* tail_ = nullptr;
  std::size_t queued_ = 0;
  std::size_t sleepers_ = 0;            // threads waiting on cv_
  std::size_t woken_ = 0;               // of them, woken to take a job
  std::size_t busy_ = 0;                // threads running a job
  bool watcher_ = false;                // a thread watches the queue (or is woken to)
  bool watcher_wanted_ = false;         // a sleeping thread is woken to watch
  bool take_now_ = false;               // the watcher is asked to take a job
  bool parked_ = false;                 // the watcher waits for a job to watch
  std::size_t pops_ = 0;                // jobs taken from the queue, ever
  std::size_t live_ = 0;                  // worker threads not yet ended
  const std::size_t max_;
  bool shutdown_ = false;
  std::stop_source stop_;
  std::vector<std::thread> threads_;
};

thread_local const thread_pool_core* thread_pool_core::current_ = nullptr;

} // namespace detail

thread_pool_executor::thread_pool_executor(std::size_t max_workers)
{
  if (max_workers == 0)
    throw std::invalid_argument("thread_pool_executor needs at least one worker");
  core_ = std::make_shared<detail::thread_pool_core>(max_workers);
}

thread_pool_executor::~thread_pool_executor()
{
  core_->shutdown(true, false);
}

std::size_t thread_pool_executor::default_max_workers() noexcept
{
  return std::min<std::size_t>(32, std::thread::hardware_concurrency() + 4);
}

std::size_t thread_pool_executor::max_workers() const noexcept
{
  return core_->max();
}

void thread_pool_executor::shutdown(bool wait, bool cancel_futures)
{
  core_->shutdown(wait, cancel_futures);
}

void event_loop::set_default_executor(std::shared_ptr<thread_pool_executor> executor)
{
  if (!executor)
    throw std::invalid_argument("set_default_executor() needs an executor");
  default_executor_ = std::move(executor);
}

thread_pool_executor& event_loop::default_executor()
{
  if (!default_executor_)
  {
    if (is_closed())
      throw loop_closed_error("run_in_executor");
    default_executor_ = std::make_shared<thread_pool_executor>();
  }
  return *default_executor_;
}

void event_loop::shutdown_default_executor()
{
  if (default_executor_)
    default_executor_->shutdown(true);
}

void thread_pool_executor::push(std::unique_ptr<detail::pool_job> job)
{
  core_->push(std::move(job));
}

} // namespace asioloop
