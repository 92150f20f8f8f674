"""Records that a peer could not run: results/bench/<bench>.reference*.json with no rows and its
one-line reason, which bench/report.py prints beside the benchmark (written temp file + rename).

    python3 bench/unavailable.py BENCH PEER REASON OUT
"""
import json
import os
import sys


def main():
    bench, peer, reason, out = sys.argv[1:5]
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"bench": bench, "stack": peer, "rows": [], "unavailable": f"{peer}: {reason}"}, f)
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
