//
// lib/event_loop.cpp
//
// Distributed under the Boost Software License, Version 1.0.
//

#include <asioloop/event_loop.hpp>
#include <asioloop/thread_pool.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/core/demangle.hpp>

#include <algorithm>
#include <cstdio>
#include <thread>
#include <map>
#include <memory>
#include <mutex>
#include <vector>
#include <stdexcept>

namespace asio = boost::asio;

namespace asioloop {
namespace detail {

constinit thread_local loop_core* running_core = nullptr;

namespace {

// Sets the running loop of this thread for a scope, restoring the previous
// one, so that a drain running inside an owned loop's run is transparent.
class running_scope
{
public:
  explicit running_scope(loop_core* c) noexcept
    : saved_(std::exchange(running_core, c))
  {
  }
  ~running_scope() { running_core = saved_; }
  running_scope(const running_scope&) = delete;
  running_scope& operator=(const running_scope&) = delete;

private:
  loop_core* saved_;
};

// Owned mode: the io_context dies before the core, so a raw pointer will do.
struct owned_drain
{
  loop_core* core;
  void operator()() const { core->drain(); }
};

// Embedded mode: keeps the cores of destroyed loops until the host's
// execution context is destroyed. A task (or a coroutine on the loop's
// executor) suspended in a host operation, a timer or a socket, stays in the
// host: the context destroys it in its shutdown, and the coroutine's
// destructor posts through an executor that refers to the core by a plain
// pointer. The service's shutdown keeps them; they go with the services.
class kept_cores final : public asio::execution_context::service
{
public:
  static asio::execution_context::id id;

  explicit kept_cores(asio::execution_context& ctx)
    : asio::execution_context::service(ctx)
  {
  }

  void keep(std::shared_ptr<loop_core> core)
  {
    std::lock_guard lk(m_);
    cores_.push_back(std::move(core));
  }

private:
  void shutdown() override {}

  std::mutex m_;
  std::vector<std::shared_ptr<loop_core>> cores_;
};

asio::execution_context::id kept_cores::id;

// Embedded mode: the host may hold the drain past the event_loop's life.
struct embedded_drain
{
  std::shared_ptr<loop_core> core;
  void operator()() const { core->drain(); }
};

// Inserts a timer made outside loop work, once it reaches the loop; if the
// loop closes first, the timer's node is released with it.
struct timer_insertion
{
  loop_core* core;
  loop_core::clock::time_point when;
  callback_node* node;

  timer_insertion(loop_core* c, loop_core::clock::time_point w, callback_node* n)
    : core(c), when(w), node(n)
  {
  }
  timer_insertion(timer_insertion&& o) noexcept
    : core(o.core), when(o.when), node(std::exchange(o.node, nullptr))
  {
  }
  ~timer_insertion()
  {
    if (node)
    {
      node->destroy();
      node->release();
    }
  }
  void operator()() { core->add_timer(when, std::exchange(node, nullptr)); }
};

} // namespace

// The one steady_timer that wakes the loop for its earliest timer. It waits
// on the underlying context, not on the loop's executor, so that its
// completion costs no trip through the ready queue.
struct loop_core::waker
{
  explicit waker(const asio::any_io_executor& ex) : timer(ex) {}
  asio::steady_timer timer;
};

loop_core::loop_core(event_loop& owner, asio::io_context& ctx, bool virtual_time)
  : owner_(&owner),
    owned_ctx_(&ctx),
    context_(&ctx),
    slab_(node_slab::create(this)),
    virtual_(virtual_time),
    virtual_now_(clock::now())
{
}

loop_core::loop_core(event_loop& owner, asio::any_io_executor host)
  : owner_(&owner),
    host_(std::move(host)),
    context_(&asio::query(host_, asio::execution::context)),
    slab_(node_slab::create(this))
{
}

loop_core::~loop_core()
{
  discard(std::exchange(ready_head_, nullptr));
  discard(inbox_.exchange(nullptr));
  discard_timers();
  waker_.reset();
  release_slab();
}

void loop_core::release_slab() noexcept
{
  if (slab_)
    slab_->orphan(); // freed now, or by the last handle still out
  slab_ = nullptr;
}

void loop_core::schedule_drain() noexcept
{
  if (!scheduled_.exchange(true, std::memory_order_seq_cst))
    post_drain();
}

void loop_core::post_drain() noexcept
{
  if (closed())
  {
    scheduled_.store(false);
    return;
  }
  // Posting allocates through Asio's recycling allocator; if even that
  // fails there is no way to run the loop, as with Asio itself.
  if (owned_ctx_)
    asio::post(*owned_ctx_, owned_drain{this});
  else
    asio::post(host_, embedded_drain{shared_from_this()});
}

void loop_core::request_stop() noexcept
{
  stopping_ = true;
  schedule_drain();
}

void loop_core::take_inbox() noexcept
{
  callback_node* stack = inbox_.exchange(nullptr, std::memory_order_seq_cst);
  if (!stack)
    return;
  // The inbox is a stack: reverse it to restore each thread's order.
  callback_node* head = nullptr;
  callback_node* tail = stack;
  while (stack)
  {
    callback_node* next = stack->next_;
    stack->next_ = head;
    head = stack;
    stack = next;
  }
  if (ready_tail_)
    ready_tail_->next_ = head;
  else
    ready_head_ = head;
  ready_tail_ = tail;
}

void loop_core::drain()
{
  if (closed())
  {
    scheduled_.store(false);
    return;
  }
  running_scope scope(this);
  draining_ = true;
  take_inbox();
  if (!timers_.empty())
    collect_due_timers(now());

  callback_node* batch = std::exchange(ready_head_, nullptr);
  ready_tail_ = nullptr;
  if (debug_)
    run_batch_debug(batch);
  else
    run_batch(batch);
  draining_ = false;

  if (stopping_)
  {
    stopping_ = false;
    stop_latched_ = true;
    owned_ctx_->stop();
  }
  if (closed())
  {
    scheduled_.store(false, std::memory_order_seq_cst);
    return;
  }
  if (ready_head_ || arm_timer())
    return post_drain(); // scheduled_ stays set: this drain hands over
  // Going idle. Past the store below another drain may start on another
  // thread, so loop state is not touched after it.
  slab_->trim();
  scheduled_.store(false, std::memory_order_seq_cst);
  if (inbox_.load(std::memory_order_seq_cst) && !closed())
    schedule_drain();
}

void loop_core::run_batch(callback_node* batch)
{
  while (batch)
  {
    callback_node* n = batch;
    batch = n->next_;
    if (n->cancelled() || closed())
    {
      n->destroy();
    }
    else
    {
      try
      {
        n->invoke();
      }
      catch (...)
      {
        report(*n);
      }
    }
    n->release();
  }
}

// The batch as run_batch runs it, timing each callback on the real clock.
void loop_core::run_batch_debug(callback_node* batch)
{
  while (batch)
  {
    callback_node* n = batch;
    batch = n->next_;
    if (n->cancelled() || closed())
    {
      n->destroy();
      n->release();
      continue;
    }
    const auto& type = n->type();
    const auto start = clock::now();
    try
    {
      n->invoke();
    }
    catch (...)
    {
      report(*n);
    }
    n->release();
    const auto took = clock::now() - start;
    if (took > owner_->slow_callback_duration)
    {
      try
      {
        owner_->call_exception_handler({"Executing "
                + boost::core::demangle(type.name()) + " took "
                + std::to_string(std::chrono::duration<double>(took).count())
                + " seconds",
            nullptr});
      }
      catch (...)
      {
      }
    }
  }
}

void loop_core::report_foreign_call(
    const char* what, const std::type_info& cb) noexcept
{
  try
  {
    std::string message = std::string(what) + "("
        + boost::core::demangle(cb.name())
        + ") was called from outside the loop's work while the loop runs; "
          "from another thread use call_soon_threadsafe()";
    post(1, [this, message = std::move(message)] {
      owner_->call_exception_handler({message, nullptr});
    });
  }
  catch (...)
  {
  }
}

void loop_core::add_timer(clock::time_point when, callback_node* n)
{
  if (running_core != this)
  {
    post(1, timer_insertion(this, when, n));
    return;
  }
  insert_timer(when, n);
}

void loop_core::insert_timer(clock::time_point when, callback_node* n)
{
  if (closed())
  {
    n->destroy();
    n->release();
    return;
  }
  if (timers_.size() >= timer_sweep_at_)
    sweep_cancelled_timers();
  timers_.push_back({when, timer_seq_++, n});
  std::push_heap(timers_.begin(), timers_.end(), timer_later{});
  // Outside a drain (an owned loop's other handlers), make sure a drain
  // will look at the heap and arm the timer.
  if (!draining_)
    schedule_drain();
}

void loop_core::collect_due_timers(clock::time_point now) noexcept
{
  while (!timers_.empty() && timers_.front().when <= now)
  {
    std::pop_heap(timers_.begin(), timers_.end(), timer_later{});
    callback_node* n = timers_.back().node;
    timers_.pop_back();
    if (n->cancelled())
    {
      n->destroy();
      n->release();
      continue;
    }
    link_ready(n);
  }
}

// Cancelled timers stay in the heap until due, as in asyncio; when they
// make up most of it, they are swept out in one pass.
void loop_core::sweep_cancelled_timers() noexcept
{
  auto live = std::partition(timers_.begin(), timers_.end(),
      [](const timer_entry& e) { return !e.node->cancelled(); });
  for (auto it = live; it != timers_.end(); ++it)
  {
    it->node->destroy();
    it->node->release();
  }
  timers_.erase(live, timers_.end());
  std::make_heap(timers_.begin(), timers_.end(), timer_later{});
  timer_sweep_at_ = std::max<std::size_t>(1024, timers_.size() * 2);
}

void loop_core::discard_timers() noexcept
{
  for (auto& e : timers_)
  {
    e.node->destroy();
    e.node->release();
  }
  timers_.clear();
}

// Drops cancelled timers from the top of the heap, so that the front is the
// earliest live one.
void loop_core::drop_cancelled_front() noexcept
{
  while (!timers_.empty() && timers_.front().node->cancelled())
  {
    std::pop_heap(timers_.begin(), timers_.end(), timer_later{});
    timers_.back().node->destroy();
    timers_.back().node->release();
    timers_.pop_back();
  }
}

// Called as the loop goes idle. Returns true if a timer is already due, so
// that the caller runs another iteration instead.
bool loop_core::arm_timer() noexcept
{
  drop_cancelled_front();
  if (timers_.empty())
    return false;
  const auto when = timers_.front().when;
  const auto t = now();
  if (when <= t)
    return true;
  if (virtual_)
    return false; // the run loop moves the clock when nothing else is left
  if (armed_at_ == when && armed_at_ > t)
    return false; // already waiting for it
  try
  {
    if (!waker_)
      waker_ = std::make_unique<waker>(owned_ctx_
              ? asio::any_io_executor(owned_ctx_->get_executor())
              : host_);
    waker_->timer.expires_at(when);
    armed_at_ = when;
    auto fire = [this, keep = owned_ctx_ ? nullptr : shared_from_this()](
                    const boost::system::error_code& ec) {
      if (!ec)
        on_timer_due();
    };
    waker_->timer.async_wait(std::move(fire));
  }
  catch (...)
  {
    // Out of memory: run another iteration rather than sleep past it.
    return true;
  }
  return false;
}

bool loop_core::jump_to_next_timer() noexcept
{
  drop_cancelled_front();
  if (timers_.empty())
    return false;
  virtual_now_ = std::max(virtual_now_, timers_.front().when);
  schedule_drain();
  return true;
}

void loop_core::advance(clock::duration d) noexcept
{
  if (d > clock::duration::zero())
    virtual_now_ += d;
  schedule_drain();
}

void loop_core::report(callback_node& n) noexcept
{
  // Building the message may itself fail (out of memory): the drain must go
  // on regardless, or the loop would stop for good.
  try
  {
    error_context ctx{"Exception in callback "
            + boost::core::demangle(n.type().name()),
        std::current_exception()};
    owner_->call_exception_handler(ctx);
  }
  catch (...)
  {
  }
}

void loop_core::discard(callback_node* list) noexcept
{
  while (list)
  {
    callback_node* n = list;
    list = n->next_;
    n->destroy();
    n->release();
  }
}

void loop_core::wait_for_pushes() const noexcept
{
  while (pushing_.load(std::memory_order_acquire) != 0)
    std::this_thread::yield();
}

void loop_core::close() noexcept
{
  closed_.store(true, std::memory_order_seq_cst);
  // Pending tasks die with the loop: say so, as asyncio does, before their
  // coroutine frames are destroyed with the queues below.
  while (tasks_)
  {
    task_link* t = tasks_;
    remove_task(*t);
    if (owner_ && !t->returned_)
    {
      try
      {
        owner_->call_exception_handler(
            {"Task was destroyed but it is pending! task: " + t->describe(), nullptr});
      }
      catch (...)
      {
      }
    }
    t->abandon();
  }
  ready_tail_ = nullptr;
  discard(std::exchange(ready_head_, nullptr));
  discard(inbox_.exchange(nullptr));
  discard_timers();
  waker_.reset();
  // Dropping may destroy coroutines that release other resources: take one
  // at a time from the front.
  while (resources_)
  {
    loop_resource* r = resources_;
    untrack(*r);
    r->drop();
  }
  // From here on, a push from another thread discards itself (see
  // push_remote); what was pushed meanwhile is discarded now.
  sealed_.store(true, std::memory_order_seq_cst);
  discard(inbox_.exchange(nullptr, std::memory_order_seq_cst));
}

} // namespace detail

struct event_loop::signals
{
  explicit signals(const loop_executor& ex) : set(ex) {}

  asio::signal_set set;
  std::map<int, std::function<void()>> handlers;
  bool waiting = false;
};

event_loop::event_loop()
  : ctx_(std::make_unique<asio::io_context>(1)),
    core_(std::make_shared<detail::loop_core>(*this, *ctx_, false))
{
}

event_loop::event_loop(virtual_clock_t)
  : ctx_(std::make_unique<asio::io_context>(1)),
    core_(std::make_shared<detail::loop_core>(*this, *ctx_, true))
{
}

void event_loop::advance(clock::duration d)
{
  if (!core_->is_virtual())
    throw std::logic_error("advance() needs a loop on virtual time: "
                           "event_loop loop{asioloop::virtual_clock};");
  core_->advance(d);
}

event_loop::event_loop(const asio::any_io_executor& host)
  : core_(std::make_shared<detail::loop_core>(*this, host))
{
}

event_loop::~event_loop()
{
  // Nothing queued runs after this: close() destroys the callbacks while the
  // io_context they may refer to is still alive, then the io_context goes,
  // destroying the handlers still inside it.
  if (!core_->closed())
  {
    running_ = false;
    close();
  }
  // A thread that has just queued the callback this loop last ran may still
  // be inside Asio's post to the io_context.
  core_->wait_for_pushes();
  ctx_.reset();
  core_->detach_owner();
  if (core_->embedded())
  {
    // Kept small: the slab goes now (nothing allocates from a closed loop).
    core_->release_slab();
    try
    {
      asio::use_service<detail::kept_cores>(core_->context()).keep(core_);
    }
    catch (...)
    {
      // Out of memory: the core goes with this loop, as it did before.
    }
  }
}

bool event_loop::is_running() const noexcept
{
  return core_->embedded() ? !core_->closed() : running_;
}

void event_loop::check_can_run(const char* what) const
{
  if (core_->embedded())
    throw std::runtime_error(std::string(what)
        + "() cannot be used on an embedded event_loop: the host runs it "
          "by running its io_context");
  if (core_->closed())
    throw loop_closed_error(what);
  if (running_)
    throw std::runtime_error("This event loop is already running");
  if (detail::running_core)
    throw std::runtime_error(
        "Cannot run the event loop while another loop is running");
}

void event_loop::run_forever()
{
  check_can_run("run_forever");

  struct run_scope
  {
    event_loop& loop;
    detail::running_scope running;
    explicit run_scope(event_loop& l) : loop(l), running(l.core_.get())
    {
      loop.running_ = true;
    }
    ~run_scope() { loop.running_ = false; }
  } scope(*this);

  core_->clear_stop_latch();
  if (core_->is_virtual())
    return run_virtual();
  auto work = asio::make_work_guard(*ctx_);
  ctx_->restart();
  ctx_->run();
}

// Runs a virtual-time loop. Without a work guard, the io_context tells when
// nothing at all is pending (it stops itself); only then does the clock jump
// to the next timer. Pending Asio operations, such as a socket read on the
// loop's executor, are waited for in real time.
void event_loop::run_virtual()
{
  for (;;)
  {
    ctx_->restart();
    ctx_->poll();
    if (core_->stop_latched())
      return;
    if (core_->drain_pending())
      continue;
    ctx_->restart();
    if (ctx_->poll() == 0 && !ctx_->stopped())
    {
      ctx_->run_one(); // outside work is pending: wait for it
      continue;
    }
    if (core_->stop_latched())
      return;
    if (core_->drain_pending() || core_->jump_to_next_timer())
      continue;
    // Nothing at all to do: wait for another thread's call_soon_threadsafe.
    ctx_->restart();
    auto work = asio::make_work_guard(*ctx_);
    ctx_->run_one();
  }
}

void event_loop::stop()
{
  if (core_->embedded())
    throw std::runtime_error("stop() cannot be used on an embedded "
                             "event_loop: close() it, or stop the host");
  core_->request_stop();
}

void event_loop::close()
{
  if (running_)
    throw std::runtime_error("Cannot close a running event loop");
  if (core_->closed())
    return;
  // The core closes first, so that the signal set's cancelled wait is
  // discarded by the closed executor instead of running.
  core_->close();
  signals_.reset();
  // As asyncio: the default executor stops taking jobs; its threads are
  // joined when the loop is destroyed.
  if (default_executor_)
    default_executor_->shutdown(false);
}

void event_loop::set_exception_handler(exception_handler h)
{
  exception_handler_ = std::move(h);
}

void event_loop::call_exception_handler(const error_context& ctx) noexcept
{
  if (!exception_handler_)
    return default_exception_handler(ctx);
  try
  {
    exception_handler_(*this, ctx);
  }
  catch (...)
  {
    default_exception_handler({"Unhandled error in exception handler",
        std::current_exception()});
    default_exception_handler(ctx);
  }
}

void event_loop::default_exception_handler(const error_context& ctx) noexcept
{
  std::string text = "asioloop: " + ctx.message;
  if (ctx.exception)
  {
    try
    {
      std::rethrow_exception(ctx.exception);
    }
    catch (const std::exception& e)
    {
      text += "\n  " + boost::core::demangle(typeid(e).name()) + ": " + e.what();
    }
    catch (...)
    {
      text += "\n  an exception of a type not derived from std::exception";
    }
  }
  text += '\n';
  std::fputs(text.c_str(), stderr);
}

void event_loop::add_signal_handler_impl(int sig, std::function<void()> fn)
{
  if (core_->closed())
    throw loop_closed_error("add_signal_handler");
  if (!signals_)
    signals_ = std::make_unique<signals>(get_executor());
  signals_->set.add(sig);
  signals_->handlers[sig] = std::move(fn);
  if (signals_->waiting)
    return;

  // The wait completes as loop work, through the loop's executor.
  struct waiter
  {
    event_loop* loop;
    void operator()(const boost::system::error_code& ec, int sig) const
    {
      // A cancelled wait was already replaced (or the loop is closing).
      if (ec)
        return;
      auto& s = *loop->signals_;
      s.waiting = false;
      if (auto it = s.handlers.find(sig); it != s.handlers.end())
      {
        try
        {
          it->second();
        }
        catch (...)
        {
          loop->call_exception_handler({"Exception in signal handler for "
                  "signal " + std::to_string(sig),
              std::current_exception()});
        }
      }
      if (loop->signals_ && !loop->signals_->handlers.empty()
          && !loop->signals_->waiting)
      {
        loop->signals_->waiting = true;
        loop->signals_->set.async_wait(*this);
      }
    }
  };
  signals_->waiting = true;
  signals_->set.async_wait(waiter{this});
}

bool event_loop::remove_signal_handler(int sig)
{
  if (!signals_ || signals_->handlers.erase(sig) == 0)
    return false;
  signals_->set.remove(sig);
  // An embedded loop must not keep the host's io_context busy with a wait
  // for signals nobody handles.
  if (signals_->handlers.empty())
  {
    signals_->set.cancel();
    signals_->waiting = false;
  }
  return true;
}

event_loop& get_running_loop()
{
  auto* core = detail::running_core;
  if (!core || !core->owner())
    throw no_running_loop_error();
  return *core->owner();
}

} // namespace asioloop
