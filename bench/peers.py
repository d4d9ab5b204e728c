#!/usr/bin/python3
"""asioloop's Python peers: run the benchmark workloads on asyncio or uvloop.

The workloads are defined in shared/bench/WORKLOADS.md; bench/run runs this
script next to the C++ programs and compares the figures.

Usage:
    /usr/bin/python3 bench/peers.py --loop asyncio|uvloop [--only W1,W8] [--n W1=1000]

Prints one line per metric, tab-separated:
    workload  impl  metric  value  unit
where impl is the --loop name and the main metric is called "throughput".
Every workload checks its result and the script exits with status 2 if a
check fails.  To add a workload, write a function taking (loop_name, n) and
register it in WORKLOADS with its default n.
"""
import argparse
import asyncio
import functools
import gc
import random
import resource
import sys
import threading
import time

clock = time.perf_counter
mono = time.monotonic  # the raw clock that timer lateness is read from


def new_loop(name):
    if name == "uvloop":
        import uvloop
        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def report(workload, impl, metric, value, unit):
    text = str(value) if isinstance(value, int) else f"{value:.3f}"
    print(f"{workload}\t{impl}\t{metric}\t{text}\t{unit}", flush=True)


def check(ok, what):
    if not ok:
        print(f"peers.py: check failed: {what}", file=sys.stderr, flush=True)
        sys.exit(2)


def run_in_loop(loop_name, main):
    """Run coroutine function main(loop) to completion on a fresh loop."""
    loop = new_loop(loop_name)
    try:
        return loop.run_until_complete(main(loop))
    finally:
        loop.close()


# W1: from inside the loop, call_soon n callbacks that each bump a counter.
# Timed from the first call_soon to the end of the last callback.
def w1(loop_name, n):
    async def main(loop):
        count = 0
        t_last = 0.0
        done = loop.create_future()

        def cb():
            nonlocal count, t_last
            count += 1
            if count == n:
                t_last = clock()
                done.set_result(None)

        call_soon = loop.call_soon
        t0 = clock()
        for _ in range(n):
            call_soon(cb)
        await done
        return count, t_last - t0

    count, elapsed = run_in_loop(loop_name, main)
    check(count == n, f"W1 ran {count} of {n} callbacks")
    report("W1", loop_name, "N", n, "callbacks")
    report("W1", loop_name, "throughput", n / elapsed, "callbacks/s")


# W1b: a chain, each callback call_soon-s the next, n callbacks in all.
def w1b(loop_name, n):
    async def main(loop):
        count = 0
        t_last = 0.0
        done = loop.create_future()
        call_soon = loop.call_soon

        def cb():
            nonlocal count, t_last
            count += 1
            if count < n:
                call_soon(cb)
            else:
                t_last = clock()
                done.set_result(None)

        t0 = clock()
        call_soon(cb)
        await done
        return count, t_last - t0

    count, elapsed = run_in_loop(loop_name, main)
    check(count == n, f"W1b ran {count} of {n} callbacks")
    report("W1b", loop_name, "N", n, "callbacks")
    report("W1b", loop_name, "throughput", n / elapsed, "callbacks/s")


# W2 / W2L: call_later n timers with delays uniform over 0-100 ms (seeded, so
# every implementation gets the same delays); run until all fired.  Each
# callback records its lateness, the monotonic time at firing minus its due
# time (monotonic time at scheduling + delay).  Throughput is timed from the
# first call_later to the end of the last callback.  W2L is the same work with
# fewer timers, so that most are due after scheduling ended: its main figure
# is max_lateness_after_sched.
def w2(workload, loop_name, n):
    rng = random.Random(42)
    delays = [rng.uniform(0.0, 0.1) for _ in range(n)]

    async def main(loop):
        fired = 0
        t_last = 0.0
        t_sched_end_mono = 0.0  # callbacks cannot run before it is set
        lates = []
        max_late_after = None  # None: no timer was due after scheduling ended
        done = loop.create_future()

        def cb(due):
            nonlocal fired, t_last, max_late_after
            late = mono() - due
            lates.append(late)
            if due > t_sched_end_mono and (max_late_after is None or late > max_late_after):
                max_late_after = late
            fired += 1
            if fired == n:
                t_last = clock()
                done.set_result(None)

        call_later = loop.call_later
        t0 = clock()
        for d in delays:
            call_later(d, cb, mono() + d)
        t_sched = clock()
        t_sched_end_mono = mono()
        await done
        return fired, t_last - t0, t_sched - t0, lates, max_late_after

    fired, elapsed, sched, lates, max_late_after = run_in_loop(loop_name, main)
    check(fired == n and len(lates) == n, f"{workload} fired {fired} of {n} timers")
    lates.sort()
    report(workload, loop_name, "N", n, "timers")
    report(workload, loop_name, "throughput", n / elapsed, "timers/s")
    report(workload, loop_name, "schedule_rate", n / sched, "timers/s")
    report(workload, loop_name, "max_lateness", lates[-1] * 1e3, "ms")
    if max_late_after is None:
        print(f"peers.py: {workload}: no timer was due after scheduling ended; "
              "max_lateness_after_sched not reported", file=sys.stderr, flush=True)
    else:
        report(workload, loop_name, "max_lateness_after_sched", max_late_after * 1e3, "ms")
    report(workload, loop_name, "p50_lateness", lates[len(lates) // 2] * 1e3, "ms")


# W3: call_later(10 s) then cancel, n pairs: create all the handles, cancel
# them all, then yield to the loop twice so that it can drop the cancelled
# timers.  Timed from the first call_later to after the second yield; no
# callback may run and every handle must report cancelled.
def w3(loop_name, n):
    async def main(loop):
        fired = 0

        def cb():
            nonlocal fired
            fired += 1

        call_later = loop.call_later
        t0 = clock()
        handles = [call_later(10.0, cb) for _ in range(n)]
        for h in handles:
            h.cancel()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        t_end = clock()
        cancelled = sum(1 for h in handles if h.cancelled())
        return fired, cancelled, t_end - t0

    fired, cancelled, elapsed = run_in_loop(loop_name, main)
    check(fired == 0 and cancelled == n,
          f"W3: {fired} timers fired, {cancelled} of {n} handles cancelled")
    report("W3", loop_name, "N", n, "pairs")
    report("W3", loop_name, "throughput", n / elapsed, "pairs/s")


# W4: create n tasks, each a coroutine that yields once (sleep(0)) and returns
# its index, then gather them all.  Timed from before the first create_task to
# after the gather.  Memory: the growth of the process's peak RSS (ru_maxrss,
# KiB on Linux) from right before the tasks are created to after the gather,
# per task.  A peak only grows, so this is meaningful only when W4 starts from
# a small process: run it alone (--only W4), as bench/run does.
async def w4_task(i):
    await asyncio.sleep(0)
    return i


def w4(loop_name, n):
    async def main(loop):
        create_task = loop.create_task
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = clock()
        tasks = [create_task(w4_task(i)) for i in range(n)]
        results = await asyncio.gather(*tasks)
        t_end = clock()
        rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return results, t_end - t0, (rss1 - rss0) * 1024

    results, elapsed, rss_growth = run_in_loop(loop_name, main)
    check(len(results) == n and sum(results) == n * (n - 1) // 2,
          f"W4 gathered {len(results)} of {n} results, sum {sum(results)}")
    report("W4", loop_name, "N", n, "tasks")
    report("W4", loop_name, "throughput", n / elapsed, "tasks/s")
    report("W4", loop_name, "bytes_per_task", rss_growth / n, "bytes")


# W5: n futures: for each, create_future, add a done callback that bumps a
# counter, set_result; run until all callbacks ran.  Timed from the first
# create_future to the end of the last callback.
def w5(loop_name, n):
    async def main(loop):
        count = 0
        t_last = 0.0
        done = loop.create_future()

        def cb(fut):
            nonlocal count, t_last
            count += 1
            if count == n:
                t_last = clock()
                done.set_result(None)

        create_future = loop.create_future
        t0 = clock()
        for i in range(n):
            f = create_future()
            f.add_done_callback(cb)
            f.set_result(i)
        await done
        return count, t_last - t0

    count, elapsed = run_in_loop(loop_name, main)
    check(count == n, f"W5 ran {count} of {n} done callbacks")
    report("W5", loop_name, "N", n, "futures")
    report("W5", loop_name, "throughput", n / elapsed, "ops/s")


# W6: n trivial functions through the default executor with run_in_executor,
# gathered in batches of 1,000, after one untimed batch that starts the
# executor's threads.
def _w6_fn(x):
    return x + 1


def w6(loop_name, n, batch=1000):
    async def main(loop):
        await asyncio.gather(
            *[loop.run_in_executor(None, _w6_fn, i) for i in range(batch)])
        total = 0
        t0 = clock()
        for b in range(0, n, batch):
            res = await asyncio.gather(
                *[loop.run_in_executor(None, _w6_fn, i)
                  for i in range(b, b + batch)])
            total += sum(res)
        return total, clock() - t0

    total, elapsed = run_in_loop(loop_name, main)
    check(total == n * (n + 1) // 2, f"W6 summed {total}")
    report("W6", loop_name, "N", n, "jobs")
    report("W6", loop_name, "throughput", n / elapsed, "jobs/s")


# W7: the loop runs run_forever in a second thread; this (main) thread does n
# sequential run_coroutine_threadsafe(trivial(), loop).result() round trips.
async def w7_trivial():
    return 1


def w7(loop_name, n):
    loop = new_loop(loop_name)
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    submit = asyncio.run_coroutine_threadsafe
    for _ in range(200):  # warm-up
        submit(w7_trivial(), loop).result()
    lat = [0] * n
    total = 0
    ns = time.perf_counter_ns
    t0 = clock()
    for i in range(n):
        s = ns()
        total += submit(w7_trivial(), loop).result()
        lat[i] = ns() - s
    t1 = clock()
    loop.call_soon_threadsafe(loop.stop)
    thread.join()
    loop.close()
    check(total == n, "W7 total")
    lat.sort()
    report("W7", loop_name, "N", n, "round_trips")
    report("W7", loop_name, "throughput", n / (t1 - t0), "round_trips/s")
    report("W7", loop_name, "p50_latency", lat[n // 2] / 1e3, "us")
    report("W7", loop_name, "p99_latency", lat[n * 99 // 100] / 1e3, "us")


# W8: the loop runs run_forever in a second thread; this (main) thread is the
# producer and pushes n call_soon_threadsafe callbacks.  Timed from the first
# push to the end of the last callback; every callback must run exactly once.
def w8(loop_name, n):
    loop = new_loop(loop_name)
    count = 0
    t_last = 0.0
    all_ran = threading.Event()

    def cb():
        nonlocal count, t_last
        count += 1
        if count == n:
            t_last = clock()
            all_ran.set()

    # daemon: if the producer fails, the process must still be able to exit
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    # Do not start the clock before the loop is actually running.
    running = threading.Event()
    loop.call_soon_threadsafe(running.set)
    running.wait()

    push = loop.call_soon_threadsafe
    t0 = clock()
    for _ in range(n):
        push(cb)
    t_pushed = clock()
    # A lost callback would hang here forever: give up after a generous wait.
    finished = all_ran.wait(timeout=120)
    loop.call_soon_threadsafe(loop.stop)
    thread.join()
    loop.close()

    check(finished and count == n, f"W8 ran {count} of {n} callbacks")
    report("W8", loop_name, "N", n, "callbacks")
    report("W8", loop_name, "throughput", n / (t_last - t0), "callbacks/s")
    report("W8", loop_name, "push_rate", n / (t_pushed - t0), "callbacks/s")


# W10: n integers through an asyncio.Queue from one producer task to one
# consumer task (the consumer is created first, so it waits on the empty queue
# once).  "throughput" uses an unbounded queue (the producer never waits);
# "throughput_maxsize_100" a queue of 100, where the tasks take turns.  Timed
# from before the tasks are created to the end of the consumer.
def w10(loop_name, n):
    async def producer(q):
        put = q.put
        for i in range(n):
            await put(i)

    async def consumer(q):
        get = q.get
        total = 0
        for _ in range(n):
            total += await get()
        return total

    async def main(loop, maxsize):
        q = asyncio.Queue(maxsize)
        t0 = clock()
        c = loop.create_task(consumer(q))
        p = loop.create_task(producer(q))
        total = await c
        t_end = clock()
        await p
        return total, t_end - t0

    report("W10", loop_name, "N", n, "items")
    for maxsize, metric in ((0, "throughput"), (100, "throughput_maxsize_100")):
        total, elapsed = run_in_loop(loop_name, lambda loop: main(loop, maxsize))
        check(total == n * (n - 1) // 2, f"W10 ({metric}) summed {total}")
        report("W10", loop_name, metric, n / elapsed, "items/s")


# W9: a 2-worker ProcessPoolExecutor. Cold start: pool creation to the first
# result; then n trivial jobs (x * 2) through run_in_executor, gathered.
def _w9_double(x):
    return x * 2


def w9(loop_name, n):
    import concurrent.futures

    async def main(loop):
        t0 = clock()
        pool = concurrent.futures.ProcessPoolExecutor(max_workers=2)
        first = await loop.run_in_executor(pool, _w9_double, 21)
        t_cold = clock() - t0
        check(first == 42, "W9 cold result")
        t0 = clock()
        res = await asyncio.gather(
            *[loop.run_in_executor(pool, _w9_double, i) for i in range(n)])
        t1 = clock()
        pool.shutdown(wait=True)
        return sum(res), t1 - t0, t_cold

    total, elapsed, t_cold = run_in_loop(loop_name, main)
    check(total == n * (n - 1), "W9 sum")
    report("W9", loop_name, "N", n, "jobs")
    report("W9", loop_name, "throughput", n / elapsed, "jobs/s")
    report("W9", loop_name, "cold_start_first_result", t_cold * 1e3, "ms")


# name -> (function, default n)
WORKLOADS = {
    "W1": (w1, 1_000_000),
    "W1b": (w1b, 1_000_000),
    "W2": (functools.partial(w2, "W2"), 200_000),
    "W2L": (functools.partial(w2, "W2L"), 20_000),
    "W3": (w3, 200_000),
    "W4": (w4, 200_000),
    "W5": (w5, 500_000),
    "W6": (w6, 100_000),
    "W7": (w7, 20_000),
    "W8": (w8, 1_000_000),
    "W9": (w9, 2_000),
    "W10": (w10, 1_000_000),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--loop", choices=["asyncio", "uvloop"], required=True)
    ap.add_argument("--only", default=",".join(WORKLOADS),
                    help="comma-separated workload ids (default: all)")
    ap.add_argument("--n", action="append", default=[], metavar="WID=N",
                    help="override a workload's size, e.g. W1=1000")
    args = ap.parse_args()

    sizes = {w: n for w, (_, n) in WORKLOADS.items()}
    for item in args.n:
        w, _, n = item.partition("=")
        if w not in WORKLOADS or not n.isdigit() or int(n) < 1:
            ap.error(f"bad --n {item!r}")
        sizes[w] = int(n)

    selected = [w for w in args.only.split(",") if w]
    unknown = [w for w in selected if w not in WORKLOADS]
    if unknown:
        ap.error(f"unknown workload(s): {', '.join(unknown)}")

    for w in selected:
        gc.collect()  # start each workload without the previous one's garbage
        fn, _ = WORKLOADS[w]
        fn(args.loop, sizes[w])


if __name__ == "__main__":
    main()
