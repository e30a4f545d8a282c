#!/usr/bin/env bash
# The checks that need a GPU, in one pass (CI has none): the CUDA tests, then the loss-overhead
# figures (the paper's two terms against a CE + KD step, at the demo size and at 8×224²). Run from the repo root on a machine with one CUDA device:
#     bash bench/gpu.sh
set -euo pipefail
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
python3 -c 'import torch; print("torch", torch.__version__, "on", torch.cuda.get_device_name(0))'
python3 -m pytest -q -p no:cacheprovider tests/training/test_cuda.py tests/training/test_distiller.py tests/training/losses
python3 bench/loss_overhead.py --device cuda --steps 30
python3 bench/loss_overhead.py --teacher tsm_resnet50 --size 224 --device cuda --steps 30
python3 bench/loss_overhead.py --teacher tsm_resnet50 --size 224 --batch-size 32 --device cuda --steps 30
