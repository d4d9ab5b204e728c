//
// lib/process_pool.cpp
//
// Distributed under the Boost Software License, Version 1.0.
//
// The process pool, both sides of it.
//
// Parent: one I/O thread with its own io_context spawns the workers, all
// but the first, which the constructor starts (posix_spawn of
// /proc/self/exe: glibc's clone(CLONE_VM|CLONE_VFORK), whose cost does not
// grow with the parent's memory as fork()'s does), drives their sockets,
// reaps them, and completes the futures. Boost.Process v2
// (1.81) is not used: its vfork_launcher calls io_context::notify_fork(
// fork_child) inside the vfork child, which shares the parent's memory and
// so rewrites the parent's reactor (its epoll descriptor); its default
// launcher forks.
//
// A thread that blocks in result() on a call written straight to an idle
// worker reads that worker's socket itself meanwhile (wait_for()): the round
// trip is then caller -> worker -> caller, as with a bare pipe, without a
// wake-up of the I/O thread on the way. The I/O thread watches the sockets
// through an epoll set of its own, one-shot per socket, so that it can leave
// a socket that a waiter reads unarmed until the waiter is done.
//
// Worker: the same executable, started with a flag in argv[1]. A
// constructor in this file recognizes it, finishes the program's static
// initialization itself (so jobs see the executable's globals constructed),
// serves calls on fd 3 until EOF, and _exit()s: the program's main never runs.
//
// Messages, both ways: a 4-byte length, then a kind (requests) or status
// (responses) byte, then the body (serializer.hpp's native format).
//

#include <asioloop/process_pool.hpp>

#include <boost/asio/error.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/core/demangle.hpp>

#include <cxxabi.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <iostream>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

extern char** environ;

namespace asioloop {

namespace asio = boost::asio;

namespace detail {
namespace {

constexpr char worker_flag[] = "--asioloop-process-worker=1";
constexpr char worker_env[] = "ASIOLOOP_PROCESS_WORKER";
constexpr int worker_fd = 3; // the worker's message socket
constexpr int lifeline_fd = 4; // the read end of its lifeline pipe

// Request kinds and response statuses.
constexpr char kind_call = 'C';
constexpr char kind_init = 'I';
constexpr char status_result = 'R';
constexpr char status_error = 'E';
constexpr char status_init_failed = 'F';

// Room for the header and the kind byte around a body of the largest size.
constexpr std::size_t frame_slack = 64;

// ------------------------------------------------------------ modules

/// A loaded ELF module: where it is, and what build it is.
struct module_info
{
  std::uintptr_t base = 0; // dlpi_addr: addresses are base + offset
  std::uintptr_t lo = 0, hi = 0; // the span of its PT_LOAD segments
  std::string id; // the GNU build-id, or a file identity if it has none
  std::string name;
  const ElfW(Phdr)* phdr = nullptr;
  int phnum = 0;
  bool main = false;
};

std::string file_identity(const char* path)
{
  struct stat st;
  if (!path || !*path || ::stat(path, &st) != 0)
    return {};
  return "file:" + std::to_string(st.st_dev) + ':' + std::to_string(st.st_ino) + ':'
      + std::to_string(st.st_size) + ':' + std::to_string(st.st_mtim.tv_sec) + '.'
      + std::to_string(st.st_mtim.tv_nsec);
}

std::string build_id(const module_info& m)
{
  for (int i = 0; i < m.phnum; ++i)
  {
    const auto& ph = m.phdr[i];
    if (ph.p_type != PT_NOTE)
      continue;
    const char* p = reinterpret_cast<const char*>(m.base + ph.p_vaddr);
    const char* end = p + ph.p_memsz;
    while (p + sizeof(ElfW(Nhdr)) <= end)
    {
      const auto* nh = reinterpret_cast<const ElfW(Nhdr)*>(p);
      const char* name = p + sizeof(ElfW(Nhdr));
      const char* desc = name + ((nh->n_namesz + 3) & ~3u);
      const char* next = desc + ((nh->n_descsz + 3) & ~3u);
      if (next > end)
        break;
      if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4
          && std::memcmp(name, "GNU", 4) == 0)
        return std::string("gnu:") + std::string(desc, nh->n_descsz);
      p = next;
    }
  }
  return file_identity(m.main ? "/proc/self/exe" : m.name.c_str());
}

std::vector<module_info> list_modules(bool with_ids)
{
  std::vector<module_info> mods;
  ::dl_iterate_phdr(
      [](dl_phdr_info* info, std::size_t, void* data) -> int {
        auto& v = *static_cast<std::vector<module_info>*>(data);
        module_info m;
        m.base = info->dlpi_addr;
        m.name = info->dlpi_name ? info->dlpi_name : "";
        m.phdr = info->dlpi_phdr;
        m.phnum = info->dlpi_phnum;
        m.main = v.empty(); // the main program comes first
        bool any = false;
        for (int i = 0; i < m.phnum; ++i)
        {
          const auto& ph = m.phdr[i];
          if (ph.p_type != PT_LOAD)
            continue;
          const std::uintptr_t a = m.base + ph.p_vaddr, b = a + ph.p_memsz;
          m.lo = any ? std::min(m.lo, a) : a;
          m.hi = any ? std::max(m.hi, b) : b;
          any = true;
        }
        if (any)
          v.push_back(std::move(m));
        return 0;
      },
      &mods);
  if (with_ids)
    for (auto& m : mods)
      m.id = build_id(m);
  return mods;
}

/// The modules, looked up on every submit: built once, replaced (and the
/// old table kept, as readers may hold it) only when code from a module
/// loaded later is sent.
std::atomic<const std::vector<module_info>*> module_table{nullptr};
std::mutex module_table_mutex;

const module_info* find_module(const std::vector<module_info>& t, std::uintptr_t a)
{
  for (const auto& m : t)
    if (a >= m.lo && a < m.hi)
      return &m;
  return nullptr;
}

const module_info* module_of(std::uintptr_t a)
{
  const auto* t = module_table.load(std::memory_order_acquire);
  if (t)
    if (const auto* m = find_module(*t, a))
      return m;
  std::lock_guard lk(module_table_mutex);
  t = module_table.load(std::memory_order_acquire);
  if (t)
    if (const auto* m = find_module(*t, a))
      return m;
  auto* fresh = new std::vector<module_info>(list_modules(true));
  module_table.store(fresh, std::memory_order_release); // the old one leaks, on purpose
  return find_module(*fresh, a);
}

// ------------------------------------------------------------ worker

/// Resolves a code reference written by pp_write_code; null (with @c err
/// set) if this process has no such module or the offset is outside it.
const void* resolve_code(wire_reader& r, std::string& err)
{
  const auto n = r.get<std::uint8_t>();
  if (n == 0)
  {
    (void)r.get<std::uint64_t>();
    return nullptr;
  }
  std::string id(r.take(n), n);
  const auto off = r.get<std::uint64_t>();
  const auto* t = module_table.load(std::memory_order_acquire);
  for (const auto& m : *t)
    if (m.id == id)
    {
      const std::uintptr_t a = m.base + off;
      if (a < m.lo || a >= m.hi)
        break;
      return reinterpret_cast<const void*>(a);
    }
  std::string hex;
  for (unsigned char c : id.substr(0, 4) == "gnu:" ? id.substr(4) : id)
  {
    static const char digits[] = "0123456789abcdef";
    hex += digits[c >> 4];
    hex += digits[c & 15];
  }
  err = "the worker process cannot identify the function to call: no module with "
        "build-id "
      + hex
      + " is loaded in it (the executable or a shared library was rebuilt, or "
        "the code is in a library the parent loaded with dlopen()); nothing was "
        "called";
  return nullptr;
}

void describe_current_exception(std::string& type, std::string& message) noexcept
{
  try
  {
    try
    {
      throw;
    }
    catch (const remote_error& e)
    {
      type = e.type_name();
      message = e.what();
      if (message.compare(0, type.size() + 2, type + ": ") == 0)
        message.erase(0, type.size() + 2);
    }
    catch (const std::exception& e)
    {
      type = boost::core::demangle(typeid(e).name());
      message = e.what();
    }
    catch (...)
    {
      const std::type_info* ti = abi::__cxa_current_exception_type();
      type = ti ? boost::core::demangle(ti->name()) : "unknown exception";
      message = "an exception not derived from std::exception: its value "
                "cannot be sent, only its type";
    }
  }
  catch (...)
  {
    type = "unknown exception";
    message = "(the exception could not be described: out of memory)";
  }
}

bool write_full(int fd, const char* p, std::size_t n)
{
  while (n > 0)
  {
    // MSG_NOSIGNAL: a dead parent is an error here, not a SIGPIPE.
    const ssize_t r = ::send(fd, p, n, MSG_NOSIGNAL);
    if (r > 0)
    {
      p += r;
      n -= static_cast<std::size_t>(r);
    }
    else if (r < 0 && errno == EINTR)
      continue;
    else
      return false;
  }
  return true;
}

void flush_output() noexcept
{
  try
  {
    std::cout.flush();
    std::cerr.flush();
  }
  catch (...)
  {
  }
  std::fflush(nullptr);
}

void put_error(std::string& out, char status, const std::string& type,
    const std::string& message, std::size_t max)
{
  out.resize(pp_header_size);
  out[4] = status;
  wire_writer w(out);
  w.put(type.size() > 4096 ? type.substr(0, 4096) : type);
  w.put(message.size() > max / 2 ? message.substr(0, max / 2) + "..." : message);
}

/// The worker's end of the socket, read in blocks: calls sent ahead arrive
/// together and cost one read() between them.
class request_reader
{
public:
  /// The next message (kind byte and body); false at EOF or on an error.
  bool next(std::size_t max, const char*& p, std::size_t& n)
  {
    if (beg_ == end_)
      beg_ = end_ = 0;
    if (!fill(4))
      return false;
    std::uint32_t len;
    std::memcpy(&len, buf_.data() + beg_, 4);
    if (len == 0 || len > max + frame_slack)
      ::_exit(3); // not our parent's doing: stop at once
    if (!fill(4 + std::size_t(len)))
      return false;
    p = buf_.data() + beg_ + 4;
    n = len;
    beg_ += 4 + std::size_t(len);
    return true;
  }

private:
  bool fill(std::size_t need)
  {
    if (end_ - beg_ >= need)
      return true;
    if (buf_.size() - beg_ < need)
    {
      std::memmove(buf_.data(), buf_.data() + beg_, end_ - beg_);
      end_ -= beg_;
      beg_ = 0;
      if (buf_.size() < need)
        buf_.resize(std::max(need, buf_.size() * 2));
    }
    while (end_ - beg_ < need)
    {
      const ssize_t r = ::read(worker_fd, buf_.data() + end_, buf_.size() - end_);
      if (r > 0)
        end_ += static_cast<std::size_t>(r);
      else if (!(r < 0 && errno == EINTR))
        return false;
    }
    return true;
  }

  // Small at first: every page a worker touches before its first result
  // is a page fault on the way to it (cold start).
  std::vector<char> buf_ = std::vector<char>(4096);
  std::size_t beg_ = 0, end_ = 0;
};

/// Serves calls on fd 3 until the parent closes it.
[[noreturn]] void serve(std::size_t max)
{
  request_reader in;
  std::string out;
  for (;;)
  {
    const char* msg;
    std::size_t len;
    if (!in.next(max, msg, len))
      break;
    const char kind = msg[0];
    wire_reader r(msg + 1, len - 1);
    out.resize(pp_header_size);
    out[4] = status_result;
    bool init_failed = false;
    try
    {
      std::string err;
      if (kind == kind_init)
      {
        const void* fn = resolve_code(r, err);
        if (!fn)
          throw remote_error("asioloop::unknown_function", err);
        try
        {
          reinterpret_cast<void (*)()>(const_cast<void*>(fn))();
        }
        catch (...)
        {
          init_failed = true;
          throw;
        }
        flush_output();
        continue; // no response: calls follow right behind
      }
      const void* tramp = resolve_code(r, err);
      if (!tramp)
        throw remote_error("asioloop::unknown_function", err);
      const void* fn = resolve_code(r, err);
      if (!err.empty())
        throw remote_error("asioloop::unknown_function", err);
      wire_writer w(out);
      reinterpret_cast<pp_trampoline>(const_cast<void*>(tramp))(fn, r, w);
      if (out.size() - pp_header_size > max)
        throw remote_error("asioloop::message_too_large",
            "the result is " + std::to_string(out.size() - pp_header_size)
                + " bytes, more than max_message_size (" + std::to_string(max)
                + "); return less, or raise the pool's max_message_size");
    }
    catch (...)
    {
      std::string type, message;
      describe_current_exception(type, message);
      try
      {
        put_error(out, init_failed ? status_init_failed : status_error, type, message, max);
      }
      catch (...)
      {
        put_error(out, init_failed ? status_init_failed : status_error,
            "std::bad_alloc", "out of memory while sending an exception", max);
      }
    }
    flush_output();
    const auto out_len = static_cast<std::uint32_t>(out.size() - 4);
    std::memcpy(out.data(), &out_len, 4);
    if (!write_full(worker_fd, out.data(), out.size()))
      break;
    if (init_failed)
      ::_exit(1);
  }
  flush_output();
  ::_exit(0);
}

/// Runs the init functions of @c m after @c from (all of them if null).
void run_init_array(const module_info& m, void (*from)(int, char**, char**), int argc,
    char** argv, char** envp)
{
  const ElfW(Dyn)* dyn = nullptr;
  for (int i = 0; i < m.phnum; ++i)
    if (m.phdr[i].p_type == PT_DYNAMIC)
      dyn = reinterpret_cast<const ElfW(Dyn)*>(m.base + m.phdr[i].p_vaddr);
  if (!dyn)
    return;
  std::uintptr_t init = 0, array = 0, array_size = 0;
  for (; dyn->d_tag != DT_NULL; ++dyn)
  {
    if (dyn->d_tag == DT_INIT)
      init = dyn->d_un.d_ptr;
    else if (dyn->d_tag == DT_INIT_ARRAY)
      array = dyn->d_un.d_ptr;
    else if (dyn->d_tag == DT_INIT_ARRAYSZ)
      array_size = dyn->d_un.d_val;
  }
  // Whether the loader relocated these entries in place varies: accept both.
  auto address = [&](std::uintptr_t a) { return a >= m.lo && a < m.hi ? a : a + m.base; };
  using init_fn = void (*)(int, char**, char**);
  auto* first = array ? reinterpret_cast<init_fn*>(address(array)) : nullptr;
  auto* last = first ? first + array_size / sizeof(init_fn) : nullptr;
  if (from)
  {
    first = first ? std::find(first, last, from) : nullptr;
    if (first == last || !first)
      return; // not found: nothing known to run after it
    ++first;
  }
  else if (init)
    reinterpret_cast<void (*)(int, char**, char**)>(address(init))(argc, argv, envp);
  for (; first != last; ++first)
    if (*first && reinterpret_cast<std::uintptr_t>(*first) != std::uintptr_t(-1))
      (*first)(argc, argv, envp);
}

void worker_hook(int argc, char** argv, char** envp);

/// Whether @c fd is open and of the @c type (S_IFSOCK, S_IFIFO).
bool is_a(int fd, mode_t type)
{
  struct stat st;
  return ::fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == type;
}

/// A worker's life: set up, finish the program's static initialization,
/// serve, exit. Never returns to the program's startup.
[[noreturn]] void worker_main(int argc, char** argv, char** envp)
{
  const std::size_t max = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 0;
  if (max == 0 || !is_a(worker_fd, S_IFSOCK) || !is_a(lifeline_fd, S_IFIFO))
  {
    std::fputs("asioloop: started as a process-pool worker without the pool's "
               "socket and lifeline: exiting\n",
        stderr);
    ::_exit(125);
  }
  // Die with the pool's process, in the middle of a job too. Nobody writes
  // to the lifeline: its read end reports only the close of the write end's
  // last copy, which the pool holds, and F_SETSIG turns that report into a
  // SIGKILL of this process. (PR_SET_PDEATHSIG would follow the *thread*
  // that spawned the worker, and the first worker is spawned by the pool's
  // constructor, on whatever thread the program constructs it.) The poll
  // closes the race with a pool that was gone before the signal was set.
  if (::fcntl(lifeline_fd, F_SETOWN, ::getpid()) != 0
      || ::fcntl(lifeline_fd, F_SETSIG, SIGKILL) != 0
      || ::fcntl(lifeline_fd, F_SETFL, ::fcntl(lifeline_fd, F_GETFL) | O_ASYNC) != 0)
  {
    std::fprintf(stderr, "asioloop: process-pool worker: cannot watch its lifeline: %s\n",
        std::strerror(errno));
    ::_exit(125);
  }
  pollfd gone{lifeline_fd, 0, 0};
  if (::poll(&gone, 1, 0) != 0)
    ::_exit(125);
  // A subprocess that a job starts must not keep them open.
  ::fcntl(worker_fd, F_SETFD, FD_CLOEXEC);
  ::fcntl(lifeline_fd, F_SETFD, FD_CLOEXEC);
  ::unsetenv(worker_env);

  // The static initialization the program would have done before main:
  // the rest of this module's, then the executable's if this is a shared
  // library (a library's constructors run before the executable's).
  auto mods = list_modules(false);
  const auto self = reinterpret_cast<std::uintptr_t>(&worker_hook);
  const module_info* here = find_module(mods, self);
  if (here)
    run_init_array(*here, &worker_hook, argc, argv, envp);
  if (here && !here->main && !mods.empty() && mods.front().main)
    run_init_array(mods.front(), nullptr, argc, argv, envp);

  module_table.store(new std::vector<module_info>(list_modules(true)),
      std::memory_order_release);
  serve(max);
}

// The worker hook: a constructor, so that it runs before main. glibc passes
// (argc, argv, envp) to ELF constructors.
__attribute__((constructor, used)) void worker_hook(int argc, char** argv, char** envp)
{
  if (argc > 1 && argv && argv[1] && std::strcmp(argv[1], worker_flag) == 0)
    worker_main(argc, argv, envp);
}

// ------------------------------------------------------------ parent

std::string describe_status(int pid, int status, bool known)
{
  std::string s = "worker process " + std::to_string(pid);
  if (!known)
    return s + " ended, its exit status unknown (reaped elsewhere, or SIGCHLD is ignored)";
  if (WIFSIGNALED(status))
  {
    const int sig = WTERMSIG(status);
    const char* abbrev = ::sigabbrev_np(sig);
    return s + " was killed by signal " + std::to_string(sig)
        + (abbrev ? std::string(" (SIG") + abbrev + ")" : std::string());
  }
  if (WIFEXITED(status))
    return s + " exited with status " + std::to_string(WEXITSTATUS(status));
  return s + " ended";
}

} // namespace

void pp_write_code(wire_writer& w, const void* addr)
{
  if (!addr)
  {
    w.put(std::uint8_t(0));
    w.put(std::uint64_t(0));
    return;
  }
  const auto a = reinterpret_cast<std::uintptr_t>(addr);
  const module_info* m = module_of(a);
  if (!m || m->id.empty() || m->id.size() > 255)
    throw std::invalid_argument(
        "asioloop: process_pool_executor cannot send this function: it is in "
        "no loaded ELF module that has a build-id or a file (code made at run "
        "time cannot be sent)");
  w.put(static_cast<std::uint8_t>(m->id.size()));
  w.put_bytes(m->id.data(), m->id.size());
  w.put(static_cast<std::uint64_t>(a - m->base));
}

} // namespace detail

// ================================================================ the pool

class process_pool_executor::impl final : public std::enable_shared_from_this<impl>,
                                           public detail::cf_waiter
{
public:
  impl(std::size_t max_workers, process_pool_options o)
    : max_workers_(max_workers), options_(o)
  {
    if (const char* w = std::getenv(detail::worker_env); w && *w)
      throw std::logic_error(
          "asioloop: this process was started as a process-pool worker, but "
          "asioloop's worker hook did not run (is libasioloop linked in a way "
          "that drops its constructors?)");
    if (options_.max_message_size == 0
        || options_.max_message_size > std::size_t(0xffffffffu) - detail::frame_slack)
      throw std::invalid_argument("asioloop: process_pool_options::max_message_size "
                                  "must be between 1 and 4 GiB - 64");
    if (const char* n = program_invocation_name; n && *n)
      argv0_ = n;
    else
      argv0_ = "asioloop-worker";
    if (options_.initializer)
    {
      init_frame_.resize(detail::pp_header_size);
      wire_writer w(init_frame_);
      detail::pp_write_code(w, reinterpret_cast<const void*>(options_.initializer));
      finish_frame(init_frame_, detail::kind_init);
    }
  }

  ~impl()
  {
    if (ep_ >= 0 && !ep_desc_) // start() failed before handing it over
      ::close(ep_);
  }

  void start()
  {
    ep_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (ep_ < 0)
      throw std::system_error(errno, std::generic_category(), "asioloop: epoll_create1");

    // Workers get the creating thread's signal mask (posix_spawn's
    // SETSIGMASK). The first one starts here rather than on the pool's
    // thread: its exec and the program's startup in it are most of the
    // time to a first result, and they then overlap the thread's start.
    // A failure is left for the first submit to retry and report.
    ::pthread_sigmask(SIG_BLOCK, nullptr, &child_mask_);
    if (auto w = spawn())
    {
      std::lock_guard lk(m_);
      install_locked(w);
    }

    // The pool's thread takes no signals: they go to the program's own
    // threads, as if the pool were not there.
    sigset_t all;
    ::sigfillset(&all);
    ::pthread_sigmask(SIG_BLOCK, &all, nullptr);
    try
    {
      ep_desc_.emplace(ioc_, ep_);
      // Waiting before the thread's first reactor pass, not from a posted
      // handler: that pass would take the edge of a worker that is already
      // ready, with nobody waiting, and Asio (edge-triggered) would wait
      // for the next one.
      watch();
      thread_ = std::thread([self = shared_from_this()] { self->run(); });
      thread_id_ = thread_.get_id();
    }
    catch (...)
    {
      ::pthread_sigmask(SIG_SETMASK, &child_mask_, nullptr);
      for (auto& w : workers_) // no thread to reap the first worker
        reap_now(w->pid);
      throw;
    }
    ::pthread_sigmask(SIG_SETMASK, &child_mask_, nullptr);
  }

  static void finish_frame(std::string& f, char kind)
  {
    const auto len = static_cast<std::uint32_t>(f.size() - 4);
    std::memcpy(f.data(), &len, 4);
    f[4] = kind;
  }

  void enqueue(std::unique_ptr<detail::pp_job> job)
  {
    if (job->request.size() - detail::pp_header_size > options_.max_message_size)
    {
      const auto n = job->request.size() - detail::pp_header_size;
      std::unique_lock lk(m_);
      check_open();
      lk.unlock();
      job->fail(std::make_exception_ptr(std::length_error(
          "asioloop: the call's arguments take " + std::to_string(n)
          + " bytes, more than the pool's max_message_size ("
          + std::to_string(options_.max_message_size)
          + "); send less, or raise process_pool_options::max_message_size")));
      return;
    }
    finish_frame(job->request, detail::kind_call);
    std::lock_guard lk(m_);
    check_open();
    if (try_send_now_locked(job))
      return;
    queue_.push_back(std::move(job));
    kick_locked();
  }

  void shutdown(bool wait, bool cancel_futures)
  {
    std::vector<std::unique_ptr<detail::pp_job>> dropped;
    {
      std::lock_guard lk(m_);
      shutdown_ = true;
      if (cancel_futures)
      {
        auto keep = std::remove_if(queue_.begin(), queue_.end(), [&](auto& j) {
          if (j->started)
            return false;
          dropped.push_back(std::move(j));
          return true;
        });
        queue_.erase(keep, queue_.end());
      }
      kick_locked();
    }
    for (auto& j : dropped)
      j->cancel();
    if (wait && !in_done_callback())
    {
      std::lock_guard lk(join_m_);
      if (thread_.joinable())
        thread_.join();
    }
  }

  /// True on a thread that runs the futures' done callbacks: the pool's
  /// own, or one blocked in result() that holds a worker's socket. Waiting
  /// for the pool's thread there would wait for this very thread.
  bool in_done_callback() const
  {
    if (std::this_thread::get_id() == thread_id_)
      return true;
    std::lock_guard lk(m_);
    return std::any_of(workers_.begin(), workers_.end(), [](const worker_ptr& w) {
      return w->waiter_depth > 0 && w->waiter_thread == std::this_thread::get_id();
    });
  }

  /// For the destructor: wait, unless on the pool's own thread (a done
  /// callback that drops the last reference), where the thread must go on.
  void shutdown_and_release()
  {
    if (in_done_callback())
    {
      shutdown(false, false);
      std::lock_guard lk(join_m_);
      if (thread_.joinable())
        thread_.detach();
      return;
    }
    shutdown(true, false);
  }

  std::size_t max_workers() const noexcept { return max_workers_; }

  std::vector<int> pids() const
  {
    std::lock_guard lk(m_);
    return pids_;
  }

private:
  using clock = std::chrono::steady_clock;

  struct flight
  {
    std::unique_ptr<detail::pp_job> job;
    clock::time_point sent;
  };

  // A worker's state is guarded by m_, except the read buffer, which belongs
  // to whoever reads the socket (see the reading flags). Its socket is not
  // Asio's: the pool's thread watches it through ep_, so that it is not
  // woken by a response that a waiting thread reads itself.
  struct worker
  {
    worker() = default;
    worker(const worker&) = delete;
    worker& operator=(const worker&) = delete;
    ~worker()
    {
      if (fd >= 0)
        ::close(fd);
      if (life >= 0)
        ::close(life); // kills it, if it somehow still runs
    }

    int pid = 0;
    int fd = -1; // closed (-1) once dead
    int life = -1; // its lifeline's write end (worker_main())
    std::deque<flight> inflight;
    std::size_t sent = 0, completed = 0;
    clock::time_point last_done{};
    std::string wbuf; // bytes to send, from woff on
    std::size_t woff = 0;
    std::uint32_t armed = 0; // the events ep_ has it armed for (one-shot)
    std::vector<char> rbuf = std::vector<char>(4096);
    std::size_t rbeg = 0, rend = 0;
    bool retiring = false; // takes no more jobs; exits at EOF once idle
    bool closing = false; // its socket's send side is shut
    bool closing_wanted = false; // shut it once the write in progress ends
    bool dead = false;
    // Who reads the socket, and owns rbuf meanwhile: the pool's thread,
    // unless a thread blocked on one of its calls does (waiter). Each
    // response is parsed by one of them, in order, whoever reads it.
    // A reader keeps it until it has completed what it read, so that the
    // futures of a worker complete in the order of its responses.
    bool io_reading = false; // the pool's thread reads it outside m_
    std::atomic<bool> io_completing{false}; // ... or completes what it read
    // A waiting thread reads it (wait_for()), this many times nested: a done
    // callback run there may wait on another call to the same worker.
    int waiter_depth = 0;
    std::thread::id waiter_thread;
    bool doomed = false; // EOF or a protocol violation seen: died() is due
  };
  using worker_ptr = std::shared_ptr<worker>;

  /// A response taken off a worker, completed once m_ is released (the
  /// future's callbacks are user code). Its body is copied out of the read
  /// buffer, which belongs to the next reader by then (a small result fits
  /// in the string itself).
  struct outcome
  {
    std::unique_ptr<detail::pp_job> job;
    char status;
    std::string body;
  };

  // How many calls a worker may hold, the one it runs included. The rest
  // are sent ahead, which hides the round trip between short calls: as
  // many as take about 1 ms by the moving average of service time, for 32
  // in all at most (more gained nothing in W9), so that no call waits long
  // behind others while a worker is free (in Python, idle workers pull
  // from one queue). Calls of 1 ms or more go one at a time.
  std::size_t depth_locked() const
  {
    constexpr long long budget_ns = 1'000'000;
    if (service_ns_ < 0)
      return 1;
    return static_cast<std::size_t>(
        std::min<long long>(1 + budget_ns / std::max<long long>(service_ns_, 1), 32));
  }

  void check_open() const
  {
    if (broken_)
      throw broken_executor_error(broken_reason_);
    if (shutdown_)
      throw broken_executor_error(
          "cannot submit to a process_pool_executor after shutdown()");
  }

  void kick_locked()
  {
    if (kick_pending_)
      return;
    kick_pending_ = true;
    asio::post(ioc_, [this] {
      {
        std::lock_guard lk(m_);
        kick_pending_ = false;
      }
      dispatch();
    });
  }

  void run()
  {
    for (;;)
    {
      try
      {
        ioc_.run();
        break;
      }
      catch (...)
      {
        // A handler threw (out of memory): report and go on, jobs are waiting.
        std::fputs("asioloop: process pool thread: unexpected exception\n", stderr);
      }
    }
  }

  // ---------------------------------------------------------- sending

  /// From a submitting thread, under m_: a job that finds a worker idle
  /// is written to its socket at once, sparing a trip through the pool's
  /// thread. False if no worker is idle.
  bool try_send_now_locked(std::unique_ptr<detail::pp_job>& job)
  {
    if (!queue_.empty() || broken_)
      return false;
    for (auto& w : workers_)
    {
      if (w->dead || w->retiring || w->closing || !w->wbuf.empty() || !w->inflight.empty())
        continue;
      if (!job->start())
        return true; // cancelled already: nothing to send
      job->started = true;
      // The submitting thread usually blocks in result() next: it may then
      // read the reply itself (wait_for()). Set before anyone else sees it.
      job->state->set_waiter(weak_from_this());
      const std::string& req = job->request;
      const ssize_t r = ::send(w->fd, req.data(), req.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      const std::size_t done = r > 0 ? static_cast<std::size_t>(r) : 0;
      push_flight_locked(*w, std::move(job));
      if (done < req.size())
      {
        // The rest goes when the socket has room; a dead worker shows on
        // the read side.
        w->wbuf.assign(w->inflight.back().job->request, done);
        arm_locked(*w);
      }
      return true;
    }
    return false;
  }

  void push_flight_locked(worker& w, std::unique_ptr<detail::pp_job> job)
  {
    w.inflight.push_back({std::move(job), clock::now()});
    if (options_.max_tasks_per_child && ++w.sent >= options_.max_tasks_per_child)
      w.retiring = true;
  }

  /// Queues @c job's request for @c w; flush_locked() sends it, with any
  /// others queued in the same round: one send() per worker and round.
  void send_locked(const worker_ptr& w, std::unique_ptr<detail::pp_job> job)
  {
    w->wbuf += job->request;
    push_flight_locked(*w, std::move(job));
  }

  void flush_locked()
  {
    for (auto& w : workers_)
      if (!w->wbuf.empty())
        start_write_locked(w);
  }

  /// Sends what wbuf holds, as far as the socket takes it now; the rest
  /// when ep_ says it has room.
  void start_write_locked(const worker_ptr& w)
  {
    if (w->dead)
      return;
    while (w->woff < w->wbuf.size())
    {
      const ssize_t r = ::send(w->fd, w->wbuf.data() + w->woff, w->wbuf.size() - w->woff,
          MSG_DONTWAIT | MSG_NOSIGNAL);
      if (r > 0)
        w->woff += static_cast<std::size_t>(r);
      else if (r < 0 && errno == EINTR)
        continue;
      else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        break;
      else
      {
        w->woff = w->wbuf.size(); // the read side sees the death and handles it
        break;
      }
    }
    if (w->woff == w->wbuf.size())
    {
      w->wbuf.clear();
      w->woff = 0;
      if (w->closing_wanted)
        close_send_locked(*w);
    }
    arm_locked(*w);
  }

  /// Arms ep_ (one-shot) for what the pool's thread must hear of: the
  /// socket readable (unless @c in is false, or it reads it already);
  /// writable, while bytes wait. Any thread, under m_.
  void arm_locked(worker& w, bool in = true)
  {
    if (w.dead)
      return;
    std::uint32_t ev = 0;
    if (in && !w.io_reading && !w.doomed && w.waiter_depth == 0)
      ev |= EPOLLIN; // a waiter re-arms it when it leaves
    if (!w.wbuf.empty())
      ev |= EPOLLOUT;
    if (ev == w.armed)
      return;
    epoll_event e{};
    e.events = ev | EPOLLONESHOT;
    e.data.fd = w.fd;
    ::epoll_ctl(ep_, EPOLL_CTL_MOD, w.fd, &e);
    w.armed = ev;
  }

  void close_send_locked(worker& w)
  {
    if (w.closing || w.dead)
      return;
    if (!w.wbuf.empty())
    {
      w.closing_wanted = true;
      return;
    }
    w.closing = true;
    ::shutdown(w.fd, SHUT_WR); // the worker sees EOF, finishes, exits
  }

  // ---------------------------------------------------------- dispatch

  worker_ptr pick_locked(bool& spawn_one)
  {
    spawn_one = false;
    worker_ptr best;
    const std::size_t depth = depth_locked();
    for (auto& w : workers_)
      if (!w->retiring && !w->dead && !w->closing && w->inflight.size() < depth
          && (!best || w->inflight.size() < best->inflight.size()))
        best = w;
    if (best && best->inflight.empty())
      return best;
    if (workers_.size() < max_workers_ && !spawn_failed_)
    {
      spawn_one = true;
      return nullptr;
    }
    return best;
  }

  template <typename Jobs>
  static void fail_all(Jobs& jobs, const std::string& why)
  {
    for (auto& j : jobs)
      j->fail(std::make_exception_ptr(broken_executor_error(why)));
  }

  void dispatch()
  {
    std::unique_lock lk(m_);
    spawn_failed_ = false;
    while (!queue_.empty() && !broken_)
    {
      bool spawn_one;
      worker_ptr w = pick_locked(spawn_one);
      if (spawn_one)
      {
        flush_locked();
        lk.unlock();
        auto fresh = spawn();
        lk.lock();
        if (fresh)
          install_locked(fresh);
        continue;
      }
      if (!w)
        break;
      auto job = std::move(queue_.front());
      queue_.pop_front();
      if (!job->started)
      {
        // set_running_or_notify_cancel() runs no callback: safe under m_.
        if (!job->start())
          continue; // cancelled before it started
        job->started = true;
      }
      send_locked(w, std::move(job));
    }
    flush_locked();
    std::deque<std::unique_ptr<detail::pp_job>> failed;
    std::string why;
    if (broken_ && !queue_.empty())
    {
      failed = std::move(queue_);
      why = broken_reason_;
    }
    else if (spawn_failed_ && workers_.empty() && !queue_.empty())
    {
      // No worker at all and none can start: fail rather than wait forever.
      failed = std::move(queue_);
      why = spawn_error_;
    }
    if (!failed.empty())
      queue_.clear(); // moved from
    const bool draining = shutdown_ && queue_.empty();
    for (auto& w : workers_)
      if (w->inflight.empty() && (w->retiring || draining))
        close_send_locked(*w);
    if (draining && workers_.empty())
    {
      // Every job done, every worker reaped: run() returns.
      guard_.reset();
      ep_stopped_ = true;
      boost::system::error_code ec;
      ep_desc_->cancel(ec);
    }
    lk.unlock();
    fail_all(failed, why);
  }

  /// @c fd, moved above the descriptors that a worker is given, where
  /// dup2() onto those cannot clobber it; -1 if it cannot be moved.
  static int above_worker_fds(int fd)
  {
    if (fd > detail::lifeline_fd)
      return fd;
    const int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, detail::lifeline_fd + 1);
    const int err = errno;
    ::close(fd);
    errno = err;
    return moved;
  }

  /// A descriptor, closed at the end of its scope unless released.
  struct owned_fd
  {
    int fd = -1;
    owned_fd() = default;
    explicit owned_fd(int f) noexcept : fd(f) {}
    owned_fd(const owned_fd&) = delete;
    owned_fd& operator=(const owned_fd&) = delete;
    ~owned_fd()
    {
      if (fd >= 0)
        ::close(fd);
    }
    int release() noexcept { return std::exchange(fd, -1); }
  };

  /// Starts a worker process; null (and spawn_failed_ set) if it cannot.
  worker_ptr spawn()
  {
    // Everything that allocates comes first: nothing to undo if it throws.
    auto w = std::make_shared<worker>();
    const std::string max = std::to_string(options_.max_message_size);
    char* argv[] = {argv0_.data(), const_cast<char*>(detail::worker_flag),
        const_cast<char*>(max.c_str()), nullptr};
    std::vector<char*> envp;
    std::string marker = std::string(detail::worker_env) + "=1";
    for (char** e = environ; e && *e; ++e)
      if (std::strncmp(*e, detail::worker_env, sizeof detail::worker_env - 1) != 0)
        envp.push_back(*e);
    envp.push_back(marker.data());
    envp.push_back(nullptr);

    // Its socket, and its lifeline (one per worker: the lifeline's owner
    // and signal belong to the open file description, which a shared pipe
    // would share among all workers, so that only the last one set up
    // would be killed).
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
      return spawn_failure(errno, "socketpair");
    owned_fd parent_end(sv[0]), child_end(above_worker_fds(sv[1]));
    if (child_end.fd < 0)
      return spawn_failure(errno, "fcntl(F_DUPFD_CLOEXEC)");
    int life[2];
    if (::pipe2(life, O_CLOEXEC) != 0)
      return spawn_failure(errno, "pipe2");
    owned_fd life_w(life[1]), life_r(above_worker_fds(life[0]));
    if (life_r.fd < 0)
      return spawn_failure(errno, "fcntl(F_DUPFD_CLOEXEC)");

    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    int rc = ::posix_spawn_file_actions_init(&fa);
    if (rc != 0)
      return spawn_failure(rc, "posix_spawn_file_actions_init");
    rc = ::posix_spawnattr_init(&attr);
    if (rc != 0)
    {
      ::posix_spawn_file_actions_destroy(&fa);
      return spawn_failure(rc, "posix_spawnattr_init");
    }
    // Each step must hold: a dropped closefrom would leak the program's
    // descriptors into the worker.
    const char* step = "posix_spawn_file_actions";
    if ((rc = ::posix_spawn_file_actions_adddup2(&fa, child_end.fd, detail::worker_fd)) == 0
        && (rc = ::posix_spawn_file_actions_adddup2(&fa, life_r.fd, detail::lifeline_fd)) == 0
        && (rc = ::posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)) == 0
        && (rc = ::posix_spawn_file_actions_addclosefrom_np(&fa, detail::lifeline_fd + 1)) == 0
        && (rc = ::posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK)) == 0
        && (rc = ::posix_spawnattr_setsigmask(&attr, &child_mask_)) == 0)
    {
      step = "posix_spawn of /proc/self/exe";
      pid_t pid = 0;
      rc = ::posix_spawn(&pid, "/proc/self/exe", &fa, &attr, argv, envp.data());
      w->pid = pid;
    }
    ::posix_spawn_file_actions_destroy(&fa);
    ::posix_spawnattr_destroy(&attr);
    if (rc != 0)
      return spawn_failure(rc, step);

    w->fd = parent_end.release();
    w->life = life_w.release();
    epoll_event e{};
    e.events = EPOLLONESHOT; // armed once installed
    e.data.fd = w->fd;
    if (::epoll_ctl(ep_, EPOLL_CTL_ADD, w->fd, &e) != 0)
    {
      const int err = errno;
      reap_now(w->pid);
      return spawn_failure(err, "epoll_ctl");
    }
    return w;
  }

  /// Kills and reaps a worker not reaped yet; returns waitpid()'s result.
  static pid_t reap_now(int pid, int* status = nullptr) noexcept
  {
    ::kill(pid, SIGKILL);
    pid_t r;
    do
      r = ::waitpid(pid, status, 0);
    while (r < 0 && errno == EINTR);
    return r;
  }

  void install_locked(const worker_ptr& w)
  {
    workers_.push_back(w);
    pids_.push_back(w->pid);
    if (!init_frame_.empty())
      w->wbuf = init_frame_;
    start_write_locked(w);
    arm_locked(*w);
  }

  worker_ptr spawn_failure(int err, const char* what)
  {
    std::lock_guard lk(m_);
    spawn_failed_ = true;
    spawn_error_ = std::string("asioloop: cannot start a process-pool worker: ") + what
        + ": " + std::strerror(err);
    return nullptr;
  }

  // ---------------------------------------------------------- receiving

  /// The pool's thread: waits for ep_, which reports the workers' sockets.
  void watch()
  {
    ep_desc_->async_wait(asio::posix::descriptor_base::wait_read,
        [this](boost::system::error_code ec) {
          if (ec || ep_stopped_)
            return;
          // All that is ready: Asio watches ep_ edge-triggered, and
          // events left in it would raise no new edge.
          epoll_event evs[16];
          int n;
          do
          {
            do
              n = ::epoll_wait(ep_, evs, 16, 0);
            while (n < 0 && errno == EINTR);
            for (int i = 0; i < n; ++i)
              on_event(evs[i].data.fd, evs[i].events);
          } while (n == 16 && !ep_stopped_);
          if (!ep_stopped_)
            watch();
        });
  }

  /// The pool's thread: ep_ reported the worker on @c fd (now disarmed).
  void on_event(int fd, std::uint32_t events)
  {
    worker_ptr w;
    {
      std::lock_guard lk(m_);
      for (auto& c : workers_)
        if (c->fd == fd && !c->dead)
          w = c;
      if (!w)
        return; // gone meanwhile
      w->armed = 0;
      const bool readable = events & (EPOLLIN | EPOLLERR | EPOLLHUP);
      const bool read = readable && !w->doomed && w->waiter_depth == 0;
      w->io_reading = read;
      if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
        start_write_locked(w);
      if (!read)
      {
        // A waiter reads it (or died() is due): left unarmed for reading
        // until the waiter leaves, or this thread would spin on its data.
        // (Checking whether the waiter has drained it already, to re-arm at
        // once, cost more than the waiter's re-arming: a system call under
        // m_, which the waiter wants next.)
        arm_locked(*w, !readable || w->waiter_depth == 0);
        return;
      }
    }
    on_readable(w);
  }

  /// Reads what the socket holds, by its reader: > 0 bytes, 0 at EOF or on
  /// an error, < 0 if there is nothing yet (without @c block only).
  static ssize_t read_some(worker& w, bool block = false)
  {
    if (w.rbeg == w.rend)
      w.rbeg = w.rend = 0;
    if (w.rend == w.rbuf.size())
    {
      if (w.rbeg > 0)
      {
        std::memmove(w.rbuf.data(), w.rbuf.data() + w.rbeg, w.rend - w.rbeg);
        w.rend -= w.rbeg;
        w.rbeg = 0;
      }
      if (w.rend == w.rbuf.size())
        w.rbuf.resize(w.rbuf.size() * 2);
    }
    ssize_t r;
    do
      r = ::recv(w.fd, w.rbuf.data() + w.rend, w.rbuf.size() - w.rend, block ? 0 : MSG_DONTWAIT);
    while (r < 0 && errno == EINTR);
    if (r > 0)
      w.rend += static_cast<std::size_t>(r);
    else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return -1;
    return r > 0 ? r : 0;
  }

  /// The pool's thread, as the socket's reader (io_reading).
  void on_readable(const worker_ptr& w)
  {
    const ssize_t n = read_some(*w);
    // One lock for the responses and for refilling the workers, none
    // after the futures complete: their waiters often submit again
    // at once, and would contend for it.
    std::string violation;
    bool full_dispatch = false;
    {
      std::lock_guard lk(m_);
      w->io_reading = false;
      if (n > 0)
      {
        violation = parse_locked(w, done_);
        if (violation.empty())
          full_dispatch = refill_locked();
      }
      if (n == 0 || !violation.empty())
        w->doomed = true;
      arm_locked(*w);
      if (!done_.empty())
        w->io_completing.store(true, std::memory_order_relaxed);
    }
    if (!done_.empty())
    {
      finish(done_);
      w->io_completing.store(false, std::memory_order_release);
    }
    if (n == 0 || !violation.empty())
      return died(w, violation);
    if (full_dispatch)
      dispatch();
  }

  /// cf_waiter: a thread blocks on the future of a call that was written
  /// straight to its worker. Rather than wait for the pool's thread to read
  /// the response and wake it (a third thread on the round trip, and a
  /// wake-up that costs as much as the job on a virtual machine), it reads
  /// the worker's socket itself, as long as the pool's thread is not
  /// reading it, and until the call is done or the deadline passes.
  /// Other calls' responses it reads on the way are completed too, in
  /// order: their done callbacks then run on this thread.
  void wait_for(detail::cf_state_base& st, clock::time_point deadline) noexcept override
  {
    try
    {
      while (!st.is_done() && read_for(st, deadline))
      {
      }
    }
    catch (...)
    {
      // Out of memory: the pool's thread has the socket back; wait for it.
    }
  }

  /// One turn of wait_for(): claims the worker running @c st's call, reads
  /// until it has at least one response, completes what it read, and hands
  /// the socket back. A done callback run meanwhile may wait for another
  /// call on the same worker: this thread may claim it again, nested. False
  /// if there is nothing more it can do.
  bool read_for(detail::cf_state_base& st, clock::time_point deadline)
  {
    std::vector<outcome> done;
    done.reserve(4); // not under m_, nor while it owns the socket
    worker_ptr w;
    {
      const auto me = std::this_thread::get_id();
      std::lock_guard lk(m_);
      for (auto& c : workers_)
        if (std::any_of(c->inflight.begin(), c->inflight.end(),
                [&](const flight& f) { return f.job->state == &st; }))
        {
          if (!c->dead && !c->doomed && !c->io_reading
              && !c->io_completing.load(std::memory_order_acquire)
              && (c->waiter_depth == 0 || c->waiter_thread == me))
            w = c;
          break;
        }
      if (!w)
        return false; // queued, or the pool's thread has it: wait for that
      // ep_ stays armed: disarming it here would cost this thread a system
      // call (1.2 us here), more than the pool thread's wake-up that it
      // saves, which happens beside this thread, on another CPU. Woken by
      // the response, the pool's thread sees the waiter and leaves it be.
      w->waiter_thread = me;
      ++w->waiter_depth;
    }
    std::string violation;
    ssize_t n = -1;
    bool timed_out = false;
    for (;;)
    {
      if (deadline == clock::time_point::max())
      {
        // No deadline: sleep in recv() itself, one system call fewer.
        if ((n = read_some(*w, true)) >= 0)
          break;
        continue;
      }
      pollfd pfd{w->fd, POLLIN, 0};
      const auto left = deadline - clock::now();
      if (left <= clock::duration::zero())
      {
        timed_out = true;
        break;
      }
      const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
      timespec ts{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
      const int r = ::ppoll(&pfd, 1, &ts, nullptr);
      if (r < 0 && errno != EINTR)
      {
        timed_out = true; // cannot poll: leave it to the pool's thread
        break;
      }
      if (r > 0 && (n = read_some(*w)) >= 0)
        break;
    }
    {
      std::lock_guard lk(m_);
      if (n > 0)
      {
        try
        {
          violation = parse_locked(w, done);
        }
        catch (...)
        {
          violation = "sent a response that could not be stored (out of memory)";
        }
        // Refilling the workers (and starting them) is the pool's thread's.
        if (violation.empty() && !queue_.empty() && !broken_)
          kick_locked();
      }
      if (n == 0 || !violation.empty())
        w->doomed = true; // no one claims the socket any more
    }
    finish(done);
    if (n == 0 || !violation.empty())
    {
      // As when the pool's thread sees it, and after the replies read
      // before it are complete: died() reaps the worker and fails or
      // requeues its calls.
      asio::post(ioc_, [this, w, violation] { died(w, violation); });
    }
    {
      std::lock_guard lk(m_);
      if (--w->waiter_depth == 0)
        arm_locked(*w); // the pool's thread watches it again
    }
    return !timed_out && n != 0 && violation.empty();
  }

  /// Sends queued jobs to the workers that have room; true if more needs
  /// doing than that (a worker to start).
  bool refill_locked()
  {
    while (!queue_.empty() && !broken_)
    {
      bool spawn_one;
      worker_ptr w = pick_locked(spawn_one);
      if (spawn_one || !w)
      {
        flush_locked();
        return spawn_one;
      }
      auto job = std::move(queue_.front());
      queue_.pop_front();
      if (!job->started)
      {
        if (!job->start())
          continue;
        job->started = true;
      }
      send_locked(w, std::move(job));
    }
    flush_locked();
    return broken_ && !queue_.empty();
  }

  /// Takes the complete responses off the read buffer; returns a protocol
  /// violation, if any (the worker is then killed).
  std::string parse_locked(const worker_ptr& w, std::vector<outcome>& done)
  {
    for (;;)
    {
      const std::size_t have = w->rend - w->rbeg;
      if (have < 4)
        return {};
      std::uint32_t len;
      std::memcpy(&len, w->rbuf.data() + w->rbeg, 4);
      if (len == 0 || len > options_.max_message_size + detail::frame_slack)
        return "sent a malformed or oversized message";
      if (have < 4 + std::size_t(len))
      {
        if (w->rbuf.size() < 4 + std::size_t(len))
        {
          std::memmove(w->rbuf.data(), w->rbuf.data() + w->rbeg, have);
          w->rbeg = 0;
          w->rend = have;
          w->rbuf.resize(4 + std::size_t(len));
        }
        return {};
      }
      const char* body = w->rbuf.data() + w->rbeg + 4;
      w->rbeg += 4 + std::size_t(len);
      const char status = body[0];
      if (status == detail::status_init_failed)
      {
        init_failed_locked(*w, body + 1, len - 1, done);
        continue;
      }
      if (w->inflight.empty())
        return "answered a call it was not sent";
      flight f = std::move(w->inflight.front());
      w->inflight.pop_front();
      const auto now = clock::now();
      if (w->completed++ > 0) // the first includes the worker's start
      {
        const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
            now - std::max(f.sent, w->last_done))
                            .count();
        service_ns_ = service_ns_ < 0 ? ns : (service_ns_ * 7 + ns) / 8;
      }
      w->last_done = now;
      if (w->inflight.empty() && (w->retiring || (shutdown_ && queue_.empty())))
        close_send_locked(*w);
      done.push_back({std::move(f.job), status, std::string(body + 1, len - 1)});
    }
  }

  void init_failed_locked(worker& w, const char* p, std::size_t n, std::vector<outcome>& done)
  {
    std::string type, message;
    try
    {
      wire_reader r(p, n);
      type = r.get<std::string>();
      message = r.get<std::string>();
    }
    catch (...)
    {
    }
    if (!broken_)
    {
      broken_ = true;
      broken_reason_ = "asioloop: the process pool is broken: its initializer failed in "
                       "worker process "
          + std::to_string(w.pid) + " with " + type + ": " + message;
    }
    // Failed once m_ is released, as 'B'roken.
    for (auto& j : queue_)
      done.push_back({std::move(j), 'B', {}});
    queue_.clear();
    for (auto& f : w.inflight)
      done.push_back({std::move(f.job), 'B', {}});
    w.inflight.clear();
    w.retiring = true;
  }

  /// Completes the futures; without m_, as their callbacks may submit.
  void finish(std::vector<outcome>& done)
  {
    for (auto& o : done)
    {
      try
      {
        wire_reader r(o.body.data(), o.body.size());
        if (o.status == detail::status_result)
          o.job->complete(r);
        else if (o.status == detail::status_error)
        {
          auto type = r.get<std::string>();
          auto message = r.get<std::string>();
          o.job->fail(std::make_exception_ptr(remote_error(std::move(type), message)));
        }
        else if (o.status == 'B')
        {
          std::string why;
          {
            std::lock_guard lk(m_);
            why = broken_reason_;
          }
          o.job->fail(std::make_exception_ptr(broken_executor_error(why)));
        }
        else
          throw std::runtime_error(
              "asioloop: unknown response from a process-pool worker");
      }
      catch (...)
      {
        o.job->fail(std::current_exception());
      }
    }
    done.clear();
  }

  /// The worker's socket failed or closed: it exited (or must be made to).
  void died(const worker_ptr& w, const std::string& violation)
  {
    std::unique_lock lk(m_);
    if (w->dead)
      return;
    w->dead = true;
    ::epoll_ctl(ep_, EPOLL_CTL_DEL, w->fd, nullptr);
    ::close(w->fd);
    w->fd = -1;
    lk.unlock();

    int status = 0;
    pid_t r = ::waitpid(w->pid, &status, WNOHANG);
    if (r == 0) // not reaped yet (never kill a pid that may have been reused)
    {
      // Its end is closed, so it is exiting, or useless: make sure.
      r = reap_now(w->pid, &status);
    }
    std::string why = detail::describe_status(w->pid, status, r == w->pid);
    if (!violation.empty())
      why += " after it " + violation;

    lk.lock();
    std::unique_ptr<detail::pp_job> running;
    if (!w->inflight.empty())
    {
      running = std::move(w->inflight.front().job);
      w->inflight.pop_front();
      // The jobs sent behind the one that died never started: resend them.
      for (auto it = w->inflight.rbegin(); it != w->inflight.rend(); ++it)
        queue_.push_front(std::move(it->job));
      w->inflight.clear();
    }
    pids_.erase(std::remove(pids_.begin(), pids_.end(), w->pid), pids_.end());
    workers_.erase(std::remove(workers_.begin(), workers_.end(), w), workers_.end());
    lk.unlock();
    if (running)
      running->fail(std::make_exception_ptr(broken_executor_error(
          "asioloop: a process-pool " + why
          + " while running this call; the pool replaces it")));
    dispatch();
  }

  const std::size_t max_workers_;
  const process_pool_options options_;
  std::string argv0_;
  std::string init_frame_;
  sigset_t child_mask_{};

  asio::io_context ioc_{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard_{
      asio::make_work_guard(ioc_)};
  // The workers' sockets, each registered one-shot (arm_locked()); itself
  // watched by the pool's thread through Asio.
  int ep_ = -1;
  // Made in start(), after the first spawn: making one sets up Asio's
  // reactor, which the first worker need not wait for.
  std::optional<asio::posix::stream_descriptor> ep_desc_;
  bool ep_stopped_ = false; // the pool's thread only
  std::thread thread_;
  std::atomic<std::thread::id> thread_id_{};
  std::mutex join_m_;

  mutable std::mutex m_;
  std::deque<std::unique_ptr<detail::pp_job>> queue_;
  std::vector<worker_ptr> workers_;
  std::vector<int> pids_;
  bool shutdown_ = false;
  bool broken_ = false;
  std::string broken_reason_;
  bool kick_pending_ = false;
  bool spawn_failed_ = false;
  std::string spawn_error_;
  long long service_ns_ = -1; // moving average of a job's time in a worker
  std::vector<outcome> done_; // the pool's thread only
};

process_pool_executor::process_pool_executor(
    std::size_t max_workers, process_pool_options options)
{
  if (max_workers == 0)
    max_workers = std::max(1u, std::thread::hardware_concurrency());
  impl_ = std::make_shared<impl>(max_workers, options);
  impl_->start();
}

process_pool_executor::~process_pool_executor() { impl_->shutdown_and_release(); }

void process_pool_executor::enqueue(std::unique_ptr<detail::pp_job> job)
{
  impl_->enqueue(std::move(job));
}

void process_pool_executor::shutdown(bool wait, bool cancel_futures)
{
  impl_->shutdown(wait, cancel_futures);
}

std::size_t process_pool_executor::max_workers() const noexcept
{
  return impl_->max_workers();
}

std::vector<int> process_pool_executor::worker_pids() const { return impl_->pids(); }

} // namespace asioloop
