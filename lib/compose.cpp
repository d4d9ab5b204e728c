//
// lib/compose.cpp
//
// Distributed under the Boost Software License, Version 1.0.
//

#include <asioloop/compose.hpp>

#include <cstdio>

namespace asioloop::detail {

void report_unseen(event_loop& loop, const std::string& what,
    const std::string& source, std::exception_ptr e) noexcept
{
  try
  {
    if (loop.is_closed())
      return;
    loop.call_exception_handler({what + ": " + source, std::move(e)});
  }
  catch (...)
  {
    // Out of memory while building the message: nothing better to do.
  }
}

std::string describe_duration(clock::duration d)
{
  using namespace std::chrono;
  char buf[48];
  if (d >= seconds(1))
    std::snprintf(buf, sizeof buf, "%g s", duration<double>(d).count());
  else if (d >= milliseconds(1))
    std::snprintf(buf, sizeof buf, "%g ms", duration<double, std::milli>(d).count());
  else
    std::snprintf(buf, sizeof buf, "%g us", duration<double, std::micro>(d).count());
  return buf;
}

} // namespace asioloop::detail
