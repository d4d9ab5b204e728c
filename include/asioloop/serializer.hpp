//
// asioloop/serializer.hpp
//
// Distributed under the Boost Software License, Version 1.0.
//

#ifndef ASIOLOOP_SERIALIZER_HPP
#define ASIOLOOP_SERIALIZER_HPP

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace asioloop {

/// Appends values to a message bound for (or coming from) a process worker.
/**
 * The wire format is the machine's own: both ends are the same executable on
 * the same machine, so values travel in native byte order and size, with no
 * tags; sizes are 64-bit.
 */
class wire_writer
{
public:
  explicit wire_writer(std::string& out) noexcept : out_(out) {}

  /// Appends @c v through serializer<T>.
  template <typename T>
  void put(const T& v);

  /// Appends raw bytes.
  void put_bytes(const void* p, std::size_t n)
  {
    out_.append(static_cast<const char*>(p), n);
  }

  /// Appends a 64-bit size.
  void put_size(std::size_t n)
  {
    const std::uint64_t v = n;
    put_bytes(&v, sizeof v);
  }

  /// The bytes written so far (including any header the message began with).
  std::size_t size() const noexcept { return out_.size(); }

private:
  std::string& out_;
};

/// Reads values from a message written by wire_writer.
/**
 * Every read checks the remaining length: a short or corrupt message throws
 * std::runtime_error, never reads out of bounds.
 */
class wire_reader
{
public:
  wire_reader(const char* p, std::size_t n) noexcept : p_(p), end_(p + n) {}

  /// Reads a T through serializer<T>.
  template <typename T>
  T get();

  /// Reads @c n raw bytes into @c dst.
  void get_bytes(void* dst, std::size_t n)
  {
    need(n);
    std::memcpy(dst, p_, n);
    p_ += n;
  }

  /// Reads a 64-bit size, checked against what is left at @c min_bytes_each.
  std::size_t get_size(std::size_t min_bytes_each = 1)
  {
    std::uint64_t v;
    get_bytes(&v, sizeof v);
    if (min_bytes_each != 0 && v > remaining() / min_bytes_each)
      fail();
    return static_cast<std::size_t>(v);
  }

  /// Bytes not read yet.
  std::size_t remaining() const noexcept { return static_cast<std::size_t>(end_ - p_); }

  /// Reads @c n bytes in place; the pointer stays valid as the message does.
  const char* take(std::size_t n)
  {
    need(n);
    const char* p = p_;
    p_ += n;
    return p;
  }

private:
  void need(std::size_t n) const
  {
    if (n > remaining())
      fail();
  }

  [[noreturn]] static void fail()
  {
    throw std::runtime_error(
        "asioloop: corrupt process-pool message (shorter than its contents say)");
  }

  const char* p_;
  const char* end_;
};

/// The customization point that makes a type sendable to a process worker.
/**
 * Specialize it for your own type with two static members:
 *
 * @code
 * struct point { int x; double y; std::string label; };
 *
 * template <>
 * struct asioloop::serializer<point>
 * {
 *   static void write(asioloop::wire_writer& w, const point& p)
 *   {
 *     w.put(p.x); w.put(p.y); w.put(p.label);
 *   }
 *   static point read(asioloop::wire_reader& r)
 *   {
 *     // A braced list evaluates left to right: the order written above.
 *     return point{r.get<int>(), r.get<double>(), r.get<std::string>()};
 *   }
 * };
 * @endcode
 *
 * asioloop provides it for arithmetic types, enumerations, `std::string`,
 * and `std::vector`, `std::map`, `std::pair`, `std::tuple` and
 * `std::optional` of sendable types. The primary template is left undefined,
 * so that a type without a specialization is not sendable.
 */
template <typename T, typename Enable = void>
struct serializer;

/// True if T can travel to and from a process worker.
template <typename T>
concept sendable = requires(wire_writer& w, wire_reader& r, const T& v) {
  serializer<T>::write(w, v);
  { serializer<T>::read(r) } -> std::same_as<T>;
};

template <typename T>
void wire_writer::put(const T& v)
{
  serializer<T>::write(*this, v);
}

template <typename T>
T wire_reader::get()
{
  return serializer<T>::read(*this);
}

template <typename T>
struct serializer<T, std::enable_if_t<std::is_arithmetic_v<T> || std::is_enum_v<T>>>
{
  static void write(wire_writer& w, const T& v) { w.put_bytes(&v, sizeof v); }
  static T read(wire_reader& r)
  {
    T v;
    r.get_bytes(&v, sizeof v);
    if constexpr (std::is_same_v<T, bool>)
      // Any other byte value would be undefined behaviour as a bool.
      return *reinterpret_cast<const unsigned char*>(&v) != 0;
    return v;
  }
};

template <typename C, typename Tr, typename A>
struct serializer<std::basic_string<C, Tr, A>, std::enable_if_t<std::is_arithmetic_v<C>>>
{
  using type = std::basic_string<C, Tr, A>;
  static void write(wire_writer& w, const type& s)
  {
    w.put_size(s.size());
    w.put_bytes(s.data(), s.size() * sizeof(C));
  }
  static type read(wire_reader& r)
  {
    const std::size_t n = r.get_size(sizeof(C));
    type s(n, C{});
    r.get_bytes(s.data(), n * sizeof(C));
    return s;
  }
};

template <typename T, typename A>
  requires sendable<T>
struct serializer<std::vector<T, A>>
{
  // Plain numbers go as one block; bool is excluded (vector<bool> packs bits).
  static constexpr bool block = std::is_arithmetic_v<T> && !std::is_same_v<T, bool>;

  static void write(wire_writer& w, const std::vector<T, A>& v)
  {
    w.put_size(v.size());
    if constexpr (block)
      w.put_bytes(v.data(), v.size() * sizeof(T));
    else
      for (const auto& e : v)
        w.put(static_cast<const T&>(e));
  }
  static std::vector<T, A> read(wire_reader& r)
  {
    const std::size_t n = r.get_size(block ? sizeof(T) : 0);
    std::vector<T, A> v;
    if constexpr (block)
    {
      v.resize(n);
      r.get_bytes(v.data(), n * sizeof(T));
    }
    else
    {
      // No reserve(n): a corrupt size must not allocate before it fails.
      for (std::size_t i = 0; i < n; ++i)
        v.push_back(r.get<T>());
    }
    return v;
  }
};

template <typename K, typename V, typename C, typename A>
  requires sendable<K> && sendable<V>
struct serializer<std::map<K, V, C, A>>
{
  static void write(wire_writer& w, const std::map<K, V, C, A>& m)
  {
    w.put_size(m.size());
    for (const auto& [k, v] : m)
    {
      w.put(k);
      w.put(v);
    }
  }
  static std::map<K, V, C, A> read(wire_reader& r)
  {
    const std::size_t n = r.get_size(0);
    std::map<K, V, C, A> m;
    for (std::size_t i = 0; i < n; ++i)
    {
      K k = r.get<K>();
      V v = r.get<V>();
      m.emplace_hint(m.end(), std::move(k), std::move(v));
    }
    return m;
  }
};

template <typename A, typename B>
  requires sendable<A> && sendable<B>
struct serializer<std::pair<A, B>>
{
  static void write(wire_writer& w, const std::pair<A, B>& p)
  {
    w.put(p.first);
    w.put(p.second);
  }
  static std::pair<A, B> read(wire_reader& r)
  {
    A a = r.get<A>();
    return std::pair<A, B>(std::move(a), r.get<B>());
  }
};

template <typename... T>
  requires(sendable<T> && ...)
struct serializer<std::tuple<T...>>
{
  static void write(wire_writer& w, const std::tuple<T...>& t)
  {
    std::apply([&](const T&... e) { (w.put(e), ...); }, t);
  }
  static std::tuple<T...> read(wire_reader& r)
  {
    // A braced list evaluates its elements left to right.
    return std::tuple<T...>{r.get<T>()...};
  }
};

template <typename T>
  requires sendable<T>
struct serializer<std::optional<T>>
{
  static void write(wire_writer& w, const std::optional<T>& o)
  {
    w.put(o.has_value());
    if (o)
      w.put(*o);
  }
  static std::optional<T> read(wire_reader& r)
  {
    if (!r.get<bool>())
      return std::nullopt;
    return std::optional<T>(r.get<T>());
  }
};

namespace detail {

/// Instantiated for each argument and result type of a process-pool call,
/// so that the compiler names the offending type next to the message.
template <typename T>
struct check_sendable
{
  static_assert(sendable<T>,
      "asioloop: this type cannot be sent to a process worker (see the type "
      "in check_sendable<T> above). Sendable: arithmetic and enum types, "
      "std::string, and std::vector, std::map, std::pair, std::tuple, "
      "std::optional of sendable types; for your own type, specialize "
      "asioloop::serializer<T> (asioloop/serializer.hpp). Pointers, "
      "references to shared state and callables cannot cross processes.");
  static constexpr bool value = true;
};

/// A result: sendable, or void.
template <typename T>
struct check_result : check_sendable<T>
{
};

template <>
struct check_result<void>
{
  static constexpr bool value = true;
};

} // namespace detail
} // namespace asioloop

#endif // ASIOLOOP_SERIALIZER_HPP
