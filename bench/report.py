"""Collects the benchmark suite's results into results/bench.json and results/bench.md.

Reads results/bench/<bench>.json (written by `cargo bench -p nr-experiments`) and, where present,
results/bench/<bench>.reference.json (written by the reference scripts in bench/), pairs rows by
case, and computes ours / reference for throughput rows. Standard library only.

    python3 bench/report.py
"""
import json
import os
import platform
import time

from common import ROOT, RESULTS


def spread(r):
    return f"{r['median']:.4g} ({r['min']:.4g}-{r['max']:.4g})"


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def stamp(result, path):
    """When a result was measured: its own stamp, else its file's modification time."""
    t = result.get("unix_time") or path.stat().st_mtime
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(t))


def collect():
    benches = []
    for path in sorted(RESULTS.glob("*.json")):
        if path.name.endswith(".reference.json") or path.name == "prefill-prompts.json":
            continue
        ours = json.loads(path.read_text())
        ref_path = path.with_name(f"{ours['bench']}.reference.json")
        ref = json.loads(ref_path.read_text()) if ref_path.exists() else None
        ref_rows = {r["case"]: r for r in ref["rows"]} if ref else {}
        target = ours.get("target_vs_reference")
        rows = []
        for r in ours["rows"]:
            theirs = ref_rows.get(r["case"])
            ratio = r["median"] / theirs["median"] if theirs and theirs["median"] > 0 else None
            rows.append({
                "case": r["case"],
                "unit": r["unit"],
                "ours": {k: r[k] for k in ("median", "min", "max", "runs")},
                "reference": {k: theirs[k] for k in ("median", "min", "max", "runs")} if theirs else None,
                "ours_over_reference": ratio,
                "target": target if theirs else None,
                "met": (ratio >= target) if ratio is not None and target is not None else None,
            })
        ratios = [dict(r, met=(r["value"] >= r["target"]) if r.get("target") is not None else None) for r in ours.get("ratios", [])]
        benches.append({
            "bench": ours["bench"],
            "measured": stamp(ours, path),
            "reference_measured": stamp(ref, ref_path) if ref else None,
            "workload": ours["workload"],
            "stack": ours["stack"],
            "reference_stack": ref["stack"] if ref else None,
            "rows": rows,
            "ratios": ratios,
        })
    return benches


def markdown(report):
    lines = [
        "# Benchmark results",
        "",
        f"{report['date']}, {report['machine']['cpus']} CPUs ({report['machine']['cpu']}). Median (min-max) over the runs "
        "of each benchmark; ours / reference is the ratio of medians measured in the same session. Written by "
        "`just bench` (bench/report.py); docs/performance.md explains each row.",
        "",
        "| benchmark | case | ours | reference | ours / reference | goal | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for b in report["benches"]:
        for r in b["rows"]:
            ref = spread(r["reference"]) if r["reference"] else "-"
            ratio = f"{r['ours_over_reference']:.2f}" if r["ours_over_reference"] is not None else "-"
            goal = f">= {r['target']}" if r["target"] is not None else "-"
            met = {True: "yes", False: "no", None: "-"}[r["met"]]
            lines.append(f"| {b['bench']} | {r['case']} | {spread(r['ours'])} {r['unit']} | {ref} | {ratio} | {goal} | {met} |")
    ratios = [(b["bench"], r) for b in report["benches"] for r in b["ratios"]]
    if ratios:
        lines += ["", "| benchmark | ratio | value | goal | met |", "|---|---|---|---|---|"]
        for bench, r in ratios:
            goal = f">= {r['target']}" if r.get("target") is not None else "-"
            met = {True: "yes", False: "no", None: "-"}[r["met"]]
            lines.append(f"| {bench} | {r['name']} | {r['value']:.1f} | {goal} | {met} |")
    lines += ["", "Stacks and workloads:", ""]
    for b in report["benches"]:
        ours = f"Ours ({b['measured']}): {b['stack']}."
        ref = f" Reference ({b['reference_measured']}): {b['reference_stack']}." if b["reference_stack"] else ""
        lines.append(f"- {b['bench']}: {b['workload']}. {ours}{ref}")
    return "\n".join(lines) + "\n"


def write(path, text):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def main():
    benches = collect()
    if not benches:
        raise SystemExit(f"error: no results in {RESULTS}: run `cargo bench -p nr-experiments` first")
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "cpu": cpu_model()},
        "benches": benches,
    }
    write(ROOT / "results" / "bench.json", json.dumps(report, indent=1) + "\n")
    md = markdown(report)
    write(ROOT / "results" / "bench.md", md)
    print(md)


if __name__ == "__main__":
    main()
