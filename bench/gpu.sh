#!/usr/bin/env bash
# The checks that need a GPU, in one pass (CI has none), sized to finish in under 8 minutes on one
# H100-class GPU with 16 cores. Run from the repo root on a machine with a CUDA device:
#     bash bench/gpu.sh
#  1. the CUDA tests (bf16 terms against float32 CPU values, steps on the device, the fused spectrum)
#  2. what the spectrum and parameter terms add to a step, teacher spectra by torch.fft and fused:
#     the demo pair at 8×8×64², ResNet-50 → MobileNetV2 at 8×8×224² and 32×8×224²
#  3. the Ray Train loop against a plain loop on the GPU, ResNet-50 → MobileNetV2 at 32×8×224²
#  4. the Ray Data loader feeding that step from shards of the default ingest: clips/s, the share of
#     time waiting for data and the GPU busy fraction (nvidia-smi)
set -euo pipefail
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export RAY_DATA_DISABLE_PROGRESS_BARS=1
started=$SECONDS
python3 -c 'import torch; print("torch", torch.__version__, "on", torch.cuda.get_device_name(0))'
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
section() { echo; echo "=== $1 ($((SECONDS - started)) s in)"; }

section "CUDA tests"
python3 -m pytest -q -p no:cacheprovider tests/training/test_cuda.py tests/training/test_distiller.py tests/training/losses
section "loss overhead"
python3 bench/loss_overhead.py --device cuda --steps 30
python3 bench/loss_overhead.py --teacher tsm_resnet50 --size 224 --device cuda --steps 30
python3 bench/loss_overhead.py --teacher tsm_resnet50 --size 224 --batch-size 32 --device cuda --steps 30
section "Ray Train loop against a plain loop"
python3 bench/throughput.py --device cuda --teacher tsm_resnet50 --size 224 --batch-size 32 --epochs 3 --steps 15 \
    --cpus "$(($(nproc) - 1))"
section "Ray Data loader feeding the GPU"
python3 bench/gpu_feed.py --cpus "$(($(nproc) - 1))"
section "done"
