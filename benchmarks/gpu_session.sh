#!/usr/bin/env bash
# Every GPU measurement the speed issue asks for, in one command (device time is scarce and
# a fresh machine costs minutes to start). Writes into ${OUT:-gpu_out}:
#   cuda_check.txt       CPU/CUDA agreement, fp16/bf16 closeness, determinism, flat tiled memory
#   infer_cuda_engine.*  engine only (no file I/O): MP/s per precision, CUDA graphs included
#   infer_cuda_e2e.*     end to end JPEG in/out
# Run from the repository root: `bash benchmarks/gpu_session.sh` (uses the package from src/
# when it is not installed, as on a bare GPU machine).
set -u -o pipefail
out="${OUT:-gpu_out}"
mkdir -p "$out"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
py="${PYTHON:-python3}"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
"$py" benchmarks/cuda_check.py 2>&1 | tee "$out/cuda_check.txt"
"$py" benchmarks/infer.py --devices cuda --engine-only --sizes 1,12,24 --repeats 5 --tag engine --out "$out" 2>&1 | tail -20
"$py" benchmarks/infer.py --devices cuda --sizes 1,12,24 --repeats 3 --configs torch/bf16,torch+graphs/bf16 --tag e2e --out "$out" 2>&1 | tail -8
ls -l "$out"
