#!/usr/bin/env bash
# Every GPU check in one go, for a machine with CuPy, PyTorch (CUDA) and pytest already installed:
# first the small-step table (each way of running a pass's steps beside cuDNN, per step, with the
# latency model's estimates; it also writes launch_plan's table of measured times), then the test
# suite (its CuPy variants, the cluster kernels' among them, run where a GPU answers), then the
# layer benchmark beside cuDNN, then the compiled cells (persistent and per step) beside cuDNN's LSTM.
#   bench/gpu_check.sh OUT_DIR [extra bench_layers.py arguments]
#   STEPS_ONLY=1 bench/gpu_check.sh OUT_DIR      # the small-step table alone (a few minutes)
# Logs and tables land in OUT_DIR; a short summary is printed last.
set -u
out=${1:?usage: bench/gpu_check.sh OUT_DIR}
shift
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv >"$out/gpu.txt" 2>&1
python3 -c "import cupy, numpy, torch; print('cupy', cupy.__version__, 'numpy', numpy.__version__,
'torch', torch.__version__)" >>"$out/gpu.txt" 2>&1
cat "$out/gpu.txt"

# the small-step table: LSTM, GRU and RNN at the configs; auto, cluster, persistent, elementwise, cuDNN
timeout 300 python3 bench/bench_layers.py --device cuda --latency --write-table "$out/cuda_step_times.json" \
    >"$out/small_steps.md" 2>"$out/small_steps.err"
echo "small steps: exit $?"
cat "$out/small_steps.md"
tail -5 "$out/small_steps.err"
[ -n "${STEPS_ONLY:-}" ] && exit 0

workers=()
python3 -c "import xdist" 2>/dev/null && workers=(-n 6)
timeout 240 python3 -m pytest -q -p no:cacheprovider "${workers[@]}" tests/ >"$out/tests.log" 2>&1
echo "tests: exit $?"

timeout 240 python3 bench/bench_layers.py --device cuda "$@" >"$out/bench_layers.md" 2>"$out/bench_layers.err"
echo "bench_layers: exit $?"

timeout 240 python3 bench/bench_compiled.py --device cuda >"$out/bench_compiled.md" 2>"$out/bench_compiled.err"
echo "bench_compiled: exit $?"

grep -E "^(FAILED|ERROR)" "$out/tests.log" | head -40
tail -3 "$out/tests.log"
cat "$out/bench_layers.md"
tail -5 "$out/bench_layers.err"
cat "$out/bench_compiled.md"
tail -5 "$out/bench_compiled.err"
