#!/usr/bin/env bash
# The GPU checks in one run, for a machine with a CUDA device: the GPU tests, then the benchmark table on the GPU in bf16 (eager, every
# architecture and groups-per-step value) and compiled (conv64, 8 groups per step: the
# >= 10x-the-anchor target row). Each part has its own time limit (200 + 150 + 200 s at most);
# each benchmark writes its table after every configuration, so a part cut short keeps its rows.
#
# Needs python3 with torch (CUDA), numpy, pandas and pytest only: no Kedro, MLflow or
# torchvision, so a GPU machine's own Python will do (the package is used from src/).
#
#   OUT=/path/for/results bash scripts/gpu_check.sh     # default data/08_reporting/gpu_check
#
# Writes gpu.txt (device, driver, torch), gpu_tests.log, benchmark_bf16.csv,
# benchmark_bf16_compiled.csv and benchmark.log under $OUT; exits non-zero if a part failed.
set -uo pipefail
OUT=${OUT:-data/08_reporting/gpu_check}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
status=0

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee "$OUT/gpu.txt"
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'bf16', torch.cuda.is_bf16_supported())" \
  2>&1 | tee -a "$OUT/gpu.txt" || status=1

echo "== GPU tests"
timeout 200 $PY -m pytest -q -m gpu tests/gpu -p no:cacheprovider 2>&1 | tee "$OUT/gpu_tests.log" || status=1

echo "== benchmark, bf16, eager"
timeout 150 $PY -m benchmarks.benchmark --device cuda --precision bf16 --repeat 10 \
  --output "$OUT/benchmark_bf16.csv" 2>&1 | tee "$OUT/benchmark.log" || status=1

echo "== benchmark, bf16, compiled (conv64, 8 groups per step)"
timeout 200 $PY -m benchmarks.benchmark --device cuda --precision bf16 --repeat 10 --compile \
  --architectures conv64 --groups-per-step 8 --output "$OUT/benchmark_bf16_compiled.csv" \
  2>&1 | tee -a "$OUT/benchmark.log" || status=1

exit $status
