"""What the reference scripts share: paths and the JSON they write beside ours.

Each script writes results/bench/<bench>.reference.json with the rows of the matching Rust
benchmark (same `case` names), which bench/report.py pairs with results/bench/<bench>.json.
"""
import json
import os
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results" / "bench"
MODELS = ROOT / "models"
DATA = ROOT / "data" / "qrecc-offline"


def row(case, unit, runs):
    return {"case": case, "unit": unit, "median": statistics.median(runs), "min": min(runs), "max": max(runs), "runs": runs}


def write_reference(bench, stack, workload, rows):
    """Prints the rows and writes results/bench/<bench>.reference.json (temp file + rename)."""
    print(f"\n{bench} (reference): {workload}\n{stack}\n")
    print("| case | median | min | max | unit |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['case']} | {r['median']:.4f} | {r['min']:.4f} | {r['max']:.4f} | {r['unit']} |")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{bench}.reference.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"bench": bench, "stack": stack, "workload": workload, "rows": rows, "unix_time": int(time.time())}, indent=1))
    os.replace(tmp, path)
    print(f"wrote {path}")
