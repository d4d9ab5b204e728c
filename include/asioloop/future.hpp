//
// asioloop/future.hpp
//
// Distributed under the Boost Software License, Version 1.0.
//

// event_loop.hpp comes first, outside the include guard: it ends by
// including future.hpp and task.hpp, which define what its templates use.
#include <asioloop/event_loop.hpp>

#ifndef ASIOLOOP_FUTURE_HPP
#define ASIOLOOP_FUTURE_HPP

#include <asioloop/detail/asio_compat.hpp>
#include <asioloop/detail/completion.hpp>
#include <asioloop/detail/slab_allocator.hpp>
#include <asioloop/error.hpp>
#include <asioloop/event_loop.hpp>

#include <boost/asio/async_result.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/core/demangle.hpp>

#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

namespace asioloop {

/// Identifies a done callback, for future::remove_done_callback().
enum class callback_id : std::uint64_t
{
};

namespace detail {

template <typename T>
struct future_signature_of
{
  using type = void(std::exception_ptr, T);
};

template <>
struct future_signature_of<void>
{
  using type = void(std::exception_ptr);
};

template <typename T>
using future_signature = typename future_signature_of<T>::type;

/// A done callback, type-erased, called once with the future.
template <typename T>
class done_callback
{
public:
  virtual ~done_callback() = default;
  virtual void run(const future<T>& f) = 0;

  /// The future lets go of the callback, run or not: a callback it owns is
  /// freed; one that something else owns (a gather's link to a child) tells
  /// its owner.
  virtual void release() noexcept = 0;
};

/// A done callback that the future owns, made by slab_new().
template <typename T>
class owned_done_callback : public done_callback<T>
{
public:
  void release() noexcept final { slab_deleter{}(this); }

  node_slab* slab_ = nullptr; // where the memory came from; null: the heap
};

/// The owner of a done callback: releases it when the future lets go.
struct done_callback_release
{
  template <typename B>
  void operator()(B* p) const noexcept
  {
    p->release();
  }
};

template <typename T>
using done_callback_ptr = std::unique_ptr<done_callback<T>, done_callback_release>;

template <typename T, typename F, typename... Args>
class bound_done_callback final : public owned_done_callback<T>
{
public:
  template <typename F2, typename... A>
  explicit bound_done_callback(F2&& f, A&&... a)
    : f_(std::forward<F2>(f)), args_(std::forward<A>(a)...)
  {
  }

  void run(const future<T>& fut) override
  {
    std::apply(
        [&](Args&... a) { std::invoke(std::move(f_), fut, std::move(a)...); },
        args_);
  }

private:
  F f_;
  std::tuple<Args...> args_;
};

/// What every future<T> shares, whatever T is.
class future_state_base : public loop_resource
{
public:
  enum class status : std::uint8_t
  {
    pending,
    finished,
    cancelled
  };

  explicit future_state_base(loop_core& core) noexcept : core_(&core) {}

  /// What cancel() does with a future that is still pending.
  enum class cancel_action : std::uint8_t
  {
    now,      ///< cancel it on the spot (a plain future)
    deferred, ///< the request was taken; it ends cancelled later (a task)
    refused   ///< nothing could be cancelled; cancel() returns false
  };

  /// A task intercepts cancel() to cancel its coroutine, a gather to cancel
  /// its children; a plain future is cancelled on the spot.
  virtual cancel_action intercept_cancel(std::string& message)
  {
    (void)message;
    return cancel_action::now;
  }

  loop_core& core() const noexcept { return *core_; }

  /// Throws if the future is done already; @c what names the call.
  void check_pending(const char* what) const
  {
    if (status_ != status::pending)
      throw invalid_state_error(std::string(what) + "() on a future that is "
          + (status_ == status::cancelled ? "cancelled" : "already done")
          + ": a future completes once");
  }

  /// The exception result() throws, or null for a value.
  std::exception_ptr failure()
  {
    if (status_ != status::cancelled)
      exception_retrieved_ = true;
    return error_;
  }

  // The small members first: they fill loop_resource's tail padding. A
  // burst of futures is a burst of fresh memory, so every byte counts.
  status status_ = status::pending;
  bool exception_retrieved_ = false;
  std::uint32_t next_id_ = 1; // callback ids, unique per future
  loop_core* core_;
  // The exception set; once cancelled, the cancelled_error (made at cancel
  // time, so that the message needs no member of its own).
  std::exception_ptr error_;

protected:
  ~future_state_base() = default;
};

template <typename T>
struct future_value
{
  std::optional<T> value_;
};

template <>
struct future_value<void>
{
};

template <typename T>
class future_state : public future_state_base,
                           public future_value<T>,
                           public std::enable_shared_from_this<future_state<T>>
{
public:
  using future_state_base::future_state_base;

  ~future_state()
  {
    if (this->tracked())
      core_->untrack(*this);
  }

  struct entry
  {
    callback_id id{};
    void (*key)() = nullptr; // the callback, when it is a function pointer
    done_callback_ptr<T> callback;
  };

  /// The pending done callbacks in order. The first is stored inline: most
  /// futures have one (an awaiting coroutine, or one callback); the others
  /// out of line, so that they cost the common future one pointer.
  class callback_list
  {
  public:
    bool empty() const noexcept { return !first_.callback; }

    void push(entry e)
    {
      if (empty())
        first_ = std::move(e);
      else
      {
        if (!rest_)
          rest_ = std::make_unique<std::vector<entry>>();
        rest_->push_back(std::move(e));
      }
    }

    template <typename Pred>
    std::size_t erase_if(Pred pred)
    {
      std::size_t n = 0;
      if (!empty() && pred(first_))
      {
        first_ = entry{};
        n = 1;
      }
      if (rest_)
      {
        n += std::erase_if(*rest_, pred);
        if (empty() && !rest_->empty())
        {
          first_ = std::move(rest_->front());
          rest_->erase(rest_->begin());
        }
      }
      return n;
    }

    /// Empties the list, then calls @c f on each entry in order.
    template <typename F>
    void take_all(F f)
    {
      if (empty())
        return;
      entry first = std::move(first_);
      first_ = entry{};
      std::unique_ptr<std::vector<entry>> rest = std::move(rest_);
      f(first);
      if (rest)
        for (auto& e : *rest)
          f(e);
    }

  private:
    entry first_;
    std::unique_ptr<std::vector<entry>> rest_;
  };

  /// The loop is closing: waiting coroutines and callbacks are destroyed.
  void drop() noexcept override
  {
    auto keep = this->shared_from_this();
    callbacks_.take_all([](entry&) {});
  }

  callback_list callbacks_;
};

/// Runs one done callback as loop work.
template <typename T>
struct run_done_callback
{
  future<T> fut;
  done_callback_ptr<T> callback;
  void operator()() { callback->run(fut); }
};

template <typename T, typename Handler>
class future_waiter;

template <bool Outcomes, typename Result, typename Children>
class gather_state;

/// Makes a shared state of type @c S for loop @c core: from the loop's slab
/// when called from its work and @c S fits a slot, else from the heap.
template <typename S, typename... A>
std::shared_ptr<S> make_loop_state(loop_core& core, A&&... a)
{
  // The shared_ptr control block adds a vtable pointer, two counts and the
  // allocator to the state.
  constexpr std::size_t slot = slab_class_for(sizeof(S) + 24);
  if constexpr (slot != 0)
  {
    if (node_slab* slab = core.local_slab())
      if (node_slab* c = slab->size_class(slot))
        return std::allocate_shared<S>(
            slab_allocator<S, slot>(c), std::forward<A>(a)...);
  }
  return std::make_shared<S>(std::forward<A>(a)...);
}

} // namespace detail

/// A result that will be set later, by loop work: asyncio's Future.
/**
 * A future is a cheap, copyable handle: every copy refers to the same
 * shared state. It belongs to the loop that created it and is used from
 * that loop's work (complete it from another thread through
 * call_soon_threadsafe()).
 *
 * A future is an Asio asynchronous operation with the completion signature
 * `void(std::exception_ptr, T)` (`void(std::exception_ptr)` for `void`), so
 * `co_await std::move(fut)` works in any `asio::awaitable` and leaves the
 * handle valid, and any completion token may be passed: `fut(token)`.
 *
 * @par asyncio equivalent
 * `asyncio.Future`
 */
template <typename T>
class future
{
public:
  using value_type = T;

  /// Constructs a handle that refers to no future; only valid() may be used.
  future() noexcept = default;

  /// Returns true if the handle refers to a future.
  bool valid() const noexcept { return st_ != nullptr; }

  /// Returns true once a result or an exception is set, or after cancel().
  bool done() const noexcept
  {
    return st_->status_ != detail::future_state_base::status::pending;
  }

  /// Returns true if the future was cancelled.
  bool cancelled() const noexcept
  {
    return st_->status_ == detail::future_state_base::status::cancelled;
  }

  /// Returns the result, or rethrows the exception that was set.
  /**
   * @throws invalid_state_error if the future is not done.
   * @throws cancelled_error if it was cancelled; what() holds the message.
   */
  std::conditional_t<std::is_void_v<T>, void, std::add_lvalue_reference_t<const T>>
  result() const
  {
    if (!done())
      throw invalid_state_error(
          "result() on a future that is not done: await it, or use "
          "add_done_callback()");
    if (auto e = st_->failure())
      std::rethrow_exception(e);
    if constexpr (!std::is_void_v<T>)
      return *st_->value_;
  }

  /// Returns the exception that was set, or null if a result was set.
  /**
   * @throws invalid_state_error if the future is not done.
   * @throws cancelled_error if it was cancelled.
   */
  std::exception_ptr exception() const
  {
    if (!done())
      throw invalid_state_error("exception() on a future that is not done");
    if (cancelled())
      std::rethrow_exception(st_->failure());
    st_->exception_retrieved_ = true;
    return st_->error_;
  }

  /// Returns the loop the future belongs to.
  event_loop& get_loop() const noexcept { return *st_->core().owner(); }

  /// Sets the result and schedules the done callbacks.
  /**
   * @throws invalid_state_error if the future is done or cancelled.
   */
  template <typename U = T>
    requires(!std::is_void_v<T> && std::is_constructible_v<T, U &&>)
  void set_result(U&& value)
  {
    st_->check_pending("set_result");
    st_->value_.emplace(std::forward<U>(value));
    st_->error_ = nullptr; // a task's pending cancel() request
    finish(detail::future_state_base::status::finished);
  }

  /// Marks a `future<void>` done and schedules the done callbacks.
  void set_result()
    requires std::is_void_v<T>
  {
    st_->check_pending("set_result");
    st_->error_ = nullptr; // a task's pending cancel() request
    finish(detail::future_state_base::status::finished);
  }

  /// Sets an exception and schedules the done callbacks.
  /**
   * @throws invalid_state_error if the future is done or cancelled.
   * @throws std::invalid_argument if @c e is null.
   */
  void set_exception(std::exception_ptr e)
  {
    if (!e)
      throw std::invalid_argument("set_exception() needs an exception");
    st_->check_pending("set_exception");
    st_->error_ = std::move(e);
    finish(detail::future_state_base::status::finished);
  }

  /// Cancels the future and schedules the done callbacks.
  /**
   * @param message Carried to cancelled_error::what().
   * @returns false if the future was already done or cancelled.
   */
  bool cancel(std::string message = {})
  {
    if (done())
      return false;
    switch (st_->intercept_cancel(message))
    {
    case detail::future_state_base::cancel_action::deferred:
      return true;
    case detail::future_state_base::cancel_action::refused:
      return false;
    case detail::future_state_base::cancel_action::now:
      break;
    }
    cancel_now(std::move(message));
    return true;
  }

  /// Marks the future cancelled at once. (Internal: a task's end.)
  void cancel_now(std::string message)
  {
    st_->error_ = std::make_exception_ptr(cancelled_error(message));
    finish(detail::future_state_base::status::cancelled);
  }

  /// Adds a callback, called as `cb(f, args...)` once the future is done.
  /**
   * Callbacks run through the loop's ready queue (as call_soon), in the
   * order they were added; one added to a done future is scheduled at once.
   * The arguments are stored by value.
   *
   * @returns An id for remove_done_callback().
   *
   * @par asyncio equivalent
   * `fut.add_done_callback(functools.partial(cb, *args))`
   */
  template <typename F, typename... Args>
  callback_id add_done_callback(F&& cb, Args&&... args)
  {
    static_assert(std::is_invocable_v<std::decay_t<F>, const future<T>&,
                      std::decay_t<Args>...>,
        "asioloop: a done callback is called as cb(future, args...)");
    void (*key)() = nullptr;
    if constexpr (std::is_pointer_v<std::decay_t<F>>
        && std::is_function_v<std::remove_pointer_t<std::decay_t<F>>>)
      key = reinterpret_cast<void (*)()>(cb);
    using callback_type = detail::bound_done_callback<T, std::decay_t<F>,
        std::decay_t<Args>...>;
    return add(detail::slab_new<detail::done_callback<T>, callback_type,
                   detail::done_callback_release>(
                   st_->core().local_slab(), std::forward<F>(cb),
                   std::forward<Args>(args)...),
        key);
  }

  /// Removes every pending done callback that is the function @c fn.
  /**
   * @returns The number of callbacks removed.
   *
   * @par asyncio equivalent
   * `fut.remove_done_callback(fn)`
   */
  template <typename R, typename... A>
  std::size_t remove_done_callback(R (*fn)(A...))
  {
    const auto key = reinterpret_cast<void (*)()>(fn);
    return st_->callbacks_.erase_if(
        [key](const auto& e) { return e.key == key; });
  }

  /// Removes the pending done callback that add_done_callback() returned
  /// @c id for; returns 1 if it was there, else 0.
  std::size_t remove_done_callback(callback_id id)
  {
    return st_->callbacks_.erase_if(
        [id](const auto& e) { return e.id == id; });
  }

  /// Waits for the future as an Asio asynchronous operation.
  /**
   * The wake-up is one more done callback, so callbacks added before it run
   * before the waiter resumes. A future already done completes on the next
   * iteration. Cancelling the wait through the handler's cancellation slot
   * cancels the future, as cancelling an awaiting task does in asyncio.
   *
   * @par Completion Signature
   * @code void(std::exception_ptr, T) @endcode
   * (`void(std::exception_ptr)` for `future<void>`). A cancelled future
   * completes with a cancelled_error.
   *
   * @par Example
   * @code
   * std::string s = co_await std::move(fut); // or: co_await fut();
   * @endcode
   */
  template <boost::asio::completion_token_for<detail::future_signature<T>>
          Token = boost::asio::deferred_t>
  auto operator()(Token&& token = Token{}) const
  {
    return boost::asio::async_initiate<Token, detail::future_signature<T>>(
        initiate_wait{st_}, token);
  }

  friend bool operator==(const future& a, const future& b) noexcept
  {
    return a.st_ == b.st_;
  }

  /// Prints `<future pending>`, `<future finished result=42>`,
  /// `<future finished exception=std::runtime_error('boom')>` or
  /// `<future cancelled>`, as asyncio's repr().
  friend std::ostream& operator<<(std::ostream& os, const future& f)
  {
    os << "<future ";
    f.print_state(os);
    return os << '>';
  }

  /// Constructs a handle to @c st. (Internal.)
  explicit future(std::shared_ptr<detail::future_state<T>> st) noexcept
    : st_(std::move(st))
  {
  }

protected:
  const std::shared_ptr<detail::future_state<T>>& state_ptr() const noexcept
  {
    return st_;
  }

  /// Writes the state part of the repr, as `finished result='A'`.
  void print_state(std::ostream& os) const
  {
    using status = detail::future_state_base::status;
    if (st_->status_ == status::pending)
      os << "pending";
    else if (st_->status_ == status::cancelled)
      os << "cancelled";
    else if (st_->error_)
      print_exception(os, st_->error_);
    else
    {
      os << "finished result=";
      if constexpr (std::is_void_v<T>)
        os << "None";
      else
        print_value(os, *st_->value_);
    }
  }

private:
  template <typename U, typename Handler>
  friend class detail::future_waiter;
  template <bool Outcomes, typename Result, typename Children>
  friend class detail::gather_state; // adds its links with add()

  static void print_exception(std::ostream& os, const std::exception_ptr& e)
  {
    os << "finished exception=";
    try
    {
      std::rethrow_exception(e);
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

  template <typename V>
  static void print_value(std::ostream& os, const V& v)
  {
    if constexpr (std::is_convertible_v<const V&, std::string_view>)
      os << '\'' << std::string_view(v) << '\'';
    else if constexpr (requires { os << v; })
      os << v;
    else
      os << '<' << boost::core::demangle(typeid(V).name()) << '>';
  }

  callback_id add(detail::done_callback_ptr<T> cb, void (*key)())
  {
    const auto id = callback_id{st_->next_id_++};
    if (done())
      st_->core().post(1, detail::run_done_callback<T>{*this, std::move(cb)});
    else
    {
      st_->callbacks_.push({id, key, std::move(cb)});
      st_->core().track(*st_);
    }
    return id;
  }

  void finish(detail::future_state_base::status s)
  {
    auto& core = st_->core();
    if (!st_->callbacks_.empty() && core.closed())
      throw loop_closed_error("completing a future with callbacks");
    st_->status_ = s;
    core.untrack(*st_);
    st_->callbacks_.take_all([&](auto& e) {
      core.post(1, detail::run_done_callback<T>{*this, std::move(e.callback)});
    });
  }

  struct initiate_wait;

  std::shared_ptr<detail::future_state<T>> st_;
};

namespace detail {

/// The wake-up of a coroutine (or any handler) waiting for a future.
template <typename T, typename Handler>
class future_waiter final : public owned_done_callback<T>
{
public:
  explicit future_waiter(Handler h) : handler_(std::move(h)) {}

  void run(const future<T>& f) override
  {
    auto& st = *f.st_;
    std::exception_ptr e = st.failure();
    if constexpr (std::is_void_v<T>)
      complete_from_loop(std::move(handler_), st.core(), e);
    else
      complete_from_loop(std::move(handler_), st.core(), e,
          e ? T{} : T(*st.value_));
  }

private:
  Handler handler_;
};

/// Installed in the waiter's cancellation slot: cancels the future.
template <typename T>
struct future_canceller
{
  std::weak_ptr<future_state<T>> state;

  void operator()(boost::asio::cancellation_type_t type)
  {
    using boost::asio::cancellation_type;
    if ((type & (cancellation_type::terminal | cancellation_type::partial
                    | cancellation_type::total)) == cancellation_type::none)
      return;
    if (auto st = state.lock())
      future<T>(st).cancel();
  }
};

} // namespace detail

template <typename T>
struct future<T>::initiate_wait
{
  std::shared_ptr<detail::future_state<T>> st;

  template <typename Handler>
  void operator()(Handler&& handler) const
  {
    static_assert(std::is_void_v<T>
            || (std::is_default_constructible_v<T> && std::is_copy_constructible_v<T>),
        "asioloop: awaiting a future<T> needs a copyable, default-constructible "
        "T (each waiter gets a copy; the error path needs a T, as co_spawn's)");
    using handler_type = std::decay_t<Handler>;
    auto slot = boost::asio::get_associated_cancellation_slot(handler);
    future<T> f(st);
    auto waiter = detail::slab_new<detail::done_callback<T>,
        detail::future_waiter<T, handler_type>, detail::done_callback_release>(
        st->core().local_slab(), handler_type(std::forward<Handler>(handler)));
    const bool was_done = f.done();
    f.add(std::move(waiter), nullptr);
    if (!was_done && slot.is_connected())
      slot.template emplace<detail::future_canceller<T>>(
          detail::future_canceller<T>{st});
  }
};

/// Creates a future that belongs to this loop.
/**
 * @par asyncio equivalent
 * `loop.create_future()`
 */
template <typename T>
future<T> event_loop::create_future()
{
  if (core_->closed())
    throw loop_closed_error("create_future");
  return future<T>(
      detail::make_loop_state<detail::future_state<T>>(*core_, *core_));
}

} // namespace asioloop

#endif // ASIOLOOP_FUTURE_HPP
