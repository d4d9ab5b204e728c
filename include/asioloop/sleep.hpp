//
// asioloop/sleep.hpp
//
// Distributed under the Boost Software License, Version 1.0.
//

#ifndef ASIOLOOP_SLEEP_HPP
#define ASIOLOOP_SLEEP_HPP

#include <asioloop/clock.hpp>
#include <asioloop/detail/completion.hpp>
#include <asioloop/event_loop.hpp>

#include <boost/asio/async_result.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/error.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <optional>
#include <type_traits>
#include <utility>

namespace asioloop {
namespace detail {

/// The callable a sleep leaves in the timer heap.
template <typename Handler>
struct sleep_timer_fn
{
  loop_core* core;
  std::optional<Handler> handler; // empty once cancelled

  void operator()()
  {
    if (handler)
      complete_from_loop(std::move(*handler), *core, boost::system::error_code{});
  }
};

/// Installed in the handler's cancellation slot while the sleep waits.
template <typename Handler>
class sleep_canceller
{
public:
  sleep_canceller(loop_core& core, callback_node* node) noexcept
    : core_(&core), node_(node)
  {
    node_->add_ref();
  }
  sleep_canceller(const sleep_canceller&) = delete;
  sleep_canceller& operator=(const sleep_canceller&) = delete;
  ~sleep_canceller() { node_->release(); }

  void operator()(boost::asio::cancellation_type_t type)
  {
    using boost::asio::cancellation_type;
    if (done_ || (type & (cancellation_type::terminal | cancellation_type::partial
                     | cancellation_type::total)) == cancellation_type::none)
      return;
    done_ = true;
    // The timer stays in the heap, cancelled; the handler is woken now, on
    // the next iteration, with operation_aborted.
    node_->cancel();
    auto& fn = static_cast<callback_impl<sleep_timer_fn<Handler>>*>(node_)->function();
    if (!fn.handler)
      return;
    Handler h = std::move(*fn.handler);
    fn.handler.reset();
    core_->post(1,
        [core = core_, h = std::move(h)]() mutable {
          complete_from_loop(std::move(h), *core,
              boost::system::error_code(boost::asio::error::operation_aborted));
        });
  }

private:
  loop_core* core_;
  callback_node* node_;
  bool done_ = false;
};

struct initiate_sleep
{
  template <typename Handler>
  void operator()(Handler&& handler, clock::duration d) const
  {
    using handler_type = std::decay_t<Handler>;
    loop_core* core = running_core;
    if (!core || !core->owner())
      throw no_running_loop_error();
    if (core->closed())
      throw loop_closed_error("sleep");

    if (d <= clock::duration::zero())
    {
      // A plain yield, as in asyncio: one trip through the ready queue.
      core->post(1,
          [core, h = handler_type(std::forward<Handler>(handler))]() mutable {
            complete_from_loop(std::move(h), *core, boost::system::error_code{});
          });
      return;
    }

    auto slot = boost::asio::get_associated_cancellation_slot(handler);
    callback_node* node = core->make_node(1,
        sleep_timer_fn<handler_type>{core,
            handler_type(std::forward<Handler>(handler))});
    if (slot.is_connected())
      slot.template emplace<sleep_canceller<handler_type>>(*core, node);
    core->add_timer(core->now() + d, node);
  }
};

} // namespace detail

/// Waits for @c d on the running loop's timer queue.
/**
 * Ordered with call_later() and call_at() exactly as asyncio orders them,
 * and on the loop's virtual clock when it has one. `sleep(0s)` yields one
 * iteration without touching a timer.
 *
 * Cancellation through the handler's cancellation slot (terminal, partial
 * or total) wakes the waiter at once with `operation_aborted`; inside a
 * coroutine that surfaces as `boost::system::system_error`.
 *
 * @param d Any `std::chrono::duration`.
 * @param token The completion token; by default the operation is deferred,
 * so that `co_await asioloop::sleep(1s);` works in any `asio::awaitable`.
 *
 * @throws no_running_loop_error if initiated outside loop work.
 *
 * @par Completion Signature
 * @code void(boost::system::error_code) @endcode
 *
 * @par asyncio equivalent
 * `await asyncio.sleep(seconds)`
 *
 * @par Example
 * @code
 * co_await asioloop::sleep(500ms);
 * @endcode
 */
template <typename Rep, typename Period,
    boost::asio::completion_token_for<void(boost::system::error_code)> Token =
        boost::asio::deferred_t>
auto sleep(std::chrono::duration<Rep, Period> d, Token&& token = Token{})
{
  return boost::asio::async_initiate<Token, void(boost::system::error_code)>(
      detail::initiate_sleep{}, token,
      std::chrono::duration_cast<clock::duration>(d));
}

} // namespace asioloop

#endif // ASIOLOOP_SLEEP_HPP
