#!/usr/bin/env bash
# The CUDA path in one command, on a machine with a CUDA GPU (about 6 minutes):
# the CUDA tests (training in each precision, resume, pause frees memory, tiled
# translation and its out-of-memory fallback), then the training speed table.
#
#   bash benchmarks/gpu_check.sh          (from anywhere; uses the current python)
#
# The table printed last goes into benchmarks/README.md.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 QT_QPA_PLATFORM=offscreen
if ! python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "gpu_check: no CUDA GPU is visible to torch; nothing to check" >&2
  exit 2
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"

status=0
echo "== CUDA tests"
timeout 300 python -m pytest tests/test_cuda.py -m cuda -q -p no:cacheprovider || status=1
echo "== training speed at 256²"
timeout 240 python benchmarks/gpu_speed.py --size 256 --seconds 5 || status=1
exit $status
