//
// asioloop/detail/callback.hpp
//
// Distributed under the Boost Software License, Version 1.0.
//
// The node every piece of loop work travels in: call_soon callbacks,
// call_soon_threadsafe callbacks and handlers posted through the loop's
// executor. One allocation holds the intrusive queue link, the reference count
// shared with the user's handle, and the callable with its bound arguments.
//

#ifndef ASIOLOOP_DETAIL_CALLBACK_HPP
#define ASIOLOOP_DETAIL_CALLBACK_HPP

#include <asioloop/detail/node_cache.hpp>
#include <asioloop/detail/node_slab.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <new>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>

namespace asioloop::detail {

class callback_node
{
public:
  enum class action
  {
    invoke,     // run the callable, then destroy it
    destroy,    // destroy the callable without running it
    deallocate, // free the node's memory (the callable is already gone)
    describe    // return the callable's type, for error reports
  };
  // One function pointer does all four, to keep the node small: a million
  // queued callbacks are a million nodes of fresh memory.
  using func_type = const std::type_info* (*)(callback_node*, action);

  // The callable is destroyed as soon as the node leaves the queue, so that a
  // handle kept by the user does not keep the bound arguments alive.
  void invoke() { func_(this, action::invoke); }
  void destroy() noexcept { func_(this, action::destroy); }

  void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }

  void release() noexcept
  {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1)
    {
      if (slab_)
        slab_->deallocate(this);
      else if (cached_)
        node_cache::deallocate(this);
      else
        func_(this, action::deallocate);
    }
  }

  void cancel() noexcept { cancelled_.store(true, std::memory_order_relaxed); }
  bool cancelled() const noexcept
  {
    return cancelled_.load(std::memory_order_relaxed);
  }

  const std::type_info& type() noexcept { return *func_(this, action::describe); }

  callback_node* next_ = nullptr;

protected:
  callback_node(func_type f, node_slab* slab, bool cached,
      std::uint32_t refs) noexcept
    : func_(f), slab_(slab), refs_(refs), cached_(cached)
  {
  }
  ~callback_node() = default;

private:
  func_type func_;
  node_slab* slab_; // where the memory came from, or null for the heap
  std::atomic<std::uint32_t> refs_;
  std::atomic<bool> cancelled_{false};
  bool cached_; // memory from node_cache (when slab_ is null)
};

template <typename Fn>
class callback_impl final : public callback_node
{
public:
  template <typename... A>
  explicit callback_impl(
      node_slab* slab, bool cached, std::uint32_t refs, A&&... a)
    : callback_node(&do_func, slab, cached, refs), fn_(std::forward<A>(a)...)
  {
  }

private:
  static const std::type_info* do_func(callback_node* base, action a)
  {
    auto* self = static_cast<callback_impl*>(base);
    switch (a)
    {
    case action::invoke:
    {
      // Destroy the callable even when it throws: the exception is reported
      // by the loop and the node must not run or be destroyed again.
      struct guard
      {
        Fn* fn;
        ~guard() { fn->~Fn(); }
      } g{std::addressof(self->fn_)};
      std::invoke(std::move(self->fn_));
      break;
    }
    case action::destroy:
      self->fn_.~Fn();
      break;
    case action::deallocate:
      // fn_ was destroyed by invoke or destroy; only the storage is left.
      ::operator delete(static_cast<void*>(self));
      break;
    case action::describe:
      return &typeid(Fn);
    }
    return nullptr;
  }

  // A union, so that the callable can die before the node's memory does.
  union { Fn fn_; };

public:
  ~callback_impl() {}

  /// The stored callable, alive until the node leaves the queue.
  Fn& function() noexcept { return fn_; }
};

/// Binds a callable to its arguments, stored by value, called once as an rvalue.
template <typename F, typename... Args>
class bound_call
{
public:
  template <typename F2, typename... A>
  explicit bound_call(F2&& f, A&&... a)
    : f_(std::forward<F2>(f)), args_(std::forward<A>(a)...)
  {
  }

  // Called once, so the arguments are passed as rvalues, as std::thread does.
  void operator()() &&
  {
    std::apply(
        [this](Args&... a) { std::invoke(std::move(f_), std::move(a)...); },
        args_);
  }

private:
  F f_;
  std::tuple<Args...> args_;
};

/// Allocates a node holding `f`; `refs` counts the queue and any handle.
/**
 * From loop work, pass the loop's slab: a node that fits a slot takes one.
 * Elsewhere a node that fits comes from the thread's node_cache.
 */
template <typename F, typename... A>
callback_node* make_callback(
    node_slab* slab, std::uint32_t refs, F&& f, A&&... a)
{
  using fn_type = std::conditional_t<sizeof...(A) == 0, std::decay_t<F>,
      bound_call<std::decay_t<F>, std::decay_t<A>...>>;
  using impl_type = callback_impl<fn_type>;
  static_assert(std::is_invocable_v<std::decay_t<F>, std::decay_t<A>...>,
      "asioloop: the callback cannot be called with these arguments "
      "(they are stored by value and passed as rvalues)");
  constexpr bool fits = sizeof(impl_type) <= node_slab::slot_size
      && alignof(impl_type) <= alignof(std::max_align_t);
  static_assert(node_cache::block_size == node_slab::slot_size);
  void* p = nullptr;
  bool cached = false;
  if constexpr (fits)
  {
    if (slab)
      p = slab->allocate();
    if (!p)
    {
      slab = nullptr;
      p = node_cache::allocate();
      cached = p != nullptr;
    }
  }
  if (!p)
  {
    slab = nullptr;
    p = ::operator new(sizeof(impl_type));
  }
  try
  {
    return ::new (p) impl_type(
        slab, cached, refs, std::forward<F>(f), std::forward<A>(a)...);
  }
  catch (...)
  {
    if (slab)
      slab->deallocate(p);
    else if (cached)
      node_cache::deallocate(p);
    else
      ::operator delete(p);
    throw;
  }
}

} // namespace asioloop::detail

#endif // ASIOLOOP_DETAIL_CALLBACK_HPP
