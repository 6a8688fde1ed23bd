#!/usr/bin/env bash
# Every GPU check in one go, for a machine with CuPy, PyTorch (CUDA) and pytest already installed, in
# at most about nine minutes (a lent GPU's budget), most important first: the test suite (its CuPy
# variants: the cluster kernels and the compiled persistent kernels have run as C++ only), the
# small-step table (each way of running a pass's steps beside cuDNN, per step, with the latency
# model's estimates; it also writes launch_plan's table of measured times), the training step beside
# torch, the compiled cells (persistent and per step) beside cuDNN's LSTM, then the layer benchmark.
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

steps() {  # the small-step table: LSTM, GRU and RNN at the configs; auto, cluster, persistent, elementwise, cuDNN
  timeout 150 python3 bench/bench_layers.py --device cuda --latency --write-table "$out/cuda_step_times.json" \
      >"$out/small_steps.md" 2>"$out/small_steps.err"
  echo "small steps: exit $?"
}
if [ -n "${STEPS_ONLY:-}" ]; then
  steps
  cat "$out/small_steps.md"; tail -5 "$out/small_steps.err"
  exit 0
fi

workers=()
python3 -c "import xdist" 2>/dev/null && workers=(-n 6)
timeout 200 python3 -m pytest -q -p no:cacheprovider "${workers[@]}" tests/ >"$out/tests.log" 2>&1
echo "tests: exit $?"

steps

timeout 60 python3 bench/bench_train.py --device cuda >"$out/bench_train.md" 2>"$out/bench_train.err"
echo "bench_train: exit $?"

timeout 60 python3 bench/bench_compiled.py --device cuda --repeats 5 >"$out/bench_compiled.md" 2>"$out/bench_compiled.err"
echo "bench_compiled: exit $?"

timeout 90 python3 bench/bench_layers.py --device cuda "$@" >"$out/bench_layers.md" 2>"$out/bench_layers.err"
echo "bench_layers: exit $?"

grep -E "^(FAILED|ERROR)" "$out/tests.log" | head -40
tail -3 "$out/tests.log"
for table in small_steps bench_train bench_compiled bench_layers; do
  cat "$out/$table.md"
  tail -5 "$out/$table.err"
done
