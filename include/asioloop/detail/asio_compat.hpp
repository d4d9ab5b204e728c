//
// asioloop/detail/asio_compat.hpp
//
// Distributed under the Boost Software License, Version 1.0.
//
// What depends on the Boost version: workarounds for Boost.Asio bugs that
// asioloop runs into, and the use of Asio internals, each behind a version
// check.
//

#ifndef ASIOLOOP_DETAIL_ASIO_COMPAT_HPP
#define ASIOLOOP_DETAIL_ASIO_COMPAT_HPP

#include <boost/version.hpp>

#include <concepts>
#include <exception>

#if BOOST_VERSION < 108400
// Awaiting an async operation whose completion signature is
// void(std::exception_ptr, T) fails to compile in Boost 1.81 (asio issues
// #1172 and #1190): awaitable_async_op_handler<R(exception_ptr, T)>::resume
// tests `if (*result)` on a struct of two pointers. This operator, found by
// argument-dependent lookup and constrained to exactly that struct's shape,
// reads the stored exception pointer, which is what the test means.
namespace boost::asio::detail {

template <typename Result>
  requires requires(Result& r) {
    { r.ex_ } -> std::same_as<std::exception_ptr*&>;
    r.value_;
  }
std::exception_ptr& operator*(Result& r) noexcept
{
  return *r.ex_;
}

} // namespace boost::asio::detail
#endif

// A task's coroutine is run by a driver of asioloop's own (task.hpp) on the
// Boost versions whose Asio internals it was checked against, and by
// co_spawn elsewhere. The driver launches a coroutine thread as co_spawn
// does (detail::awaitable_handler on a detail::awaitable_thread_entry_point
// frame, whose constructor and launch() are the same from 1.81 to 1.90), but
// with an entry frame of its own: co_spawn's is 512 bytes, and with its
// cancellation proxy it was a third of a task's memory. The entry frame's
// promise derives from Asio's entry-point frame type, to take its memory
// from the loop's slab. Tested on 1.81; 1.82 to 1.90 were checked against
// their sources. Define
// ASIOLOOP_NO_TASK_DRIVER, for the library and the program alike, to use
// co_spawn on any version.
#undef ASIOLOOP_TASK_DRIVER
#if !defined(ASIOLOOP_NO_TASK_DRIVER) && BOOST_VERSION >= 108100 \
    && BOOST_VERSION < 109100
#define ASIOLOOP_TASK_DRIVER 1
#endif

#endif // ASIOLOOP_DETAIL_ASIO_COMPAT_HPP
