# Sourced by the other scripts: repository root, venv python, and no model hub.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PY="$ROOT/.venv/bin/python"
export PPNLP_HOME="${PPNLP_HOME:-$ROOT/work/ppnlp_home}"   # PaddleNLP cache; nothing is downloaded into it
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export PYTHONUNBUFFERED=1 GLOG_minloglevel=2 FLAGS_call_stack_level=1
