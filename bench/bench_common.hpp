//
// bench/bench_common.hpp
//
// What both benchmark programs share: the clock, the output format
// (workload<TAB>impl<TAB>metric<TAB>value<TAB>unit, as bench/peers.py prints)
// and the command line (--only W1 [--n 1000]).
//

#ifndef ASIOLOOP_BENCH_COMMON_HPP
#define ASIOLOOP_BENCH_COMMON_HPP

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

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

/// W2's delays: uniform over 0-100 ms, the same sequence in every program.
inline std::vector<bench_clock::duration> w2_delays(long n)
{
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> uniform(0.0, 0.1);
  std::vector<bench_clock::duration> delays(n);
  for (auto& d : delays)
    d = std::chrono::duration_cast<bench_clock::duration>(
        std::chrono::duration<double>(uniform(rng)));
  return delays;
}

/// W2's measurements: the lateness of each timer (fire time minus due time,
/// on the raw clock) and the times of the run.
struct w2_record
{
  explicit w2_record(long n) : n(n) { lates.reserve(n); }

  /// Records a timer due at @c due firing now; true for the last one.
  bool fired(bench_clock::time_point due)
  {
    const double late = std::chrono::duration<double>(bench_clock::now() - due).count();
    lates.push_back(late);
    max_late = std::max(max_late, late);
    if (due > t_sched)
      max_late_post = std::max(max_late_post, late);
    if (static_cast<long>(lates.size()) < n)
      return false;
    t_end = bench_clock::now();
    return true;
  }

  void report(const char* id, const char* impl)
  {
    check(static_cast<long>(lates.size()) == n, "W2 fired");
    std::sort(lates.begin(), lates.end());
    out(id, impl, "throughput", n / seconds(t0, t_end), "timers/s");
    out(id, impl, "schedule_rate", n / seconds(t0, t_sched), "timers/s");
    out(id, impl, "max_lateness", max_late * 1e3, "ms");
    out(id, impl, "max_lateness_after_sched", max_late_post * 1e3, "ms");
    out(id, impl, "p50_lateness", lates[lates.size() / 2] * 1e3, "ms");
  }

  long n;
  bench_clock::time_point t0, t_sched = bench_clock::time_point::max(), t_end;
  double max_late = -1e9, max_late_post = -1e9;
  std::vector<double> lates;
};

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
