//
// bench/bench_common.hpp
//
// What both benchmark programs share: the clock, the output format
// (workload<TAB>impl<TAB>metric<TAB>value<TAB>unit, as bench/peers.py prints)
// and the command line (--only W1 [--n 1000]).
//

#ifndef ASIOLOOP_BENCH_COMMON_HPP
#define ASIOLOOP_BENCH_COMMON_HPP

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <string>

#include <sys/resource.h>

namespace bench {

using bench_clock = std::chrono::steady_clock;

inline double seconds(bench_clock::time_point a, bench_clock::time_point b)
{
  return std::chrono::duration<double>(b - a).count();
}

inline void out(const char* workload, const char* impl, const char* metric,
    double value, const char* unit)
{
  std::printf("%s\t%s\t%s\t%.3f\t%s\n", workload, impl, metric, value, unit);
  std::fflush(stdout);
}

/// Peak resident memory of this process, in bytes.
inline long peak_rss()
{
  struct rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss * 1024L;
}

inline void check(bool ok, const char* what)
{
  if (!ok)
  {
    std::fprintf(stderr, "CHECK FAILED: %s\n", what);
    std::exit(2);
  }
}

/// Runs the workload named by --only (each in a fresh process), with the
/// count given by --n or its default.
inline int main(int argc, char** argv,
    const std::map<std::string, std::pair<long, std::function<void(long)>>>& workloads)
{
  std::string only;
  long n = 0;
  for (int i = 1; i + 1 < argc; i += 2)
  {
    std::string a = argv[i];
    if (a == "--only")
      only = argv[i + 1];
    else if (a == "--n")
      n = std::atol(argv[i + 1]);
  }
  bool ran = false;
  for (auto& [name, w] : workloads)
    if (only.empty() || only == name)
    {
      w.second(n > 0 ? n : w.first);
      ran = true;
    }
  if (!ran)
    std::fprintf(stderr, "no workload named %s\n", only.c_str());
  return ran ? 0 : 1;
}

} // namespace bench

#endif // ASIOLOOP_BENCH_COMMON_HPP
