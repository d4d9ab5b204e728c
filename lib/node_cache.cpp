//
// lib/node_cache.cpp
//
// Distributed under the Boost Software License, Version 1.0.
//

#include <asioloop/detail/node_cache.hpp>
#include <asioloop/detail/node_slab.hpp> // the AddressSanitizer poisoning macros

#include <cstdlib>
#include <mutex>
#include <new>
#include <vector>

namespace asioloop::detail {

namespace {

constexpr std::size_t batch_size = 256;
// Free batches kept process-wide (about 16 MiB); beyond that blocks go back
// to malloc, so a burst does not pin its peak forever.
constexpr std::size_t max_kept_batches = 1024;

// A batch is a list of blocks linked through their first word.
struct batch
{
  void* head = nullptr;
  std::size_t count = 0;

  void push(void* p) noexcept
  {
    *static_cast<void**>(p) = head;
    head = p;
    ++count;
  }

  void* pop() noexcept
  {
    void* p = head;
    head = *static_cast<void**>(p);
    --count;
    return p;
  }

  void release_all() noexcept
  {
    while (head)
    {
      void* p = pop();
      ASIOLOOP_SLAB_UNPOISON(p, node_cache::block_size);
      std::free(p);
    }
  }
};

class depot
{
public:
  void put(batch b) noexcept
  {
    {
      std::lock_guard lock(mutex_);
      if (full_.size() < max_kept_batches)
      {
        try
        {
          full_.push_back(b);
          return;
        }
        catch (...)
        {
        }
      }
    }
    b.release_all();
  }

  bool take(batch& b) noexcept
  {
    std::lock_guard lock(mutex_);
    if (full_.empty())
      return false;
    b = full_.back();
    full_.pop_back();
    return true;
  }

private:
  std::mutex mutex_;
  std::vector<batch> full_;
};

// Never destroyed: threads may still free blocks while statics die.
depot& the_depot() noexcept
{
  static depot* d = new depot;
  return *d;
}

struct thread_cache
{
  batch ready;    // blocks to allocate from
  batch returned; // blocks freed on this thread, on their way to the depot

  ~thread_cache()
  {
    if (ready.count)
      the_depot().put(ready);
    if (returned.count)
      the_depot().put(returned);
  }
};

thread_local thread_cache cache;

} // namespace

void* node_cache::allocate() noexcept
{
  thread_cache& c = cache;
  if (!c.ready.count)
  {
    // Blocks freed on this very thread come first, then the depot's.
    if (c.returned.count)
      std::swap(c.ready, c.returned);
    else if (!the_depot().take(c.ready))
    {
      void* p = std::malloc(block_size);
      ASIOLOOP_SLAB_UNPOISON(p, block_size);
      return p;
    }
  }
  void* p = c.ready.pop();
  ASIOLOOP_SLAB_UNPOISON(p, block_size);
  return p;
}

void node_cache::deallocate(void* p) noexcept
{
  ASIOLOOP_SLAB_POISON(static_cast<char*>(p) + sizeof(void*),
      block_size - sizeof(void*));
  thread_cache& c = cache;
  c.returned.push(p);
  if (c.returned.count >= batch_size)
  {
    the_depot().put(c.returned);
    c.returned = batch{};
  }
}

} // namespace asioloop::detail
