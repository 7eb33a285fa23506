#!/usr/bin/env bash
# GPU check of the pipeline's own stage functions on a random Qwen2-7B built on the GPU (tools/gpu_check.py): QLoRA load,
# TRL steps with a checkpoint saved and resumed, the ensemble merge (average_lora + merge_lora), wise-ft, AWQ with the MLP
# padded for tensor parallel 4; each step's seconds and peak GPU memory beside the plan's estimate for 1xH200.
#
#   bash tools/gpu_check.sh --fetch          # on a machine with PyPI: the wheels the GPU machine lacks, into .whl/
#   bash tools/gpu_check.sh [ARGS...]        # on the GPU machine (no network): install .whl/ into a throwaway venv
#                                            # and run tools/gpu_check.py ARGS... (default --device cuda --scale 7b)
#
# The GPU machine is assumed to have Python 3.12 with torch (CUDA), transformers, peft, accelerate and their usual
# company (numpy, pyarrow, pandas, requests, psutil, pillow, xxhash, scipy, click, sentencepiece, protobuf, ...).
# What it lacks travels as wheels in .whl/ (git-ignored), 64 MiB at most in all.
# On --device cuda (the default) the results go to kddcup24/measured/gpu-check.json (the measurement format: command,
# git_commit, machine) and a copy, with the log, to $GPU_CHECK_OUT.
# Environment: GPU_CHECK_PYVER (wheels' Python, default 3.12), GPU_CHECK_WHEELS (default .whl), GPU_CHECK_VENV
# (default /tmp/kddcup24-gpu-check/venv), GPU_CHECK_TIMEOUT (hard limit in seconds for gpu_check.py, default 510: with the
# install, 9 minutes; gpu_check.py gets it less 20 s as --budget and ends its steps there itself), GPU_CHECK_AWQ_RESERVE
# (seconds the 7B's AWQ must have left, else it runs on the small scale; default 240), GPU_CHECK_COMMIT (the commit
# checked, default `git rev-parse HEAD` where .git exists), GPU_CHECK_OUT (folder for the log and a copy of the JSON,
# default the work folder), PYTHON (default python3).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WHL=${GPU_CHECK_WHEELS:-$ROOT/.whl}
PYVER=${GPU_CHECK_PYVER:-3.12}
PY=${PYTHON:-python3}
BUDGET_MIB=64

# Exactly what the check imports and the GPU machine lacks, pinned to the versions the project's .venv runs:
#  - bitsandbytes: the newest release (0.50.2, 41 MiB manylinux x86_64 wheel; 0.45-0.49 are 56-73 MiB) - QLoRA
#  - trl, datasets (+ dill, multiprocess; pyarrow/pandas/xxhash are on the GPU machine) - SFT
#  - llmcompressor, compressed-tensors, loguru, pydantic (+ core, annotated-types, typing-inspection,
#    typing-extensions >= 4.16 which pydantic needs) - AWQ, and loading the AWQ folder in transformers
#  - mergekit, immutables - wise-ft (`kddcup24.ensemble.wise_ft`)
# Not fetched: auto-round (llmcompressor's metadata asks for it, but neither `import llmcompressor` nor the AWQ
# oneshot imports it).
WHEELS=(
  bitsandbytes==${GPU_CHECK_BNB:-0.50.2}
  trl==1.16.0
  datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19
  llmcompressor==0.14.0.1 compressed-tensors==0.19.0 loguru==0.7.3
  pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 typing-extensions==4.16.0
  mergekit==0.1.5 immutables==0.21
)

wheel_sizes() {  # print each wheel's size and the total; fail over the budget
  local total=0 n=0 f s
  shopt -s nullglob
  for f in "$WHL"/*.whl; do
    s=$(stat -c %s "$f"); total=$((total + s)); n=$((n + 1))
    awk -v s="$s" -v f="$(basename "$f")" 'BEGIN { printf "%8.2f MiB  %s\n", s / 1048576, f }'
  done
  awk -v s="$total" -v n="$n" -v b="$BUDGET_MIB" 'BEGIN { printf "%8.2f MiB  total in %d wheels (budget %d MiB)\n", s / 1048576, n, b }'
  if [ "$total" -gt $((BUDGET_MIB * 1048576)) ]; then echo "FAILED: the wheels are over the $BUDGET_MIB MiB budget" >&2; return 1; fi
}

if [ "${1:-}" = "--fetch" ]; then
  mkdir -p "$WHL"; rm -f "$WHL"/*.whl  # one version of each: a stale wheel would stop the offline install
  plats=(); for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do plats+=(--platform "$p"); done
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$PYVER" --implementation cp "${plats[@]}" \
        -d "$WHL" "${WHEELS[@]}"
  wheel_sizes
  exit
fi

# ---- on the GPU machine: offline install into a throwaway venv, then the check
shopt -s nullglob; wheels=("$WHL"/*.whl); shopt -u nullglob
[ ${#wheels[@]} -gt 0 ] || echo "warning: no wheels in $WHL (run 'bash tools/gpu_check.sh --fetch' where PyPI is reachable)" >&2
VENV=${GPU_CHECK_VENV:-/tmp/kddcup24-gpu-check/venv}
WORK=$(dirname "$VENV")/work
OUTDIR=${GPU_CHECK_OUT:-$WORK}
rm -rf "$VENV" "$WORK" /dev/shm/kddcup24-gpu-check; mkdir -p "$(dirname "$VENV")" "$WORK" "$OUTDIR"
T0=$(date +%s)
# --without-pip: the base interpreter may lack ensurepip; the calling Python's pip installs into the venv instead
"$PY" -m venv --system-site-packages --without-pip "$VENV"
SITE=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
# if $PY is itself a venv (torch lives there, not in the base Python), make its packages visible behind ours
"$PY" - "$SITE" <<'EOF'
import site, sys
if sys.prefix != sys.base_prefix:
    dirs = [d for d in site.getsitepackages() if d.startswith(sys.prefix)]
    open(f"{sys.argv[1]}/_gpu_check_parent.pth", "w").write("".join(f"import site; site.addsitedir({d!r})\n" for d in dirs))
EOF
if [ ${#wheels[@]} -gt 0 ]; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --disable-pip-version-check \
        --target "$SITE" "${wheels[@]}" 2>&1 | grep -v -i "warning: target directory" || true
fi
echo "installed ${#wheels[@]} wheels into $VENV in $(( $(date +%s) - T0 )) s"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 \
       TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false WANDB_DISABLED=true
TIMEOUT=${GPU_CHECK_TIMEOUT:-510}
export GPU_CHECK_COMMIT=${GPU_CHECK_COMMIT:-$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || true)}
export GPU_CHECK_COMMAND="bash tools/gpu_check.sh${*:+ $*}"
args=("$@"); [[ " $* " == *" --device "* ]] || args=(--device cuda "${args[@]}")
[[ " $* " == *" --budget "* ]] || args=(--budget "$((TIMEOUT - 20))" "${args[@]}")
if [[ " ${args[*]} " == *" --device cpu "* ]]; then JSON=$OUTDIR/gpu-check.json; else JSON=$ROOT/kddcup24/measured/gpu-check.json; fi
[ -n "$GPU_CHECK_COMMIT" ] || echo "warning: no git commit (no .git here): set GPU_CHECK_COMMIT=<sha> so $JSON names it" >&2
set +e
# --json first: one in ARGS wins
timeout --kill-after=15 "$TIMEOUT" "$VENV/bin/python" "$ROOT/tools/gpu_check.py" --workdir "$WORK" --json "$JSON" \
        "${args[@]}" 2>&1 | tee "$OUTDIR/gpu_check.log"
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then echo "FAILED: gpu_check.py ran past ${TIMEOUT} s" >&2; fi
for a in "${args[@]}"; do [ "${prev:-}" = --json ] && JSON=$a; prev=$a; done
if [ -f "$JSON" ] && [ "$(cd "$(dirname "$JSON")" && pwd)/$(basename "$JSON")" != "$OUTDIR/gpu-check.json" ]; then cp "$JSON" "$OUTDIR/gpu-check.json"; fi
echo "gpu_check: exit $rc after $(( $(date +%s) - T0 )) s in all; results in $JSON${OUTDIR:+ (copy and log in $OUTDIR)}"
exit "$rc"
