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
import gc
import sys
import threading
import time

clock = time.perf_counter


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


# name -> (function, default n)
WORKLOADS = {
    "W1": (w1, 1_000_000),
    "W1b": (w1b, 1_000_000),
    "W8": (w8, 1_000_000),
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
