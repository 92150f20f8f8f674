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


def pick(ref_rows, cases):
    """The fastest of the reference `cases` present, and the cases that are missing."""
    present = [ref_rows[c] for c in cases if c in ref_rows]
    missing = [c for c in cases if c not in ref_rows]
    return (max(present, key=lambda r: r["median"]) if present else None), missing


def paired(ours, theirs, target, name=None, missing=()):
    """ours / theirs of one row, with the goal (`None` where there is no reference)."""
    ratio = ours["median"] / theirs["median"] if theirs and theirs["median"] > 0 else None
    out = {
        "reference_case": theirs["case"] if theirs else None,
        "reference": {k: theirs[k] for k in ("median", "min", "max", "runs")} if theirs else None,
        "ours_over_reference": ratio,
        "target": target if theirs else None,
        "met": (ratio >= target) if ratio is not None and target is not None else None,
    }
    if name is not None:
        out = {"name": name, **out, "missing": list(missing)}
    return out


def collect():
    benches = []
    for path in sorted(RESULTS.glob("*.json")):
        if ".reference" in path.name or path.name.endswith("-prompts.json"):
            continue
        ours = json.loads(path.read_text())
        # Reference rows: bench/<script> writes <bench>.reference.json, other peers
        # <bench>.reference-<peer>.json.
        refs = [(p, json.loads(p.read_text())) for p in sorted(RESULTS.glob(f"{ours['bench']}.reference*.json"))]
        ref_rows = {r["case"]: r for _, ref in refs for r in ref["rows"]}
        target = ours.get("target_vs_reference")
        rows = []
        for r in ours["rows"]:
            row = {"case": r["case"], "unit": r["unit"], "ours": {k: r[k] for k in ("median", "min", "max", "runs")}}
            comparisons = r.get("compare", [])
            if comparisons:
                # Held against the fastest of some peers' cases; the first comparison is the row's.
                results = []
                for c in comparisons:
                    best, missing = pick(ref_rows, c["cases"])
                    results.append(paired(r, best, c.get("target"), c["name"], missing))
                first = results[0]
                row.update({k: first[k] for k in ("reference_case", "reference", "ours_over_reference", "target", "met")})
                row["against"] = first["name"]
                row["missing"] = first["missing"]
                row["also"] = results[1:]
            else:
                row.update(paired(r, ref_rows.get(r["case"]), target))
            rows.append(row)
        ratios = [dict(r, met=(r["value"] >= r["target"]) if r.get("target") is not None else None) for r in ours.get("ratios", [])]
        benches.append({
            "bench": ours["bench"],
            "measured": stamp(ours, path),
            "reference_measured": "; ".join(stamp(ref, p) for p, ref in refs) or None,
            "workload": ours["workload"],
            "stack": ours["stack"],
            "reference_stack": "; ".join(ref["stack"] for _, ref in refs if ref.get("rows")) or None,
            # Peers that could not run on this machine, each with its one-line reason.
            "unavailable": [ref["unavailable"] for _, ref in refs if ref.get("unavailable")],
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
    def cells(r):
        ref = spread(r["reference"]) if r["reference"] else "-"
        if r.get("reference_case"):
            ref = f"{r['reference_case']}: {ref}"
        if r.get("missing"):
            ref += f" (not measured: {', '.join(r['missing'])})"
        ratio = f"{r['ours_over_reference']:.2f}" if r["ours_over_reference"] is not None else "-"
        goal = f">= {r['target']}" if r["target"] is not None else "-"
        met = {True: "yes", False: "no", None: "-"}[r["met"]]
        return ref, ratio, goal, met

    for b in report["benches"]:
        for r in b["rows"]:
            ref, ratio, goal, met = cells(r)
            against = f" vs {r['against']}" if r.get("against") else ""
            lines.append(f"| {b['bench']} | {r['case']}{against} | {spread(r['ours'])} {r['unit']} | {ref} | {ratio} | {goal} | {met} |")
            for also in r.get("also", []):
                ref, ratio, goal, met = cells(also)
                lines.append(f"| | {r['case']} vs {also['name']} | | {ref} | {ratio} | {goal} | {met} |")
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
        missing = "".join(f" Not measured: {why}." for why in b["unavailable"])
        lines.append(f"- {b['bench']}: {b['workload']}. {ours}{ref}{missing}")
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
