//
// lib/event_loop.cpp
//
// Distributed under the Boost Software License, Version 1.0.
//

#include <asioloop/event_loop.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/core/demangle.hpp>

#include <cstdio>
#include <map>
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

// Embedded mode: the host may hold the drain past the event_loop's life.
struct embedded_drain
{
  std::shared_ptr<loop_core> core;
  void operator()() const { core->drain(); }
};

} // namespace

loop_core::loop_core(event_loop& owner, asio::io_context& ctx)
  : owner_(&owner),
    owned_ctx_(&ctx),
    context_(&ctx),
    slab_(node_slab::create(this))
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
  slab_->orphan(); // freed now, or by the last handle still out
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

  callback_node* batch = std::exchange(ready_head_, nullptr);
  ready_tail_ = nullptr;
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
  draining_ = false;

  if (stopping_)
  {
    stopping_ = false;
    owned_ctx_->stop();
  }
  if (ready_head_ && !closed())
    return post_drain(); // scheduled_ stays set: this drain hands over
  // Going idle. Past the store below another drain may start on another
  // thread, so loop state is not touched after it.
  slab_->trim();
  scheduled_.store(false, std::memory_order_seq_cst);
  if (inbox_.load(std::memory_order_seq_cst) && !closed())
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

void loop_core::close() noexcept
{
  closed_.store(true, std::memory_order_seq_cst);
  ready_tail_ = nullptr;
  discard(std::exchange(ready_head_, nullptr));
  discard(inbox_.exchange(nullptr));
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
    core_(std::make_shared<detail::loop_core>(*this, *ctx_))
{
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
  ctx_.reset();
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

  auto work = asio::make_work_guard(*ctx_);
  ctx_->restart();
  ctx_->run();
}

void event_loop::run_until_complete_impl(asio::awaitable<void> aw,
    std::shared_ptr<detail::run_state> state)
{
  check_can_run("run_until_complete");
  asio::co_spawn(get_executor(), std::move(aw),
      [state, core = core_.get()](std::exception_ptr e)
      {
        state->done = true;
        state->error = e;
        core->request_stop();
      });
  run_forever();
  if (!state->done)
    throw std::runtime_error("Event loop stopped before Future completed.");
  if (state->error)
    std::rethrow_exception(state->error);
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
