#!/usr/bin/env python3
# Writes docs/benchmarks.md and its chart from the raw results of scripts/bench.
#
#   report.py RAW_DIR OUT.md BUILD_DIR    (scripts/bench calls it; BENCH_REPORT_ONLY=1 scripts/bench reruns it)
import glob, json, os, platform, re, subprocess, sys, datetime

raw, out, build = sys.argv[1], sys.argv[2], sys.argv[3]
img_rel = "img/benchmarks.png"
img = os.path.join(os.path.dirname(out), img_rel)

runs = []
ctx = None
for f in sorted(glob.glob(os.path.join(raw, "*.json"))):
    d = json.load(open(f))
    ctx = ctx or d.get("context", {})
    runs += [b for b in d["benchmarks"] if b.get("run_type", "iteration") == "iteration"]

def parse(name):
    parts = name.split("/")
    kind, sub = parts[0], parts[1]
    kv = {}
    for p in parts[2:]:
        if ":" in p:
            k, v = p.split(":", 1)
            kv[k] = v
    return kind, sub, kv

B = {}
for b in runs:
    kind, sub, kv = parse(b["name"])
    key = (kind, sub, int(kv.get("n", 0)), int(kv.get("trades", 0)), kv.get("fsync"))
    B[key] = b

def us(b):
    return b["us_per_op"] if "us_per_op" in b else b["real_time"] * {"ns": 1e-3, "us": 1, "ms": 1e3, "s": 1e6}[b["time_unit"]]

sizes = sorted({k[2] for k in B if k[0] in ("save", "load") and k[3] != 0})
trades = sorted({k[3] for k in B if k[0] == "save" and k[3] != 0})
trades = trades[0] if trades else 0
# The backends the run measured, in the order it ran them (json-files, the
# reference the ratios use, first).
backends = list(dict.fromkeys(parse(b["name"])[1] for b in runs if parse(b["name"])[0] == "load"))
backends.sort(key=lambda be: be != "json-files")

def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
    except Exception:
        return "?"

cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip()
fs_type = sh("df -T /tmp | tail -1 | awk '{print $2\" on \"$1}'")
facts = [
    ("date", datetime.datetime.now().strftime("%Y-%m-%d %H:%M")),
    ("nproc", sh("nproc")),
    ("CPU", f"{cpu}, {ctx.get('mhz_per_cpu', '?')} MHz" if ctx else cpu),
    ("kernel", platform.release()),
    ("file system of the temp dirs", fs_type),
    ("compiler", sh("c++ --version | head -1")),
    ("load average at the end", sh("cut -d' ' -f1-3 /proc/loadavg")),
    ("build", "Release (-O3), " + build),
]

def f1(x):
    if x is None: return "–"
    if x >= 100: return f"{x:,.0f}"
    if x >= 10: return f"{x:.1f}"
    return f"{x:.2f}"

def human(n):
    for u in ["B", "KB", "MB", "GB"]:
        if n < 1000: return f"{n:.0f} {u}" if u == "B" else f"{n:.1f} {u}"
        n /= 1000.0
    return f"{n:.1f} TB"

L = []
L.append("# Benchmarks\n")
L.append("Produced by `scripts/bench` (Google Benchmark program `benchmarks/persistence/bench_main.cpp`, "
         "raw JSON in `" + raw + "`, this page written by `benchmarks/persistence/report.py`). Every figure below comes from one run on the machine described here; "
         "ratios compare measurements taken in that same run (the limit and plain-write baselines are timed "
         "interleaved with each measured save), because this machine is shared and noisy.\n")
L.append("## Machine\n")
L.append("| | |\n|---|---|")
for k, v in facts: L.append(f"| {k} | {v} |")
L.append("")
L.append("## What is measured\n")
L.append(f"- **State**: a seed-layout session (`SessionState`: timestamp, iteration, portfolio with open positions keyed by "
         f"NSE option symbol, configuration) with 10 / 1,000 / 100,000 open positions and a {trades:,}-trade closed history "
         "(`portfolio.trade_history`). *doc* is its compact JSON text; every MB/s figure is MB (10^6 bytes) per second.")
L.append("- **Save**: `StatePersister::save` through the real plugin loaded with `PluginLoader` (state → document → backend), "
         "with `fsync` on and off. json-files writes three files per save (the main file with its checksum member, "
         "`shared_portfolio_state.json`, `current_state.json`), each by atomic replace, and hard-links the previous main file "
         "as a backup; *stored* is the bytes those files hold. mmap-binary writes the binary encoding into the idle slot of its "
         "mapped file; compressed-archive appends one zstd record.")
L.append("- **Limit**: the same system calls with plain code on the same number of bytes, timed right after each save: "
         "json-files — temp file + write + fsync + rename per file + fsync(dir); mmap-binary — pwrite in place + fdatasync; "
         "compressed-archive — append + fdatasync. **Plain**: write(+fsync) of the same bytes over an existing file. "
         "`×limit` and `×plain` are our time over those.")
L.append("- **Seed's path**: `/usr/bin/python3` running `json.dump(state, f, indent=2)` + flush (+`os.fsync`) of the same "
         "document, many iterations in one interpreter, timed inside it (start-up excluded).")
L.append("- **Load**: `StatePersister::load` — read, verify (checksums), parse/decode, validate and build the `SessionState`. "
         "**Parse only**: `boost::json::parse` of the json-files main file bytes alone.")
L.append("- **Memory**: bytes allocated through `operator new` (host, plugin and Boost.JSON alike), peak during one save minus "
         "before, over the heap bytes of the state itself. Peak RSS is the process's (one process per state size).")
L.append("")

def get(kind, sub, n, fs=None, t=None):
    return B.get((kind, sub, n, trades if t is None else t, fs))

# ---- save tables
L.append("## Save\n")
for be in backends:
    L.append(f"### {be}\n")
    L.append("| positions | fsync | time/op (µs) | doc MB/s | stored | limit (µs) | ×limit | plain (µs) | ×plain | seed's Python (µs) | Python ÷ ours | alloc peak ÷ state | peak RSS (MB) |")
    L.append("|---:|:---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in sizes:
        for fs in ("1", "0"):
            b = get("save", be, n, fs)
            if not b: continue
            py = get("seed_python", "json.dump-indent2", n, fs)
            pyus = us(py) if py else None
            L.append(f"| {n:,} | {'on' if fs=='1' else 'off'} | {f1(us(b))} | {f1(b['doc_MBps'])} | {human(b['stored_bytes'])} | "
                     f"{f1(b['limit_us'])} | {b['x_limit']:.2f} | {f1(b['plain_us'])} | {b['x_plain']:.2f} | "
                     f"{f1(pyus)} | {f1(pyus/us(b)) if pyus else '–'} | {b['mem_x_state']:.2f} | {b['peak_rss_MB']:.0f} |")
    if be == "compressed-archive":
        L.append("")
        L.append("| positions | doc | binary encoding | record appended | doc ÷ record | binary ÷ record |")
        L.append("|---:|---:|---:|---:|---:|---:|")
        for n in sizes:
            b = get("save", be, n, "0")
            if b:
                L.append(f"| {n:,} | {human(b['doc_bytes'])} | {human(b['binary_bytes'])} | {human(b['stored_bytes'])} | "
                         f"{b['compression_x_json']:.2f} | {b['compression_x_binary']:.2f} |")
    L.append("")

# ---- load
L.append("## Load\n")
L.append("| positions | backend | time/op (µs) | file MB/s | doc MB/s | file | ÷ json-files time |")
L.append("|---:|---|---:|---:|---:|---:|---:|")
for n in sizes:
    jf = get("load", "json-files", n)
    for be in backends:
        b = get("load", be, n)
        if not b: continue
        L.append(f"| {n:,} | {be} | {f1(us(b))} | {f1(b['file_MBps'])} | {f1(b['doc_MBps'])} | {human(b['file_bytes'])} | "
                 f"{f1(us(jf)/us(b)) if jf else '–'}× faster |")
    p = get("parse_only", "boost-json", n)
    if p:
        L.append(f"| {n:,} | *Boost.JSON parse only* | {f1(us(p))} | {f1(p['file_MBps'])} | – | {human(p['file_bytes'])} | – |")
L.append("")

# ---- loop stall
L.append("## Loop stall per auto-save\n")
la = [b for k, b in B.items() if k[0] == "loop_stall"]
if la:
    L.append("A monitoring loop over the state below: each step closes one position and opens another (the history grows), "
             "then auto-saves with fsync through json-files, and waits its interval. *async* hands a copy of the state to "
             "`AsyncSaver` (what `fno_runner` does); *sync* calls `StatePersister::save` on the loop thread. The stall is "
             "the time the loop spends in that call.\n")
    L.append("| mode | positions | auto-saves | stall p50 (µs) | stall p99 (µs) | stall max (µs) | written | coalesced |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    for k, b in sorted(B.items()):
        if k[0] != "loop_stall": continue
        L.append(f"| {k[1]} | {k[2]:,} | {b['auto_saves']:.0f} | {f1(b['stall_p50_us'])} | {f1(b['stall_p99_us'])} | "
                 f"{f1(b['stall_max_us'])} | {b.get('written', 0):.0f} | {b.get('coalesced', 0):.0f} |")
    L.append("")

# ---- targets
T = []
def target(name, ok, detail):
    T.append((name, ok, detail))

big = max(sizes) if sizes else None
xs = []
for n in sizes:
    b = get("save", "json-files", n, "1")
    if b: xs.append((n, b["x_plain"], b["x_limit"]))
if xs:
    ok = all(x <= 1.5 for _, x, _ in xs)
    target("json-files save ≤ 1.5× the raw write+fsync of the same bytes", ok,
           "; ".join(f"{n:,}: {x:.2f}× plain, {y:.2f}× limit (atomic replace)" for n, x, y in xs))
pr = []
for n in sizes:
    for fs in ("1", "0"):
        b, p = get("save", "json-files", n, fs), get("seed_python", "json.dump-indent2", n, fs)
        if b and p: pr.append((n, fs, us(p) / us(b)))
if pr:
    target("json-files save ≥ 30× faster than the seed's Python path", all(r >= 30 for *_, r in pr),
           "; ".join(f"{n:,} fsync {'on' if fs=='1' else 'off'}: {r:.1f}×" for n, fs, r in pr))
if big:
    b = get("load", "json-files", big)
    if b: target("json-files load ≥ 300 MB/s", b["file_MBps"] >= 300,
                 f"{b['file_MBps']:.0f} MB/s of file ({b['doc_MBps']:.0f} MB/s of compact document) at {big:,} positions; "
                 f"Boost.JSON parse alone: {get('parse_only','boost-json',big)['file_MBps']:.0f} MB/s" if get('parse_only','boost-json',big) else "")
m = B.get(("save", "mmap-binary", 100, 0, "0"))
if m:
    target("mmap-binary save of 100 positions without fsync ≤ 5 µs", us(m) <= 5,
           f"{f1(us(m))} µs ({human(m['stored_bytes'])}; pwrite of the same bytes: {f1(m['limit_us'])} µs)")
lr = []
for n in sizes:
    a, c = get("load", "json-files", n), get("load", "mmap-binary", n)
    if a and c: lr.append((n, us(a) / us(c)))
if lr:
    target("mmap-binary load ≥ 3× faster than json-files", all(r >= 3 for _, r in lr),
           "; ".join(f"{n:,}: {r:.2f}×" for n, r in lr))
ar = []
for n in sizes:
    b = get("save", "compressed-archive", n, "0")
    if b: ar.append((n, b["doc_MBps"], b["compression_x_json"], get("save", "compressed-archive", n, "1")))
if ar:
    n, mbps, cr, on = ar[-1]
    target("compressed-archive append ≥ 200 MB/s of document at compression ≥ 3", mbps >= 200 and cr >= 3,
           f"at {n:,} positions: {mbps:.0f} MB/s without fsync" + (f", {on['doc_MBps']:.0f} MB/s with" if on else "") +
           f", compression {cr:.2f}× of the JSON document ({ar[-1][3]['compression_x_binary'] if ar[-1][3] else 0:.2f}× of its binary encoding)")
lin = []
for be in backends:
    pts = [(n, get("save", be, n, "0")) for n in sizes]
    pts = [(n, b) for n, b in pts if b]
    if len(pts) >= 2:
        (n1, b1), (n2, b2) = pts[-2], pts[-1]
        per1, per2 = us(b1) / b1["doc_bytes"], us(b2) / b2["doc_bytes"]
        lin.append((be, n1, n2, per2 / per1))
if lin:
    target("cost grows linearly with state size (time per document byte, largest two sizes, fsync off)",
           all(0.5 <= r <= 2.0 for *_, r in lin),
           "; ".join(f"{be}: {r:.2f}× per byte from {n1:,} to {n2:,}" for be, n1, n2, r in lin))
if big:
    mm = [(be, get("save", be, big, "1")) for be in backends]
    mm = [(be, b) for be, b in mm if b]
    if mm:
        target(f"memory for a {big:,}-position save ≤ 3× the state's own size", all(b["mem_x_state"] <= 3 for _, b in mm),
               "; ".join(f"{be}: {b['mem_x_state']:.2f}× ({human(b['save_extra_peak_bytes'])} over {human(b['state_bytes'])})" for be, b in mm))
for k, b in B.items():
    if k[0] == "loop_stall" and k[1] == "async":
        target(f"auto-save loop stall p99 < 1 ms at {k[2]:,} positions", b["stall_p99_us"] < 1000,
               f"p99 {b['stall_p99_us']:.0f} µs, p50 {b['stall_p50_us']:.0f} µs, max {b['stall_max_us']:.0f} µs over "
               f"{b['auto_saves']:.0f} auto-saves ({b.get('written',0):.0f} written, {b.get('coalesced',0):.0f} coalesced)")

L.insert(2, "## Targets\n\n| target | result | figures |\n|---|:---:|---|\n" +
         "\n".join(f"| {n} | {'met' if ok else '**missed**'} | {d} |" for n, ok, d in T) + "\n")

# ---- chart
dat = os.path.join(raw, "chart.dat")
with open(dat, "w") as f:
    f.write("# positions " + " ".join(f"save_{b} load_{b}" for b in backends) + " python parse limit_jf\n")
    for n in sizes:
        row = [str(n)]
        for be in backends:
            s, l = get("save", be, n, "1"), get("load", be, n)
            row += [f"{us(s)/1000:.6f}" if s else "NaN", f"{us(l)/1000:.6f}" if l else "NaN"]
        p, q, s = get("seed_python", "json.dump-indent2", n, "1"), get("parse_only", "boost-json", n), get("save", "json-files", n, "1")
        row += [f"{us(p)/1000:.6f}" if p else "NaN", f"{us(q)/1000:.6f}" if q else "NaN", f"{s['limit_us']/1000:.6f}" if s else "NaN"]
        f.write(" ".join(row) + "\n")
gp = f"""
set terminal png size 900,560 font ',10'
set output '{img}'
set logscale xy
set xlabel 'open positions (plus {trades:,} closed trades)'
set ylabel 'time per operation (ms)'
set title 'Save (fsync on) and load time vs state size'
set key outside right
set grid
plot '{dat}' using 1:2 with linespoints title 'save json-files', \\
     '' using 1:4 with linespoints title 'save mmap-binary', \\
     '' using 1:6 with linespoints title 'save compressed-archive', \\
     '' using 1:8 with linespoints dt 2 title 'seed Python json.dump+fsync', \\
     '' using 1:10 with linespoints dt 3 title 'limit (json-files protocol)', \\
     '' using 1:3 with linespoints title 'load json-files', \\
     '' using 1:5 with linespoints title 'load mmap-binary', \\
     '' using 1:7 with linespoints title 'load compressed-archive', \\
     '' using 1:9 with linespoints dt 3 title 'Boost.JSON parse only'
"""
r = subprocess.run(["gnuplot"], input=gp, text=True, capture_output=True)
if r.returncode != 0:
    print("gnuplot failed:", r.stderr, file=sys.stderr)
L.append("## Chart\n")
L.append(f"![save and load time vs state size]({img_rel})\n")
L.append("Log–log: a straight line of slope 1 is linear growth.\n")

notes_path = "benchmarks/persistence/notes.md"
if os.path.exists(notes_path):
    L.append(open(notes_path).read())
open(out, "w").write("\n".join(L) + "\n")
print(f"wrote {out} and {img}")
for n, ok, d in T:
    print(("MET    " if ok else "MISSED ") + n + ": " + d)
