#!/usr/bin/env python3
"""The scaling benchmark: batch latency against the size of the history.

For each size it generates a dataset (`reconlight generate --contracts N --seed 3`), ingests
it with the release binary (`reconlight run --until-idle`, 2,000-event batches, the debug log
timing every batch), then starts again with nothing new to read (the restart). It writes

  target/bench-scaling/scaling.csv   one row per batch: contracts, batch, events so far,
                                     apply / reconcile+evaluate / commit seconds
  target/bench-scaling/summary.csv   per size: median batch seconds over the first and the
                                     last ten batches, events/s, peak RSS, the restart (to
                                     its first batch, and the whole command with the state
                                     snapshot written at its stop), the store's size and
                                     its bytes per event, the snapshot's size
  target/bench-scaling/scaling.png   batch latency against events already ingested

Usage: scripts/bench-scaling.py [SIZE ...]   (default 10000 50000 200000)
Needs a release build (`cargo build --release -p reconlight`) and installs matplotlib from
PyPI into target/tools/bench-venv on first use.
"""

import csv
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "target" / "bench-scaling"
BIN = ROOT / "target" / "release" / "reconlight"
VENV = ROOT / "target" / "tools" / "bench-venv"
STARTED = re.compile(r"started in ([\d.]+)s")
BATCH = re.compile(
    r"batch of (\d+): applied in ([\d.]+)s, reconciled and evaluated in ([\d.]+)s, committed in ([\d.]+)s"
)


def run_timed(args, env, log_path):
    """Runs a command, its stderr to a file; returns (seconds, its own peak RSS in MiB)."""
    started = time.monotonic()
    with open(log_path, "w") as log:
        child = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=log)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        sys.exit(f"{args} failed ({child.returncode}): see {log_path}")
    return time.monotonic() - started, usage.ru_maxrss / 1024


def bench(contracts, rows):
    data = OUT / f"data-{contracts}"
    if not (data / "reconlight.toml").exists():
        print(f"generating {contracts} contracts ...", flush=True)
        subprocess.run(
            [BIN, "generate", "--contracts", str(contracts), "--seed", "3", "--out", data],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    # Measured as a service runs: on the wall clock, so full rule evaluations come once a
    # minute of wall time, not at every step of the replayed history's own clock.
    config_text = (data / "reconlight.toml").read_text()
    (data / "reconlight.toml").write_text(
        config_text.replace('clock = "event_time"', 'clock = "wall"')
    )
    for stale in data.glob("reconlight.db*"):
        stale.unlink()
    for stale in ["audit.key", "audit.head"]:
        (data / stale).unlink(missing_ok=True)
    env = dict(os.environ, RECONLIGHT_LOG="reconlight_service=debug")
    config = data / "reconlight.toml"
    print(f"ingesting {contracts} contracts ...", flush=True)
    seconds, peak = run_timed(
        [BIN, "run", "--config", config, "--until-idle"], env, OUT / f"run-{contracts}.log"
    )
    batches = []
    events = 0
    for line in open(OUT / f"run-{contracts}.log", encoding="utf-8"):
        m = BATCH.search(line)
        if m:
            size, apply, evaluate, commit = int(m[1]), float(m[2]), float(m[3]), float(m[4])
            batches.append((events, apply, evaluate, commit))
            events += size
    for n, (before, apply, evaluate, commit) in enumerate(batches):
        rows.append([contracts, n, before, apply, evaluate, commit, apply + evaluate + commit])
    snapshot = data / "reconlight.db.state"
    snapshot_bytes = snapshot.stat().st_size if snapshot.exists() else 0
    restart, restart_peak = run_timed(
        [BIN, "run", "--config", config, "--until-idle"], env, OUT / f"restart-{contracts}.log"
    )
    started = [
        float(m[1])
        for m in map(STARTED.search, open(OUT / f"restart-{contracts}.log", encoding="utf-8"))
        if m
    ]
    store_bytes = sum(
        f.stat().st_size for f in data.glob("reconlight.db*") if f.name != snapshot.name
    )
    total = [a + e + c for _, a, e, c in batches]
    full = sum(1 for line in open(OUT / f"run-{contracts}.log", encoding="utf-8") if "live tables rebuilt" in line)
    return {
        "contracts": contracts,
        "events": events,
        "batches": len(batches),
        "full_evaluations": full,
        "first_10_median_s": round(statistics.median(total[:10]), 4),
        "last_10_median_s": round(statistics.median(total[-10:]), 4),
        "run_s": round(seconds, 1),
        "events_per_s": round(events / seconds),
        "peak_rss_mib": round(peak),
        # To the first batch (the `started in` line), then the whole command, which
        # includes writing the state snapshot again at its stop.
        "restart_s": started[0] if started else None,
        "restart_command_s": round(restart, 2),
        "restart_peak_rss_mib": round(restart_peak),
        "snapshot_mib": round(snapshot_bytes / 2**20),
        "store_mib": round(store_bytes / 2**20),
        "store_bytes_per_event": round(store_bytes / events),
    }


def plot(rows):
    if not (VENV / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
        subprocess.run([VENV / "bin" / "pip", "install", "-q", "matplotlib"], check=True)
    script = f"""
import csv, collections
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
series = collections.defaultdict(list)
for r in csv.DictReader(open("{OUT / 'scaling.csv'}")):
    series[int(r["contracts"])].append((int(r["events_before"]), float(r["total_s"]) * 1000))
fig, ax = plt.subplots(figsize=(9, 5))
for contracts, points in sorted(series.items()):
    ax.plot([p[0] for p in points], [p[1] for p in points], ".", markersize=2,
            label=f"{{contracts:,}} contracts")
ax.set_xlabel("events already ingested (history size)")
ax.set_ylabel("2,000-event batch: apply + reconcile + evaluate + commit (ms)")
ax.set_title("reconlight batch latency against history (release, 2 cores)")
ax.set_yscale("log")
ax.grid(True, which="both", alpha=0.3)
ax.legend()
fig.tight_layout()
fig.savefig("{OUT / 'scaling.png'}", dpi=120)
"""
    subprocess.run([VENV / "bin" / "python", "-c", script], check=True)


def main():
    sizes = [int(s) for s in sys.argv[1:]] or [10_000, 50_000, 200_000]
    if not BIN.exists():
        sys.exit(f"{BIN} is missing: run `cargo build --release -p reconlight` first")
    OUT.mkdir(parents=True, exist_ok=True)
    rows, summaries = [], []
    for contracts in sizes:
        summaries.append(bench(contracts, rows))
        print(summaries[-1], flush=True)
    with open(OUT / "scaling.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["contracts", "batch", "events_before", "apply_s", "evaluate_s", "commit_s", "total_s"])
        w.writerows(rows)
    with open(OUT / "summary.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(summaries[0]))
        w.writeheader()
        w.writerows(summaries)
    plot(rows)
    print(f"wrote {OUT / 'scaling.csv'}, {OUT / 'summary.csv'} and {OUT / 'scaling.png'}")


if __name__ == "__main__":
    main()
