//
// asioloop/detail/node_slab.hpp
//
// Distributed under the Boost Software License, Version 1.0.
//
// Fixed-size slots for the callback nodes that loop work creates (call_soon,
// coroutine wake-ups, executor posts from loop work).
//
// Why: a burst of queued callbacks needs a burst of fresh memory, and on a VM
// the first touch of each 4 KiB page costs microseconds. The slab takes
// memory in growing chunks, pre-faulted in one system call (backed by
// transparent huge pages where the kernel has them), and recycles slots
// without locks.
//
// Who frees: a slot is freed where its node's last reference dies. In loop
// work that is a push onto a plain free list; anywhere else (a handle dropped
// by another thread, or outside the loop's run) it is a lock-free push onto
// the remote stack, which loop work takes back in one exchange. A slab whose
// loop is gone while user handles still hold nodes is orphaned: it counts the
// nodes still out and frees itself with the last one.
//
// Size classes: the loop's slab has 64-byte slots (callback nodes, small
// done callbacks); future states and task entry frames made by loop work
// take 128-, 192-, 224- or 256-byte slots from companion slabs of the same
// kind, made on first use. Each companion counts its own slots and is
// orphaned with the loop's slab, so a state that outlives the loop frees
// safely, whatever happened to the nodes.
//

#ifndef ASIOLOOP_DETAIL_NODE_SLAB_HPP
#define ASIOLOOP_DETAIL_NODE_SLAB_HPP

#include <atomic>
#include <cstddef>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define ASIOLOOP_SLAB_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ASIOLOOP_SLAB_ASAN 1
#endif
#endif

#if defined(ASIOLOOP_SLAB_ASAN)
#include <sanitizer/asan_interface.h>
// A free slot is poisoned past its link, so that AddressSanitizer still sees
// a node used after its release, as it would for heap memory.
#define ASIOLOOP_SLAB_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define ASIOLOOP_SLAB_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define ASIOLOOP_SLAB_POISON(p, n) ((void)(p), (void)(n))
#define ASIOLOOP_SLAB_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace asioloop::detail {

class loop_core;

/// The loop whose work the calling thread is running, if any.
extern constinit thread_local loop_core* running_core;

class node_slab
{
public:
  /// The slot size of the loop's own slab (the callback nodes' class).
  static constexpr std::size_t slot_size = 64;

  /// The companion classes. 192 and 224 are there for tasks: a task's state
  /// is just over 128 bytes, its entry frame just under 224, and each slot
  /// byte they do not use is fresh memory in a burst of tasks.
  static constexpr std::size_t class_count = 4;
  static constexpr std::size_t class_sizes[class_count] = {128, 192, 224, 256};
  static constexpr std::size_t largest_class = class_sizes[class_count - 1];

  /// Chunks kept when the slab is trimmed: 16 + 32 + ... + 512 KiB, room for
  /// about 16,000 nodes, so that ordinary bursts never go back to the kernel.
  static constexpr std::size_t kept_chunks = 6;

  static node_slab* create(const loop_core* owner);

  /// The size of this slab's slots.
  std::size_t slot_bytes() const noexcept { return size_; }

  /// The slab whose slots are the smallest that hold @c bytes: this one, or
  /// a companion made on first use. Null if none is that large, or if no
  /// memory could be had. Loop work only, on the loop's own slab.
  node_slab* size_class(std::size_t bytes) noexcept
  {
    if (bytes <= size_)
      return this;
    for (std::size_t i = 0; i < class_count; ++i)
      if (bytes <= class_sizes[i])
        return classes_[i] ? classes_[i] : make_class(i);
    return nullptr;
  }

  /// Returns a slot, or null if no memory could be had. Loop work only.
  void* allocate() noexcept
  {
    if (void* p = free_)
    {
      free_ = *static_cast<void**>(p);
      ++live_;
      ASIOLOOP_SLAB_UNPOISON(p, size_);
      return p;
    }
    if (bump_ != bump_end_)
    {
      void* p = bump_;
      bump_ += size_;
      ++live_;
      ASIOLOOP_SLAB_UNPOISON(p, size_);
      return p;
    }
    return allocate_slow();
  }

  /// Frees @c slot, from any thread.
  void deallocate(void* slot) noexcept
  {
    ASIOLOOP_SLAB_POISON(static_cast<char*>(slot) + sizeof(void*),
        size_ - sizeof(void*));
    if (running_core == owner_ && !orphaned_.load(std::memory_order_relaxed))
    {
      *static_cast<void**>(slot) = free_;
      free_ = slot;
      --live_;
    }
    else
      deallocate_remote(slot);
  }

  /// Gives memory beyond the first chunks back once every slot is free.
  /// Loop work only; the loop calls it when it goes idle.
  void trim() noexcept
  {
    if (live_ == 0 && chunks_.size() > kept_chunks)
      release_chunks();
    for (node_slab* c : classes_)
      if (c)
        c->trim();
  }

  /// The loop is gone: frees the slab (and each companion) now, or with its
  /// last slot.
  void orphan() noexcept;

private:
  node_slab(const loop_core* owner, std::size_t size) noexcept
    : owner_(owner), size_(size)
  {
  }
  ~node_slab();

  node_slab* make_class(std::size_t i) noexcept;

  /// The bytes of a chunk of @c chunk bytes that whole slots fill: the bump
  /// pointer must land exactly on the end (192 does not divide a chunk).
  std::size_t usable(std::size_t chunk) const noexcept
  {
    return chunk - chunk % size_;
  }
  void* allocate_slow() noexcept;
  void deallocate_remote(void* slot) noexcept;
  std::size_t reclaim_remote() noexcept;
  void release_chunks() noexcept;

  struct chunk
  {
    char* data;
    std::size_t size;
    bool mapped;
  };

  const loop_core* owner_;
  const std::size_t size_;
  node_slab* classes_[class_count] = {}; // the companions, on the loop's slab
  void* free_ = nullptr;
  char* bump_ = nullptr;
  char* bump_end_ = nullptr;
  std::size_t live_ = 0; // slots handed out and not yet back on free_
  std::vector<chunk> chunks_;
  std::size_t bump_chunk_ = 0; // the chunk bump_ runs through

  std::atomic<void*> remote_{nullptr};
  std::atomic<bool> orphaned_{false};
  std::atomic<std::size_t> orphan_live_{0};
};

} // namespace asioloop::detail

#endif // ASIOLOOP_DETAIL_NODE_SLAB_HPP
