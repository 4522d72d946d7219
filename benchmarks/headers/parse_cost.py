#!/usr/bin/env python3
"""What including a tradestate header costs: the time g++ takes to parse a
translation unit that includes only that header (-fsyntax-only), against
one that includes only backend.hpp (the plugin interface, the lightest
header a backend or host needs).

    benchmarks/headers/parse_cost.py [--reps N] [--cxx g++] [--include DIR]

Runs are interleaved (every header once per round) and the median of each
is reported, with its ratio to backend.hpp. The target, from the
new-user issue: persister.hpp at most 1.5x backend.hpp. Exit 1 if missed.
"""
import argparse
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

HEADERS = ["backend.hpp", "persister.hpp", "session.hpp", "open.hpp", "tradestate.hpp"]
TARGET = ("persister.hpp", 1.5)


def main() -> int:
    root = pathlib.Path(__file__).resolve().parents[2]
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=11)
    ap.add_argument("--cxx", default="g++")
    ap.add_argument("--include", default=str(root / "include"))
    a = ap.parse_args()
    times = {h: [] for h in HEADERS}
    with tempfile.TemporaryDirectory() as tmp:
        tus = {}
        for h in HEADERS:
            tu = pathlib.Path(tmp) / (h.replace(".", "_") + ".cpp")
            tu.write_text(f"#include <tradestate/{h}>\n")
            tus[h] = tu
        for r in range(a.reps):
            for h in HEADERS:
                t0 = time.perf_counter()
                subprocess.run([a.cxx, "-std=c++20", "-fsyntax-only", "-I", a.include, "-DSPDLOG_COMPILED_LIB",
                                "-DSPDLOG_FMT_EXTERNAL", str(tus[h])], check=True)
                times[h].append(time.perf_counter() - t0)
            print(f"round {r + 1}/{a.reps}", file=sys.stderr, end="\r")
    print(file=sys.stderr)
    base = statistics.median(times["backend.hpp"])
    print(f"{'header':<18} {'median s':>9} {'x backend.hpp':>14}")
    for h in HEADERS:
        m = statistics.median(times[h])
        print(f"{h:<18} {m:9.2f} {m / base:14.2f}")
    ratio = statistics.median(times[TARGET[0]]) / base
    ok = ratio <= TARGET[1]
    print(f"target: {TARGET[0]} <= {TARGET[1]}x backend.hpp: {'met' if ok else 'MISSED'} ({ratio:.2f}x, "
          f"{a.reps} interleaved rounds, {a.cxx})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
