//
// asioloop/handle.hpp
//
// Distributed under the Boost Software License, Version 1.0.
//

#ifndef ASIOLOOP_HANDLE_HPP
#define ASIOLOOP_HANDLE_HPP

#include <asioloop/clock.hpp>
#include <asioloop/detail/callback.hpp>

#include <utility>

namespace asioloop {

/// A cancellable reference to a callback scheduled with call_soon.
/**
 * Handles are cheap to copy: every copy refers to the same scheduled
 * callback. A handle may outlive its callback; the callable and its bound
 * arguments are destroyed as soon as the callback has run or been discarded.
 *
 * @par Thread Safety
 * Distinct objects: Safe. Shared objects: cancel() and cancelled() may be
 * called from any thread; cancelling from another thread races with the run,
 * so use it from loop work to be sure the callback will not run.
 *
 * @par asyncio equivalent
 * `asyncio.Handle`
 */
class handle
{
public:
  /// Constructs an empty handle, referring to no callback.
  handle() noexcept = default;

  handle(const handle& other) noexcept : node_(other.node_)
  {
    if (node_)
      node_->add_ref();
  }

  handle(handle&& other) noexcept : node_(std::exchange(other.node_, nullptr)) {}

  handle& operator=(handle other) noexcept
  {
    std::swap(node_, other.node_);
    return *this;
  }

  ~handle()
  {
    if (node_)
      node_->release();
  }

  /// Cancels the callback: if it has not run yet, it never will.
  /**
   * Cancelling a callback that already ran or was cancelled does nothing.
   */
  void cancel() noexcept
  {
    if (node_)
      node_->cancel();
  }

  /// Returns true if cancel() was called on this callback.
  bool cancelled() const noexcept { return node_ && node_->cancelled(); }

  /// Returns true if the handle refers to a callback.
  explicit operator bool() const noexcept { return node_ != nullptr; }

  /// Constructs a handle that adopts one reference to @c node. (Internal.)
  explicit handle(detail::callback_node* node) noexcept : node_(node) {}

private:
  detail::callback_node* node_ = nullptr;
};

/// A cancellable reference to a callback scheduled with call_later or call_at.
/**
 * @par asyncio equivalent
 * `asyncio.TimerHandle`
 */
class timer_handle : public handle
{
public:
  /// Constructs an empty handle, referring to no callback.
  timer_handle() noexcept = default;

  /// The time the callback is due, on the loop's clock.
  clock::time_point when() const noexcept { return when_; }

  /// Constructs a handle that adopts one reference to @c node. (Internal.)
  timer_handle(detail::callback_node* node, clock::time_point when) noexcept
    : handle(node), when_(when)
  {
  }

private:
  clock::time_point when_{};
};

} // namespace asioloop

#endif // ASIOLOOP_HANDLE_HPP
