#!/usr/bin/env python3
# Writes the postgres figures into docs/scale-out.md (between the BENCHMARK
# markers) from the raw results of scripts/bench-postgres.
#
#   report_postgres.py RAW_DIR OUT.md
import datetime, glob, json, os, platform, re, subprocess, sys

raw, out = sys.argv[1], sys.argv[2]
B = {}
for f in sorted(glob.glob(os.path.join(raw, "*.json"))):
    for b in json.load(open(f))["benchmarks"]:
        if b.get("run_type", "iteration") != "iteration":
            continue
        m = re.match(r"(save|load)/([a-z-]+)/n:(\d+)/trades:(\d+)", b["name"])
        if m:
            B[(m.group(1), m.group(2), int(m.group(3)))] = b

def us(b):
    return b["us_per_op"] if "us_per_op" in b else b["real_time"]

def fmt(x):
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}" if x >= 10 else f"{x:,.2f}"

def size(n):
    for unit in ["B", "KB", "MB", "GB"]:
        if n < 1024 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024

# The backends the run measured (json-files, the reference, first).
backends = sorted({k[1] for k in B}, key=lambda be: (be != "json-files", be == "postgres", be))
sizes = sorted({k[2] for k in B})
cpu = "?"
try:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip(); break
except OSError:
    pass
pgver = subprocess.run(["bash", "-c", "ls /usr/lib/postgresql | sort -n | tail -1"], capture_output=True, text=True).stdout.strip()
L = ["<!-- BENCHMARK FIGURES: written by scripts/bench-postgres; do not edit by hand -->", ""]
L.append(f"Produced by `scripts/bench-postgres` on {datetime.datetime.now():%Y-%m-%d %H:%M} "
         f"({os.cpu_count()} CPUs, {cpu}, PostgreSQL {pgver} on the same host over a Unix socket, "
         f"load average {os.getloadavg()[0]:.2f} at the end). Every figure comes from one run of "
         "`tradestate_bench`; the server runs with PostgreSQL's durable defaults (`fsync`, `synchronous_commit` and "
         "`full_page_writes` on), the file backends with `fsync = true`. Sessions have a 10,000-trade history. "
         "*×json-files* is the time over json-files' time in the same run; *limit* for postgres is an append + "
         "`fdatasync` of the document's bytes into a file in the same run (what a write-ahead log must at least do).")
L.append("")
L.append("| positions | backend | save (µs) | save ×json-files | save doc MB/s | ×limit | load (µs) | load ×json-files |")
L.append("|---:|---|---:|---:|---:|---:|---:|---:|")
for n in sizes:
    js, jl = B.get(("save", "json-files", n)), B.get(("load", "json-files", n))
    for be in backends:
        s, l = B.get(("save", be, n)), B.get(("load", be, n))
        if not s or not l:
            continue
        row = [f"{n:,}", be, fmt(us(s)), f"{us(s) / us(js):.2f}" if js else "–", fmt(s["doc_MBps"]),
               f"{s['x_limit']:.2f}", fmt(us(l)), f"{us(l) / us(jl):.2f}" if jl else "–"]
        L.append("| " + " | ".join(row) + " |")
L.append("")
doc = {n: B[("save", "json-files", n)]["doc_bytes"] for n in sizes if ("save", "json-files", n) in B}
L.append("Document sizes (compact JSON): " + ", ".join(f"{n:,} positions {size(d)}" for n, d in doc.items()) + ".")
L.append("")
L.append("<!-- END BENCHMARK FIGURES -->")
text = open(out).read()
start = text.index("<!-- BENCHMARK FIGURES")
end = text.index("<!-- END BENCHMARK FIGURES -->", start) + len("<!-- END BENCHMARK FIGURES -->") \
    if "<!-- END BENCHMARK FIGURES -->" in text else len(text)
text = text[:start] + "\n".join(L) + text[end:]
open(out, "w").write(text if text.endswith("\n") else text + "\n")
print("\n".join(L))
