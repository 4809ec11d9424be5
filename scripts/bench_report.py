"""Writes BENCHMARKS.md from the results scripts/bench.sh collected in target/bench."""
import glob, json, os, platform, subprocess, sys, datetime

out = sys.argv[1]
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

def criterion():
    res = {}
    for path in glob.glob(os.path.join(root, "target", "criterion", "**", "new", "benchmark.json"), recursive=True):
        with open(path) as f:
            bench = json.load(f)
        with open(os.path.join(os.path.dirname(path), "estimates.json")) as f:
            est = json.load(f)
        res[bench["full_id"]] = est["median"]["point_estimate"]  # ns per iteration
    return res

def load(name, default=None):
    try:
        with open(os.path.join(out, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default

def cpu():
    try:
        for line in open("/proc/cpuinfo"):
            if line.lower().startswith(("model name", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"

crit = criterion()
lam = load("lambda.json", {})
py = load("pyjwt.json", {})
zips = {a: int(open(os.path.join(out, f"zip-{a}.txt")).read()) for a in ("arm64", "x86-64")
        if os.path.exists(os.path.join(out, f"zip-{a}.txt"))}
rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()

def row(*cells):
    return "| " + " | ".join(str(c) for c in cells) + " |"

lines = ["# Benchmarks", "",
         f"Written by `make bench` on {datetime.date.today()}: {os.cpu_count()} cores, {cpu()}, "
         f"{platform.system()} {platform.machine()}, {rustc}. Release profile (LTO fat, codegen-units 1, "
         "panic abort, strip). Numbers from one run on a shared 2-core machine: read ratios, not absolutes.", ""]

lines += ["## Package size", "", row("zip", "bytes", "MiB", "target"), row("---", "---", "---", "---")]
for arch, size in zips.items():
    lines.append(row(f"bootstrap.zip ({arch})", size, f"{size / 2**20:.2f}", "≤ 3 MiB"))
lines.append("")

b, e = lam.get("bootstrap", {}), lam.get("echo", {})
if b and e:
    lines += ["## Through the Runtime API (release binaries, benches/lambda.rs)", "",
              row("figure", "bootstrap", "echo floor", "ratio / delta", "target"), row(*["---"] * 5),
              row("cold start p50 (process start → first response), ms", f"{b['cold_ms_p50']:.2f}", f"{e['cold_ms_p50']:.2f}",
                  f"× {b['cold_ms_p50'] / e['cold_ms_p50']:.2f}", "≤ 1.5 × echo"),
              row("warm p50, µs", f"{b['warm_us_p50']:.0f}", f"{e['warm_us_p50']:.0f}",
                  f"+ {(b['warm_us_p50'] - e['warm_us_p50']) / 1000:.3f} ms", "≤ echo + 0.5 ms"),
              row("warm p99, µs", f"{b['warm_us_p99']:.0f}", f"{e['warm_us_p99']:.0f}",
                  f"+ {(b['warm_us_p99'] - e['warm_us_p99']) / 1000:.3f} ms", "report"),
              row("peak RSS after warm-up / after all runs, MiB",
                  f"{b['peak_rss_kib_after_warmup'] / 1024:.1f} / {b['peak_rss_kib_after_all'] / 1024:.1f}",
                  f"{e['peak_rss_kib_after_warmup'] / 1024:.1f} / {e['peak_rss_kib_after_all'] / 1024:.1f}",
                  "", f"≤ 32 MiB, flat over {b['warm_runs']} runs"),
              row("binary, bytes", b["binary_bytes"], e["binary_bytes"], "", ""), ""]

lines += ["## In process (criterion, median per iteration)", "", row("benchmark", "time", "target"), row("---", "---", "---")]
targets = {"execution/verify_es256+resolve+run+usage_event": "p50 ≤ 200 µs"}
for name in sorted(crit):
    ns = crit[name]
    shown = f"{ns / 1000:.2f} µs" if ns >= 1000 else f"{ns:.0f} ns"
    if "x100" in name:
        shown += f" ({ns / 100 / 1000:.3f} µs per task)"
    lines.append(row(name, shown, targets.get(name, "")))
lines.append("")

if py:
    pyjwt, py_floor = py.get("pyjwt", {}), py.get("signature", {})

    def ours(group, alg):
        ns = crit.get(f"{group}/{alg}")
        return 1e9 / ns if ns else None

    def overhead(full, floor):  # µs per token spent outside the signature check
        return f"{1e6 / full - 1e6 / floor:.1f}" if full and floor else "n/a"

    lines += ["## Token verification vs. PyJWT (one core, per second)", "",
              "Full verification (signature, header and claim rules) per algorithm, and under it the "
              "signature check alone with the key parsed beforehand: aws-lc-rs for the runtime "
              "(`signature/<alg>`), OpenSSL through `cryptography` for PyJWT. The overhead is what "
              "each adds per token around that check. A ratio of 5 × needs the runtime's whole "
              "verification to cost a fifth of PyJWT's, i.e. less than OpenSSL's bare signature "
              "check wherever that check is most of PyJWT's time.", "",
              row("alg", "mozaiks-runtime", "PyJWT", "ratio", "signature alone: aws-lc-rs / OpenSSL",
                  "overhead per token, µs: ours / PyJWT", "target"), row(*["---"] * 7)]
    for alg, pyrate in pyjwt.items():
        full, floor, py_sig = ours("verify", alg), ours("signature", alg), py_floor.get(alg)
        lines.append(row(alg, f"{full:,.0f}" if full else "n/a", f"{pyrate:,.0f}",
                         f"× {full / pyrate:.1f}" if full else "",
                         f"{floor:,.0f} / {py_sig:,.0f}" if floor and py_sig else "n/a",
                         f"{overhead(full, floor)} / {overhead(pyrate, py_sig)}", "≥ 5 ×"))
    lines.append("")

# The measures taken for issue 7 and their before/after figures (kept by hand: each one was
# measured against the tree before it).
measures = os.path.join(root, "benches", "MEASURES.md")
if os.path.exists(measures):
    with open(measures) as f:
        lines += [f.read().rstrip(), ""]

print("\n".join(lines))
