//
// asioloop/detail/asio_compat.hpp
//
// Distributed under the Boost Software License, Version 1.0.
//
// Workarounds for Boost.Asio bugs that asioloop runs into, each behind a
// version check.
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

#endif // ASIOLOOP_DETAIL_ASIO_COMPAT_HPP
