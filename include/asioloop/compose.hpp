//
// asioloop/compose.hpp
//
// Distributed under the Boost Software License, Version 1.0.
//
// Combining futures and tasks: gather, wait_for, wait, as_completed, shield.
// Each accepts asioloop futures and tasks, and (except wait and
// as_completed, as in asyncio 3.11+) awaitables, which it wraps in tasks on
// the spot.
//

#ifndef ASIOLOOP_COMPOSE_HPP
#define ASIOLOOP_COMPOSE_HPP

#include <asioloop/error.hpp>
#include <asioloop/event_loop.hpp>
#include <asioloop/future.hpp>
#include <asioloop/task.hpp>

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <deque>
#include <exception>
#include <memory>
#include <optional>
#include <ranges>
#include <sstream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace asioloop {

/// A result or the exception that took its place: an element of
/// `gather(return_exceptions, ...)`.
/**
 * @par asyncio equivalent
 * An element of `gather(..., return_exceptions=True)`: the value, or the
 * exception object in its place.
 */
template <typename T>
class outcome
{
public:
  /// Constructs an outcome holding neither; has_value() is false.
  outcome() = default;

  /// Constructs an outcome holding @c value.
  explicit outcome(T value) : value_(std::move(value)) {}

  /// Constructs an outcome holding the exception @c error.
  explicit outcome(std::exception_ptr error) : error_(std::move(error)) {}

  /// Returns true if the outcome holds a value.
  bool has_value() const noexcept { return value_.has_value(); }

  /// Returns the value, or rethrows the exception.
  const T& value() const
  {
    if (error_)
      std::rethrow_exception(error_);
    if (!value_)
      throw invalid_state_error("outcome::value() on an empty outcome");
    return *value_;
  }

  /// Returns the exception, or null if the outcome holds a value.
  const std::exception_ptr& error() const noexcept { return error_; }

private:
  std::optional<T> value_;
  std::exception_ptr error_;
};

/// The outcome of work that returns nothing: success, or an exception.
template <>
class outcome<void>
{
public:
  outcome() = default;
  explicit outcome(std::exception_ptr error) : error_(std::move(error)) {}

  bool has_value() const noexcept { return !error_; }

  void value() const
  {
    if (error_)
      std::rethrow_exception(error_);
  }

  const std::exception_ptr& error() const noexcept { return error_; }

private:
  std::exception_ptr error_;
};

/// The tag that makes gather() return outcomes instead of throwing.
struct return_exceptions_t
{
  explicit return_exceptions_t() = default;
};

/// `gather(return_exceptions, a, b)`: asyncio's `return_exceptions=True`.
inline constexpr return_exceptions_t return_exceptions{};

namespace detail {

template <typename T>
future<T> to_future(const future<T>& f, event_loop&)
{
  return f;
}

template <typename T>
future<T> to_future(boost::asio::awaitable<T> aw, event_loop& loop)
{
  return future<T>(loop.create_task(std::move(aw)));
}

/// What can be gathered, waited for or shielded: an `asio::awaitable<T>`,
/// a future<T> or a task<T>.
template <typename A>
concept awaitable_source = requires(A&& a, event_loop& loop) {
  detail::to_future(std::forward<A>(a), loop);
};

/// The T of an awaitable_source.
template <typename A>
using awaited_t = typename decltype(detail::to_future(
    std::declval<A>(), std::declval<event_loop&>()))::value_type;

/// T, or std::monostate for void: what a gathered result is stored as.
template <typename T>
using gathered_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

template <typename A>
event_loop* loop_of(const A& a) noexcept
{
  if constexpr (requires { a.get_loop(); })
    return &a.get_loop();
  else
    return nullptr;
}

/// Adds @c l (null for an awaitable) to the loop found so far.
/// @throws std::invalid_argument if the two differ.
inline void join_loop(const char* what, event_loop*& loop, event_loop* l)
{
  if (l && loop && l != loop)
    throw std::invalid_argument(
        std::string(what) + ": the futures and tasks belong to different loops");
  if (l)
    loop = l;
}

/// The loop the given futures share, or the running loop if none is a
/// future. @throws std::invalid_argument if they belong to several loops.
template <typename... A>
event_loop& common_loop(const char* what, const A&... a)
{
  event_loop* loop = nullptr;
  (join_loop(what, loop, loop_of(a)), ...);
  return loop ? *loop : get_running_loop();
}

/// As common_loop(), for the elements of a range.
template <typename R>
event_loop& common_loop_of_range(const char* what, const R& r)
{
  event_loop* loop = nullptr;
  for (const auto& x : r)
    join_loop(what, loop, loop_of(x));
  return loop ? *loop : get_running_loop();
}

/// Returns @c f's exception, cancelled_error included, or null.
template <typename T>
std::exception_ptr error_of(const future<T>& f)
{
  if (f.cancelled())
  {
    try
    {
      f.result();
    }
    catch (...)
    {
      return std::current_exception();
    }
  }
  return f.exception();
}

/// Reports an exception that no awaiter will see, through the loop's
/// exception handler, naming @c source.
void report_unseen(event_loop& loop, const std::string& what,
    const std::string& source, std::exception_ptr e) noexcept;

template <typename F>
std::string repr_of(const F& f)
{
  std::ostringstream os;
  os << f;
  return os.str();
}

/// The gathered element of a done child: its value, or an outcome.
template <bool Outcomes, typename T>
auto gathered(const future<T>& f)
{
  if constexpr (Outcomes)
  {
    if (auto e = error_of(f))
      return outcome<T>(std::move(e));
    if constexpr (std::is_void_v<T>)
      return outcome<void>();
    else
      return outcome<T>(f.result());
  }
  else if constexpr (std::is_void_v<T>)
    return std::monostate{};
  else
    return T(f.result());
}

/// What a gather's links report to.
template <typename T>
class gather_sink
{
public:
  virtual void child_done(const future<T>& child) = 0;
  virtual void link_released() noexcept = 0;

protected:
  ~gather_sink() = default;
};

/// A child of a gathered range and the gather's done callback on it, in
/// one: a gather of many tasks holds each child once and subscribes to it
/// without allocating a callback. The gather owns its links; the child's
/// callback list only refers to one, and lets go of it through release().
template <typename T>
class gather_link final : public done_callback<T>
{
public:
  using value_type = T;

  explicit gather_link(future<T> c) noexcept : child(std::move(c)) {}

  void run(const future<T>& f) override { sink->child_done(f); }
  void release() noexcept override { sink->link_released(); }

  future<T> child;
  gather_sink<T>* sink = nullptr;
};

template <typename T>
future<T>& child_of(future<T>& f) noexcept
{
  return f;
}

template <typename T>
future<T>& child_of(gather_link<T>& l) noexcept
{
  return l.child;
}

/// A gather of a range hears from its children through links (the state
/// is then their sink); a gather of a few arguments, through callbacks.
template <typename Derived, typename Children>
struct gather_links
{
};

template <typename Derived, typename T>
struct gather_links<Derived, std::vector<gather_link<T>>> : gather_sink<T>
{
  void child_done(const future<T>& child) override
  {
    static_cast<Derived*>(this)->on_child_done(child);
  }

  void link_released() noexcept override
  {
    static_cast<Derived*>(this)->on_link_released();
  }
};

template <typename Children>
inline constexpr bool gathers_links = false;

template <typename T>
inline constexpr bool gathers_links<std::vector<gather_link<T>>> = true;

/// The future gather() returns: done when its children are, cancelling
/// them when it is cancelled.
template <bool Outcomes, typename Result, typename Children>
class gather_state final
  : public future_state<Result>,
    public gather_links<gather_state<Outcomes, Result, Children>, Children>
{
  static constexpr bool linked = gathers_links<Children>;

public:
  gather_state(loop_core& core, Children children)
    : future_state<Result>(core), children_(std::move(children))
  {
  }

  /// Subscribes to every child; done at once if there are none.
  void start()
  {
    auto self = std::static_pointer_cast<gather_state>(this->shared_from_this());
    if constexpr (linked)
    {
      // The links do not own the gather: it owns itself until the last
      // child has let go of its link.
      using T = typename Children::value_type::value_type;
      if (!children_.empty())
        self_ = self;
      for (auto& link : children_)
      {
        link.sink = this;
        ++links_;
        // If this throws, the link was released already; the links before
        // it keep the gather until their children are done.
        link.child.add(done_callback_ptr<T>(&link), nullptr);
      }
    }
    else
      for_each_child([&](auto& child) {
        child.add_done_callback([self](const auto& c) { self->on_child_done(c); });
      });
    if (count() == 0)
      complete();
  }

  /// A child is done.
  template <typename T>
  void on_child_done(const future<T>& child)
  {
    ++finished_;
    auto outer = self();
    if (outer.done())
    {
      // The awaiter has the first exception already; the rest would be
      // lost without a word.
      if (!child.cancelled())
        if (auto e = child.exception())
          report_unseen(child.get_loop(),
              "an exception in gather() after it had already failed",
              repr_of(child), e);
      return;
    }
    if constexpr (!Outcomes)
    {
      if (auto e = error_of(child))
      {
        if (child.cancelled())
          outer.cancel_now(message_of(e));
        else
          outer.set_exception(e);
        return;
      }
    }
    if (finished_ == count())
      complete();
  }

  /// A child's callback list let go of a link: the last one lets the gather
  /// go.
  void on_link_released() noexcept
  {
    if (--links_ == 0)
      self_.reset(); // may destroy this
  }

  typename future_state_base::cancel_action intercept_cancel(
      std::string& message) override
  {
    bool any = false;
    for_each_child([&](auto& child) { any = child.cancel(message) || any; });
    if (!any)
      return future_state_base::cancel_action::refused;
    cancel_requested_ = true;
    return future_state_base::cancel_action::deferred;
  }

private:
  future<Result> self() { return future<Result>(this->shared_from_this()); }

  template <typename F>
  void for_each_child(F f)
  {
    if constexpr (requires { children_.begin(); })
      for (auto& c : children_)
        f(child_of(c));
    else
      std::apply([&](auto&... c) { (f(c), ...); }, children_);
  }

  std::size_t count() const noexcept
  {
    if constexpr (requires { children_.size(); })
      return children_.size();
    else
      return std::tuple_size_v<Children>;
  }

  void complete()
  {
    auto outer = self();
    if (cancel_requested_)
    {
      outer.cancel_now({});
      return;
    }
    if constexpr (requires { children_.begin(); })
    {
      Result r;
      r.reserve(children_.size());
      for (auto& c : children_)
        r.push_back(gathered<Outcomes>(child_of(c)));
      outer.set_result(std::move(r));
    }
    else
      outer.set_result(std::apply(
          [](auto&... c) { return Result(gathered<Outcomes>(c)...); }, children_));
  }

  static std::string message_of(const std::exception_ptr& e)
  {
    try
    {
      std::rethrow_exception(e);
    }
    catch (const cancelled_error& c)
    {
      return c.what();
    }
    catch (...)
    {
      return {};
    }
  }

  Children children_;
  std::size_t finished_ = 0;
  std::size_t links_ = 0;
  // Held while a child's callback list refers to one of the links.
  std::shared_ptr<gather_state> self_;
  bool cancel_requested_ = false;
};

template <bool Outcomes, typename T>
using gather_element_t = std::conditional_t<Outcomes, outcome<T>, gathered_t<T>>;

template <bool Outcomes, typename... A>
auto gather_all(A&&... a)
{
  using result = std::tuple<gather_element_t<Outcomes, awaited_t<A>>...>;
  using children = std::tuple<future<awaited_t<A>>...>;
  event_loop& loop = common_loop("gather()", a...);
  if (loop.is_closed())
    throw loop_closed_error("gather");
  // Braces: the tasks are created, and so start, in the order given.
  auto st = std::make_shared<gather_state<Outcomes, result, children>>(
      core_of(loop), children{to_future(std::forward<A>(a), loop)...});
  st->start();
  return future<result>(st);
}

template <bool Outcomes, typename R>
auto gather_range(R&& r)
{
  using source = std::ranges::range_value_t<R>;
  using T = awaited_t<source>;
  using result = std::vector<gather_element_t<Outcomes, T>>;
  std::vector<gather_link<T>> children;
  event_loop* loop = &common_loop_of_range("gather()", r);
  if (loop->is_closed())
    throw loop_closed_error("gather");
  if constexpr (std::ranges::sized_range<R>)
    children.reserve(std::ranges::size(r));
  for (auto&& x : r)
  {
    if constexpr (std::is_copy_constructible_v<source>)
      children.emplace_back(to_future(x, *loop));
    else
      children.emplace_back(to_future(std::move(x), *loop)); // awaitables
  }
  auto st = std::make_shared<gather_state<Outcomes, result, std::vector<gather_link<T>>>>(
      core_of(*loop), std::move(children));
  st->start();
  return future<result>(st);
}

} // namespace detail

/// Runs awaitables, futures and tasks concurrently and collects their
/// results in the order given.
/**
 * Awaitables are wrapped in tasks at once. The returned future completes
 * with a `std::tuple` of the results (`std::monostate` for `void`). The
 * first exception (or cancellation) of a child completes it; the other
 * children go on, and an exception of theirs that nobody will see is
 * reported through the loop's exception handler. Cancelling the gather
 * cancels every child that is not done; a cancelled child cancels the
 * gather.
 *
 * @par Example
 * @code
 * auto [a, b] = co_await asioloop::gather(fetch("a"), fetch("b"));
 * @endcode
 *
 * @par asyncio equivalent
 * `await asyncio.gather(a, b)`
 */
template <detail::awaitable_source... A>
auto gather(A&&... a)
{
  return detail::gather_all<false>(std::forward<A>(a)...);
}

/// As gather(), but a failed or cancelled child gives an outcome holding
/// its exception instead of failing the gather.
/**
 * @par asyncio equivalent
 * `await asyncio.gather(a, b, return_exceptions=True)`
 */
template <detail::awaitable_source... A>
auto gather(return_exceptions_t, A&&... a)
{
  return detail::gather_all<true>(std::forward<A>(a)...);
}

/// Gathers a range of awaitables (moved from), futures or tasks into a
/// `std::vector` of results, in the range's order.
/**
 * @par asyncio equivalent
 * `await asyncio.gather(*aws)`
 */
template <std::ranges::input_range R>
  requires detail::awaitable_source<std::ranges::range_value_t<R>>
auto gather(R&& r)
{
  return detail::gather_range<false>(std::forward<R>(r));
}

/// Gathers a range into a `std::vector` of outcomes.
template <std::ranges::input_range R>
  requires detail::awaitable_source<std::ranges::range_value_t<R>>
auto gather(return_exceptions_t, R&& r)
{
  return detail::gather_range<true>(std::forward<R>(r));
}

namespace detail {

/// "2.5 s", "500 ms": a duration as timeout_error's message gives it.
std::string describe_duration(clock::duration d);

template <typename T>
boost::asio::awaitable<T> wait_for_impl(future<T> f, clock::duration timeout)
{
  if (!f.done())
  {
    auto expired = std::make_shared<bool>(false);
    auto expire = [f, expired]() mutable {
      *expired = true;
      f.cancel();
    };
    timer_handle timer;
    if (timeout <= clock::duration::zero())
      expire();
    else
      timer = f.get_loop().call_later(timeout, expire);
    // Waits until f is done, however it ends: on a timeout, f is cancelled
    // and awaited before the timeout is reported.
    std::exception_ptr e;
    try
    {
      if constexpr (std::is_void_v<T>)
        co_await future<T>(f);
      else
        (void)co_await future<T>(f);
    }
    catch (...)
    {
      e = std::current_exception();
    }
    timer.cancel();
    // A result that won the race against the timeout is kept.
    if (f.cancelled() && *expired)
      throw timeout_error("wait_for(): timed out after "
          + describe_duration(timeout) + "; the awaited work was cancelled");
    if (!f.done())
      std::rethrow_exception(e); // the waiter itself was cancelled
  }
  if constexpr (std::is_void_v<T>)
    f.result();
  else
    co_return f.result();
}

} // namespace detail

/// Waits for @c x, cancelling it if it takes longer than @c timeout.
/**
 * An awaitable is wrapped in a task at once. On the timeout, @c x is
 * cancelled and awaited, then timeout_error is thrown. A result ready at
 * the moment of the timeout is returned, never lost. Cancelling the waiter
 * cancels @c x.
 *
 * @throws timeout_error if the timeout expired and @c x ended cancelled.
 *
 * @par asyncio equivalent
 * `await asyncio.wait_for(x, timeout)` (also covers
 * `async with asyncio.timeout(t)`)
 */
template <detail::awaitable_source A, typename Rep, typename Period>
boost::asio::awaitable<detail::awaited_t<A>> wait_for(
    A&& x, std::chrono::duration<Rep, Period> timeout)
{
  event_loop& loop = detail::common_loop("wait_for()", x);
  return detail::wait_for_impl(detail::to_future(std::forward<A>(x), loop),
      std::chrono::duration_cast<clock::duration>(timeout));
}

/// When wait() returns.
enum class return_when
{
  first_completed, ///< as soon as one is done
  first_exception, ///< as soon as one fails, or all are done
  all_completed    ///< when all are done
};

/// The futures or tasks given to wait(), split by state.
template <typename H>
struct wait_result
{
  std::vector<H> done;
  std::vector<H> pending;
};

namespace detail {

template <typename T>
struct wait_state
{
  future<void> wake;
  return_when when;
  std::size_t left;

  bool satisfied(const future<T>& f) const
  {
    switch (when)
    {
    case return_when::first_completed:
      return true;
    case return_when::first_exception:
      return left == 0 || (!f.cancelled() && f.exception());
    case return_when::all_completed:
      return left == 0;
    }
    return true;
  }
};

template <typename H>
boost::asio::awaitable<wait_result<H>> wait_impl(
    std::vector<H> fs, return_when when, std::optional<clock::duration> timeout)
{
  using T = typename H::value_type;
  event_loop& loop = fs.front().get_loop();
  auto st = std::make_shared<wait_state<T>>(
      wait_state<T>{loop.create_future<void>(), when, 0});
  bool ready = false;
  for (auto& f : fs)
    st->left += !f.done();
  for (auto& f : fs)
    ready = ready || (f.done() && st->satisfied(f));
  ready = ready || st->left == 0;

  std::vector<std::optional<callback_id>> ids(fs.size());
  timer_handle timer;
  std::exception_ptr interrupted;
  if (!ready && timeout && *timeout <= clock::duration::zero())
    ready = true;
  if (!ready)
  {
    for (std::size_t i = 0; i < fs.size(); ++i)
      if (!fs[i].done())
        ids[i] = fs[i].add_done_callback([st](const future<T>& f) {
          --st->left;
          if (!st->wake.done() && st->satisfied(f))
            st->wake.set_result();
        });
    if (timeout)
      timer = loop.call_later(*timeout, [st] {
        if (!st->wake.done())
          st->wake.set_result();
      });
    try
    {
      co_await future<void>(st->wake);
    }
    catch (...)
    {
      interrupted = std::current_exception();
    }
    timer.cancel();
    for (std::size_t i = 0; i < fs.size(); ++i)
      if (ids[i] && !fs[i].done())
        fs[i].remove_done_callback(*ids[i]);
  }
  if (interrupted)
    std::rethrow_exception(interrupted);
  wait_result<H> r;
  for (auto& f : fs)
    (f.done() ? r.done : r.pending).push_back(std::move(f));
  co_return r;
}

} // namespace detail

/// Waits until the futures or tasks in @c fs reach the state @c when asks
/// for, or @c timeout passes, and returns them split into done and pending.
/**
 * Nothing is cancelled: a timeout only ends the wait.
 *
 * @throws std::invalid_argument if @c fs is empty, or its members belong to
 * different loops.
 *
 * @par Example
 * @code
 * auto [done, pending] = co_await asioloop::wait(tasks,
 *     asioloop::return_when::first_completed);
 * @endcode
 *
 * @par asyncio equivalent
 * `await asyncio.wait(fs, return_when=FIRST_COMPLETED, timeout=t)`
 */
template <typename H>
  requires std::is_base_of_v<future<typename H::value_type>, H>
boost::asio::awaitable<wait_result<H>> wait(std::vector<H> fs,
    return_when when = return_when::all_completed,
    std::optional<clock::duration> timeout = std::nullopt)
{
  if (fs.empty())
    throw std::invalid_argument("wait() needs at least one future or task");
  (void)detail::common_loop_of_range("wait()", fs);
  return detail::wait_impl(std::move(fs), when, timeout);
}

/// The results of futures or tasks, in the order they complete: what
/// as_completed() returns.
/**
 * @par Example
 * @code
 * auto ac = asioloop::as_completed(tasks);
 * while (!ac.empty())
 *   std::cout << co_await ac.next() << '\n';
 * @endcode
 */
template <typename T>
class completion_order
{
public:
  /// Subscribes to @c fs.
  explicit completion_order(const std::vector<future<T>>& fs)
    : st_(std::make_shared<state>())
  {
    // Checked before any callback is added: a refusal leaves none behind.
    if (!fs.empty())
      (void)detail::common_loop_of_range("as_completed()", fs);
    st_->left = fs.size();
    for (const auto& f : fs)
    {
      future<T>(f).add_done_callback([st = st_](const future<T>& g) {
        st->done.push_back(g);
        if (st->wake.valid() && !st->wake.done())
          st->wake.set_result();
      });
    }
  }

  /// Returns the number of results next() has still to give.
  std::size_t remaining() const noexcept { return st_->left; }

  /// Returns true once next() has given every result.
  bool empty() const noexcept { return st_->left == 0; }

  /// Waits for the next future to complete, and returns its result or
  /// rethrows its exception.
  /**
   * Cancelling the waiter loses nothing: the result stays for the next
   * call.
   *
   * @throws invalid_state_error when every result has been given.
   */
  boost::asio::awaitable<T> next() { return next_impl(st_); }

private:
  struct state
  {
    std::deque<future<T>> done;
    future<void> wake;
    std::size_t left = 0;
  };

  static boost::asio::awaitable<T> next_impl(std::shared_ptr<state> st)
  {
    if (st->left == 0)
      throw invalid_state_error(
          "as_completed(): next() after every result was given");
    while (st->done.empty())
    {
      st->wake = get_running_loop().create_future<void>();
      co_await future<void>(st->wake);
    }
    future<T> f = std::move(st->done.front());
    st->done.pop_front();
    --st->left;
    if constexpr (std::is_void_v<T>)
      f.result();
    else
      co_return f.result();
  }

  std::shared_ptr<state> st_;
};

/// Returns the results of @c fs one by one, as they complete.
/**
 * @par asyncio equivalent
 * `for coro in asyncio.as_completed(fs): await coro`
 */
template <typename H>
  requires std::is_base_of_v<future<typename H::value_type>, H>
completion_order<typename H::value_type> as_completed(const std::vector<H>& fs)
{
  return completion_order<typename H::value_type>(
      std::vector<future<typename H::value_type>>(fs.begin(), fs.end()));
}

/// Protects @c x from cancellation: cancelling the returned future (or the
/// task awaiting it) leaves @c x running.
/**
 * An awaitable is wrapped in a task at once. If the returned future was
 * cancelled and @c x later fails, the exception is reported through the
 * loop's exception handler rather than lost.
 *
 * @par asyncio equivalent
 * `await asyncio.shield(x)`
 */
template <detail::awaitable_source A>
future<detail::awaited_t<A>> shield(A&& x)
{
  using T = detail::awaited_t<A>;
  event_loop& loop = detail::common_loop("shield()", x);
  future<T> inner = detail::to_future(std::forward<A>(x), loop);
  if (inner.done())
    return inner;
  auto outer = loop.create_future<T>();
  inner.add_done_callback([outer](const future<T>& in) mutable {
    if (outer.done())
    {
      if (!in.cancelled())
        if (auto e = in.exception())
          detail::report_unseen(in.get_loop(),
              "an exception in shielded work whose waiter was cancelled",
              detail::repr_of(in), e);
      return;
    }
    if (in.cancelled())
      outer.cancel();
    else if (auto e = in.exception())
      outer.set_exception(e);
    else if constexpr (std::is_void_v<T>)
      outer.set_result();
    else
      outer.set_result(in.result());
  });
  return outer;
}

} // namespace asioloop

#endif // ASIOLOOP_COMPOSE_HPP
