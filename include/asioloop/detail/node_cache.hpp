//
// asioloop/detail/node_cache.hpp
//
// Distributed under the Boost Software License, Version 1.0.
//
// Memory for the callback nodes made outside loop work: call_soon_threadsafe
// and executor posts from other threads.
//
// Why: such a node is allocated on one thread and freed on the loop's, so
// with plain malloc every free lands in the producer's arena, under its lock,
// against the producer's own next malloc. Here each thread keeps a small
// cache of 64-byte blocks; blocks freed on a thread gather in batches of
// 256 that move to a process-wide list under a mutex, where an allocating
// thread picks them up: one lock per 256 nodes instead of two per node.
//

#ifndef ASIOLOOP_DETAIL_NODE_CACHE_HPP
#define ASIOLOOP_DETAIL_NODE_CACHE_HPP

#include <cstddef>

namespace asioloop::detail {

struct node_cache
{
  static constexpr std::size_t block_size = 64;

  /// Returns a block of block_size bytes, or null if memory is exhausted.
  static void* allocate() noexcept;

  /// Frees a block from allocate(), on any thread.
  static void deallocate(void* p) noexcept;
};

} // namespace asioloop::detail

#endif // ASIOLOOP_DETAIL_NODE_CACHE_HPP
