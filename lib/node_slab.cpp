//
// lib/node_slab.cpp
//
// Distributed under the Boost Software License, Version 1.0.
//

#include <asioloop/detail/node_slab.hpp>

#include <algorithm>
#include <cstdint>
#include <new>
#include <utility>

#include <sys/mman.h>

namespace asioloop::detail {

namespace {

// The first chunk is small, so that a loop that runs a few callbacks costs
// little; each next one doubles, up to the size of a huge page.
constexpr std::size_t first_chunk = std::size_t(16) << 10;
constexpr std::size_t huge_page = std::size_t(2) << 20;
constexpr std::size_t mmap_threshold = std::size_t(256) << 10;

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 // Linux 5.14; older kernels say EINVAL
#endif

// Maps @c size bytes aligned to @c size (a power of two), asks for huge
// pages, and faults the whole range in with one system call.
char* map_chunk(std::size_t size) noexcept
{
  void* raw = ::mmap(nullptr, size * 2, PROT_READ | PROT_WRITE,
      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED)
    return nullptr;
  const auto start = reinterpret_cast<std::uintptr_t>(raw);
  const auto aligned = (start + size - 1) & ~(size - 1);
  if (aligned > start)
    ::munmap(raw, aligned - start);
  if (const auto tail = start + size * 2 - (aligned + size); tail > 0)
    ::munmap(reinterpret_cast<void*>(aligned + size), tail);
  auto* p = reinterpret_cast<char*>(aligned);
  ::madvise(p, size, MADV_HUGEPAGE);
  ::madvise(p, size, MADV_POPULATE_WRITE); // only a hint: faults do the rest
  return p;
}

} // namespace

node_slab* node_slab::create(const loop_core* owner)
{
  return new node_slab(owner, slot_size);
}

node_slab* node_slab::make_class(std::size_t i) noexcept
{
  classes_[i] = new (std::nothrow) node_slab(owner_, class_sizes[i]);
  return classes_[i];
}

namespace {

void free_chunk(char* data, std::size_t size, bool mapped) noexcept
{
  ASIOLOOP_SLAB_UNPOISON(data, size);
  if (mapped)
    ::munmap(data, size);
  else
    ::operator delete(data);
}

} // namespace

node_slab::~node_slab()
{
  for (auto& c : chunks_)
    free_chunk(c.data, c.size, c.mapped);
}

void* node_slab::allocate_slow() noexcept
{
  if (reclaim_remote() > 0)
    return allocate();
  if (bump_chunk_ + 1 < chunks_.size())
  {
    // A chunk kept by trim() and not yet used again since.
    const chunk& c = chunks_[++bump_chunk_];
    bump_ = c.data;
    bump_end_ = c.data + usable(c.size);
    return allocate();
  }

  const std::size_t size = chunks_.empty()
      ? first_chunk
      : std::min(chunks_.back().size * 2, huge_page);
  try
  {
    chunks_.reserve(chunks_.size() + 1);
  }
  catch (...)
  {
    return nullptr;
  }
  chunk c{nullptr, size, size >= mmap_threshold};
  c.data = c.mapped ? map_chunk(size)
                    : static_cast<char*>(::operator new(size, std::nothrow));
  if (!c.data)
    return nullptr;
  ASIOLOOP_SLAB_POISON(c.data, size);
  chunks_.push_back(c);
  bump_chunk_ = chunks_.size() - 1;
  bump_ = c.data;
  bump_end_ = c.data + usable(size);
  return allocate();
}

void node_slab::deallocate_remote(void* slot) noexcept
{
  if (orphaned_.load(std::memory_order_acquire))
  {
    if (orphan_live_.fetch_sub(1, std::memory_order_acq_rel) == 1)
      delete this;
    return;
  }
  void* head = remote_.load(std::memory_order_relaxed);
  do
    *static_cast<void**>(slot) = head;
  while (!remote_.compare_exchange_weak(
      head, slot, std::memory_order_release, std::memory_order_relaxed));
}

std::size_t node_slab::reclaim_remote() noexcept
{
  void* list = remote_.exchange(nullptr, std::memory_order_acquire);
  std::size_t n = 0;
  while (list)
  {
    void* next = *static_cast<void**>(list);
    *static_cast<void**>(list) = free_;
    free_ = list;
    list = next;
    ++n;
  }
  live_ -= n;
  return n;
}

void node_slab::release_chunks() noexcept
{
  // Called only when no slot is out: every kept chunk is free again.
  for (std::size_t i = kept_chunks; i < chunks_.size(); ++i)
    free_chunk(chunks_[i].data, chunks_[i].size, chunks_[i].mapped);
  chunks_.resize(std::min(chunks_.size(), kept_chunks));
  free_ = nullptr;
  for (auto& c : chunks_)
    ASIOLOOP_SLAB_POISON(c.data, c.size);
  bump_chunk_ = 0;
  bump_ = chunks_.empty() ? nullptr : chunks_[0].data;
  bump_end_ = chunks_.empty() ? nullptr : chunks_[0].data + usable(chunks_[0].size);
}

void node_slab::orphan() noexcept
{
  // Each companion counts its own slots: a future state may outlive every
  // node, and the other way round.
  for (node_slab*& c : classes_)
    if (c)
      std::exchange(c, nullptr)->orphan();
  reclaim_remote();
  if (live_ == 0)
  {
    delete this;
    return;
  }
  // A node released by another thread between the reclaim above and the
  // flag below is counted as out and never comes back: the slab then leaks
  // rather than being freed under that thread.
  orphan_live_.store(live_, std::memory_order_relaxed);
  orphaned_.store(true, std::memory_order_release);
}

} // namespace asioloop::detail
