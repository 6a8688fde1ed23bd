"""Run every benchmark in turn, each in its own process: `make bench` (or `python bench/run.py --quick`).

Each prints this project beside PyTorch measured in the same run; the ratios are what to compare.
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
# (script, extra arguments for --quick)
BENCHMARKS = [
    ("bench_engine.py", []),
    ("bench_layers.py", ["--quick"]),
    ("bench_train.py", []),
    ("bench_viz.py", []),
]


def main():
    quick = "--quick" in sys.argv[1:]
    failed = []
    for script, quick_args in BENCHMARKS:
        print(f"\n## {script}\n", flush=True)
        code = subprocess.call([sys.executable, os.path.join(HERE, script), *(quick_args if quick else [])])
        if code:
            failed.append(script)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
