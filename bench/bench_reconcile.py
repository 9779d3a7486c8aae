"""Benchmark: the reconciliation matching engine, every default rule on, against a plain pandas
merge of the same two frames on reference, measured in the same run.

    .venv/bin/python bench/bench_reconcile.py                 # 1,000,000 lines x 1,000,000 payments
    .venv/bin/python bench/bench_reconcile.py --size 100000

The data is a month of payments and the bank lines that mirror them, made with numpy (no
Python loop): 90 % of the lines carry the payment's reference, 4 % name the ledger id in the
memo (`EV-<id>`), 4 % carry only the payer's name (written differently: full-width spaces,
another legal form, another word order), 1 % split a payment in two lines; 1 % of the
payments have no line and as many lines are bank charges; 0.5 % of the lines are repeated.
The engine does what a run does (normalise names and references, extract ids from memos,
every rule in order, classify the rest); the baseline only joins on reference. Ratio =
baseline time / engine time (the engine does far more, so it is below 1; aim >= 0.3). Peak
memory: the process's resident set size at its highest during each step (Linux: the peak is
reset before the step through /proc/self/clear_refs, then read as VmHWM), and how far that is
above what was resident before the step (the two frames; memory freed earlier and kept by the
allocator is reused without showing); elsewhere the process's peak so far
(`ru_maxrss`).
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ledger.reconcile import matching

PLACES = np.array(["兴义", "册亨", "望谟", "安龙", "贞丰", "普安", "晴隆", "兴仁"])
TRADES = np.array(["电力", "林业", "碳汇服务", "水务", "建设", "农业开发", "生态旅游", "茶业"])


def _status_mb(field: str) -> float | None:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def reset_peak() -> float:
    """Start a new peak (where the kernel allows it); the resident size now, in MB."""
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
    except OSError:
        pass
    return _status_mb("VmRSS") or peak_mb()


def peak_mb() -> float:
    """The peak resident set size since the last `reset_peak`, in MB."""
    return _status_mb("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_data(size: int, seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    tx = np.arange(1, size + 1, dtype=np.int64)
    day0 = np.datetime64("2026-11-01")
    days = rng.integers(0, 28, size)
    amounts = rng.integers(1_00, 5_000_000_00, size) * np.where(rng.random(size) < 0.6, 1, -1)
    company = rng.integers(0, 10_000, size)
    place, trade = PLACES[company % 8], TRADES[(company // 8) % 8]
    names = pd.Series(place).str.cat([pd.Series(trade), pd.Series(company.astype(str))], sep=" ")
    names = names + "有限公司"
    references = pd.Series(tx.astype(str)).radd("PAY-")
    items = pd.DataFrame({"transaction_id": tx, "effective_date": day0 + days,
                          "amount_fen": amounts, "reference": references,
                          "counterparty": names})
    kind = rng.random(size)
    keep = kind >= 0.01  # 1 %: the bank never shows the payment
    by_ref, by_id = kind >= 0.10, (kind >= 0.06) & (kind < 0.10)
    by_name, split = (kind >= 0.02) & (kind < 0.06), (kind >= 0.01) & (kind < 0.02)
    shift = rng.integers(0, 3, size)
    written = pd.Series(trade).str.cat(pd.Series(company.astype(str)), sep="\u3000") + " " + \
        pd.Series(place) + "有限责任公司"
    lines = pd.DataFrame({
        "value_date": day0 + np.minimum(days + shift, 29), "amount_fen": amounts,
        "reference": references.where(by_ref | split, None),
        "counterparty": np.where(by_name, written, names),
        "memo": pd.Series(tx.astype(str)).radd("EV-").where(by_id, None)})
    whole = lines[keep & ~split]
    halves = lines[split]
    first = halves.assign(amount_fen=halves.amount_fen // 2)
    second = halves.assign(amount_fen=halves.amount_fen - halves.amount_fen // 2)
    charges = pd.DataFrame({"value_date": day0 + rng.integers(0, 28, size // 100),
                            "amount_fen": -rng.integers(1, 50_00, size // 100),
                            "reference": None, "counterparty": "中国农业银行", "memo": "手续费"})
    repeats = whole.sample(frac=0.005, random_state=seed)
    out = pd.concat([whole, first, second, charges, repeats], ignore_index=True)
    out.insert(0, "line_id", np.arange(1, len(out) + 1, dtype=np.int64))
    return out, items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=1_000_000,
                        help="ledger payments (statement lines: about as many)")
    args = parser.parse_args()
    started = time.perf_counter()
    lines, items = make_data(args.size)
    print(f"data: {len(lines):,} statement lines, {len(items):,} ledger payments "
          f"({time.perf_counter() - started:.1f} s to make; peak RSS {peak_mb():,.0f} MB)")

    resident = reset_peak()
    started, cpu = time.perf_counter(), time.process_time()
    joined = lines.merge(items, on="reference", how="inner", suffixes=("_l", "_i"))
    baseline, baseline_cpu = time.perf_counter() - started, time.process_time() - cpu
    print(f"baseline: pandas merge on reference: {baseline:.2f} s, {len(joined):,} pairs "
          f"(peak RSS {peak_mb():,.0f} MB, {peak_mb() - resident:+,.0f} MB over the "
          f"{resident:,.0f} MB resident before)")
    del joined

    resident = reset_peak()
    started, cpu = time.perf_counter(), time.process_time()
    result = matching.match(lines, items)
    engine, engine_cpu = time.perf_counter() - started, time.process_time() - cpu
    engine_peak = peak_mb()
    counts = matching.summary(result)
    rules = result.groups[result.groups.category == "matched"]["rule"].value_counts()
    print(f"engine: all rules: {engine:.2f} s, {len(lines) / engine:,.0f} lines/s "
          f"(peak RSS {engine_peak:,.0f} MB, {engine_peak - resident:+,.0f} MB over the "
          f"{resident:,.0f} MB resident before)")
    print("  " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    print("  matched by " + ", ".join(f"{k} {int(v):,}" for k, v in rules.items()))
    print(f"ratio (baseline time / engine time): {baseline / engine:.2f}  (aim >= 0.3)")
    # on a shared machine the wall times stretch with the load; CPU time much less
    print(f"CPU time: baseline {baseline_cpu:.2f} s, engine {engine_cpu:.2f} s, ratio "
          f"{baseline_cpu / engine_cpu:.2f}")


if __name__ == "__main__":
    main()
