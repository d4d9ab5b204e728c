//
// asioloop/version.hpp
//
// Distributed under the Boost Software License, Version 1.0.
//

#ifndef ASIOLOOP_VERSION_HPP
#define ASIOLOOP_VERSION_HPP

/// The library version: major * 100000 + minor * 100 + patch.
#define ASIOLOOP_VERSION 100            // 0.1.0
#define ASIOLOOP_VERSION_STRING "0.1.0"

#endif // ASIOLOOP_VERSION_HPP
