//
// asioloop/detail/slab_allocator.hpp
//
// Distributed under the Boost Software License, Version 1.0.
//
// Slab memory for the objects loop work makes by the hundred thousand:
// future states (through std::allocate_shared) and done callbacks.
//
// Why: a burst of futures, all alive before the first completes, is a burst
// of fresh memory; from malloc every new 4 KiB page costs a fault, from the
// loop's slab the pages were faulted in bulk (see node_slab.hpp).
//

#ifndef ASIOLOOP_DETAIL_SLAB_ALLOCATOR_HPP
#define ASIOLOOP_DETAIL_SLAB_ALLOCATOR_HPP

#include <asioloop/detail/node_slab.hpp>

#include <cstddef>
#include <cstring>
#include <memory>
#include <new>
#include <utility>

namespace asioloop::detail {

/// The smallest slot class that holds @c bytes, or 0 if none does.
constexpr std::size_t slab_class_for(std::size_t bytes) noexcept
{
  if (bytes <= node_slab::slot_size)
    return node_slab::slot_size;
  for (std::size_t c : node_slab::class_sizes)
    if (bytes <= c)
      return c;
  return 0;
}

/// An allocator for std::allocate_shared that takes one slot of @c Slot
/// bytes from @c slab (a slab of that class) when the block fits, and the
/// heap otherwise. The choice depends only on the types, so deallocation
/// never has to ask the slab (which may be gone when the block came from
/// the heap).
template <typename U, std::size_t Slot>
class slab_allocator
{
public:
  using value_type = U;

  template <typename V>
  struct rebind
  {
    using other = slab_allocator<V, Slot>;
  };

  explicit slab_allocator(node_slab* slab) noexcept : slab_(slab) {}

  template <typename V>
  slab_allocator(const slab_allocator<V, Slot>& other) noexcept
    : slab_(other.slab_)
  {
  }

  U* allocate(std::size_t n)
  {
    if (fits(n))
    {
      if (void* p = slab_->allocate())
        return static_cast<U*>(p);
      throw std::bad_alloc();
    }
    return std::allocator<U>().allocate(n);
  }

  void deallocate(U* p, std::size_t n) noexcept
  {
    if (fits(n))
      slab_->deallocate(p);
    else
      std::allocator<U>().deallocate(p, n);
  }

  template <typename V>
  bool operator==(const slab_allocator<V, Slot>& other) const noexcept
  {
    return slab_ == other.slab_;
  }

private:
  template <typename V, std::size_t S>
  friend class slab_allocator;

  static constexpr bool fits(std::size_t n) noexcept
  {
    return n == 1 && sizeof(U) <= Slot
        && alignof(U) <= alignof(std::max_align_t);
  }

  node_slab* slab_;
};

/// Deletes an object made by slab_new(): destroys it through its virtual
/// destructor, then gives its memory back to where it came from.
struct slab_deleter
{
  template <typename B>
  void operator()(B* p) const noexcept
  {
    if (node_slab* s = p->slab_)
    {
      p->~B();
      s->deallocate(p);
    }
    else
      delete p;
  }
};

/// Makes a @c D (derived from @c B, which has a virtual destructor; @c D
/// has a public `node_slab* slab_` member) in a 64-byte slot of @c slab
/// when it fits and @c slab is given, on the heap otherwise. @c Deleter
/// frees it through slab_deleter, directly or not.
template <typename B, typename D, typename Deleter = slab_deleter, typename... A>
std::unique_ptr<B, Deleter> slab_new(node_slab* slab, A&&... a)
{
  if constexpr (sizeof(D) <= node_slab::slot_size
      && alignof(D) <= alignof(std::max_align_t))
  {
    if (slab)
      if (void* p = slab->allocate())
      {
        D* d;
        try
        {
          d = ::new (p) D(std::forward<A>(a)...);
        }
        catch (...)
        {
          slab->deallocate(p);
          throw;
        }
        d->slab_ = slab;
        return std::unique_ptr<B, Deleter>(d);
      }
  }
  return std::unique_ptr<B, Deleter>(new D(std::forward<A>(a)...));
}

/// Memory for a coroutine frame of asioloop's own: a slot of @c slab's
/// smallest class that holds it, or the heap when there is no slab (the
/// caller is not loop work), no class that large, or no memory in the slab.
/// The pointer after the frame names the slab, or is null for the heap:
/// there, rather than in front, it leaves the frame's alignment alone.
inline void* frame_allocate(node_slab* slab, std::size_t size)
{
  // A frame needs operator new's alignment: every slot of every class has
  // it, as long as the class sizes are multiples of it.
  static_assert([] {
    for (std::size_t c : node_slab::class_sizes)
      if (c % alignof(std::max_align_t) != 0)
        return false;
    return true;
  }());
  const std::size_t bytes = size + sizeof(node_slab*);
  node_slab* c = slab ? slab->size_class(bytes) : nullptr;
  void* p = c ? c->allocate() : nullptr;
  if (!p)
  {
    p = ::operator new(bytes);
    c = nullptr;
  }
  std::memcpy(static_cast<char*>(p) + size, &c, sizeof c);
  return p;
}

/// Frees a frame of @c size bytes that frame_allocate() gave, from any
/// thread.
inline void frame_deallocate(void* frame, std::size_t size) noexcept
{
  node_slab* c;
  std::memcpy(&c, static_cast<char*>(frame) + size, sizeof c);
  if (c)
    c->deallocate(frame);
  else
    ::operator delete(frame);
}

} // namespace asioloop::detail

#endif // ASIOLOOP_DETAIL_SLAB_ALLOCATOR_HPP
