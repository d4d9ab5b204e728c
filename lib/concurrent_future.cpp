//
// lib/concurrent_future.cpp
//
// Distributed under the Boost Software License, Version 1.0.
//
// The thread-shared state of concurrent_future: one mutex and one condition
// variable per future. The status is also kept in an atomic, so that done()
// and a result() on a future already done take no lock, and so that a waiter
// can spin on it briefly before it sleeps.
//

#include <asioloop/concurrent_future.hpp>

#include <boost/core/demangle.hpp>

#include <algorithm>
#include <cstdio>
#include <thread>
#include <sstream>

namespace asioloop::detail {

namespace {

void report_callback_error(const cf_callback& cb) noexcept
{
  // concurrent.futures logs and goes on: the completing thread is usually a
  // worker or a loop that must not be taken down by someone's callback.
  try
  {
    std::string text = "asioloop: exception calling callback "
        + boost::core::demangle(cb.type().name()) + " of a concurrent_future";
    try
    {
      throw;
    }
    catch (const std::exception& e)
    {
      text += "\n  " + boost::core::demangle(typeid(e).name()) + ": " + e.what();
    }
    catch (...)
    {
    }
    text += '\n';
    std::fputs(text.c_str(), stderr);
  }
  catch (...)
  {
  }
}

void run_callback(cf_state_base& st, cf_callback& cb) noexcept
{
  try
  {
    cb.run(st);
  }
  catch (...)
  {
    report_callback_error(cb);
  }
}

// Spins briefly on the status before sleeping on the condition variable.
// A loop in another thread answers a trivial request in a few microseconds;
// a caller that went to sleep meanwhile pays a futex wake-up, and a core that
// dropped into an idle state, on top: W7's round trip fell from about 10 us
// to about 1 us with the spin. Bounded, so a long wait costs 20 us of CPU
// once; skipped on a single CPU, where spinning only delays the producer.
bool spin_until_done(const cf_state_base& st,
    std::chrono::steady_clock::time_point deadline) noexcept
{
  static const bool worth_it = std::thread::hardware_concurrency() > 1;
  if (!worth_it)
    return false;
  const auto until = std::min(deadline,
      std::chrono::steady_clock::now() + std::chrono::microseconds(20));
  do
  {
    for (int i = 0; i < 64; ++i)
    {
      if (st.is_done())
        return true;
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
    }
  } while (std::chrono::steady_clock::now() < until);
  return false;
}

} // namespace

void fail_closed(cf_state_base& st) noexcept
{
  try
  {
    st.try_set_exception(std::make_exception_ptr(
        loop_closed_error("run_coroutine_threadsafe")));
  }
  catch (...)
  {
  }
}

void cf_state_base::check_not_home(const char* what) const
{
  // Only the pointer is compared: the loop may be gone.
  loop_core* core = running_core;
  if (home_ && core && core->owner() == home_)
    throw invalid_state_error(std::string(what)
        + "() on a concurrent_future from the thread that runs the loop which "
          "is to complete it would wait for ever: co_await std::move(f) "
          "instead, or add_done_callback()");
}

void cf_state_base::call_waiter(std::chrono::steady_clock::time_point deadline) noexcept
{
  if (auto w = waiter_.lock())
    w->wait_for(*this, deadline);
}

void cf_state_base::wait(const char* what)
{
  if (is_done())
    return;
  check_not_home(what);
  call_waiter(std::chrono::steady_clock::time_point::max());
  if (spin_until_done(*this, std::chrono::steady_clock::time_point::max()))
    return;
  std::unique_lock lk(mutex_);
  ++waiters_;
  cv_.wait(lk, [this] { return status_.load(std::memory_order_relaxed) >= finished; });
  --waiters_;
}

bool cf_state_base::wait_until(
    const char* what, std::chrono::steady_clock::time_point deadline)
{
  if (is_done())
    return true;
  check_not_home(what);
  call_waiter(deadline);
  if (spin_until_done(*this, deadline))
    return true;
  std::unique_lock lk(mutex_);
  ++waiters_;
  const bool ok = cv_.wait_until(lk, deadline,
      [this] { return status_.load(std::memory_order_relaxed) >= finished; });
  --waiters_;
  return ok;
}

void cf_state_base::wait_for_result(
    const char* what, const std::chrono::steady_clock::duration* timeout)
{
  if (!timeout)
    wait(what);
  else if (!wait_until(what, std::chrono::steady_clock::now() + *timeout))
  {
    std::ostringstream os;
    os << what << "() timed out after "
       << std::chrono::duration<double>(*timeout).count()
       << " s: the concurrent_future is still pending; wait longer, or "
          "cancel() it";
    throw timeout_error(os.str());
  }
  if (auto e = failure())
    std::rethrow_exception(e);
}

std::exception_ptr cf_state_base::failure() const
{
  // Both fields are written once, before the status turns final (a release
  // store that readers acquired through is_done()).
  if (load_status() == cancelled)
    throw cancelled_error(cancel_message_);
  return error_;
}

void cf_state_base::finish(std::unique_lock<std::mutex> lk, status s) noexcept
{
  status_.store(s, std::memory_order_release);
  auto callbacks = std::move(callbacks_);
  callbacks_.clear();
  const bool wake = waiters_ > 0;
  lk.unlock();
  // After the unlock: a woken waiter does not bump into the held mutex. The
  // caller holds a reference, so the state outlives the notification.
  if (wake)
    cv_.notify_all();
  for (auto& cb : callbacks)
    run_callback(*this, *cb);
}

bool cf_state_base::try_set_exception(std::exception_ptr e)
{
  auto keep = shared_from_this();
  std::unique_lock lk(mutex_);
  if (status_.load(std::memory_order_relaxed) >= finished)
    return false;
  error_ = std::move(e);
  finish(std::move(lk), finished);
  return true;
}

bool cf_state_base::cancel(std::string message)
{
  auto keep = shared_from_this();
  std::unique_lock lk(mutex_);
  const int s = status_.load(std::memory_order_relaxed);
  if (s == cancelled)
    return true;
  if (s != pending)
    return false;
  cancel_message_ = std::move(message);
  finish(std::move(lk), cancelled);
  on_cancel();
  return true;
}

bool cf_state_base::set_running_or_notify_cancel()
{
  std::unique_lock lk(mutex_);
  const int s = status_.load(std::memory_order_relaxed);
  if (s == cancelled)
    return false;
  if (s != pending)
    throw invalid_state_error(
        "set_running_or_notify_cancel() on a concurrent_future that is "
        "already running or done");
  status_.store(running, std::memory_order_release);
  return true;
}

void cf_state_base::add_callback(std::unique_ptr<cf_callback> cb)
{
  {
    std::lock_guard lk(mutex_);
    if (status_.load(std::memory_order_relaxed) < finished)
    {
      callbacks_.push_back(std::move(cb));
      return;
    }
  }
  run_callback(*this, *cb);
}

void cf_state_base::print_state(std::ostream& os,
    void (*print_value)(std::ostream&, const cf_state_base&)) const
{
  switch (load_status())
  {
  case pending:
    os << "pending";
    return;
  case running:
    os << "running";
    return;
  case cancelled:
    os << "cancelled";
    return;
  default:
    break;
  }
  if (!error_)
  {
    os << "finished result=";
    print_value(os, *this);
    return;
  }
  os << "finished exception=";
  try
  {
    std::rethrow_exception(error_);
  }
  catch (const std::exception& x)
  {
    os << boost::core::demangle(typeid(x).name()) << "('" << x.what() << "')";
  }
  catch (...)
  {
    os << "<unknown>";
  }
}

} // namespace asioloop::detail
