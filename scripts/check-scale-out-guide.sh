#!/usr/bin/env bash
# Runs the commands of docs/guide/scale-out.md on one machine: a laptop workspace, then a workspace in
# PostgreSQL ($OPENAML_TEST_POSTGRES_URL: eval "$(scripts/start-postgres.sh)") served by two servers,
# an S3 default datastore (moto), a one-node Ray cluster; a job sent to one server, read from the other.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd); cd "$(mktemp -d)"
export PATH=$REPO/.venv/bin:$PATH
PIDS=()
cleanup() {  # TERM each process group started here; KILL what is left after 40 s (a Ray node drains)
  for p in "${PIDS[@]}"; do kill -- -"$p" 2>/dev/null || true; done
  for _ in $(seq 40); do alive=0; for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && return; sleep 1; done
  for p in "${PIDS[@]}"; do kill -KILL -- -"$p" 2>/dev/null || true; done
}
trap cleanup EXIT
step() { echo; echo "### $*"; }
free_port() { python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

step "1. laptop"
export OPENAML_HOME=$PWD/laptop-home
mkdir -p src
cat > src/train.py <<'PY'
import argparse, os
p = argparse.ArgumentParser(); p.add_argument("--model-dir"); a = p.parse_args()
os.makedirs("outputs", exist_ok=True)
open("outputs/metrics.txt", "w").write("accuracy=0.9\n")
open(os.path.join(a.model_dir, "weights.bin"), "wb").write(b"w" * 1000)
print("trained")
PY
cat > job.yml <<'YML'
$schema: https://azuremlschemas.azureedge.net/latest/commandJob.schema.json
type: command
code: ./src
command: python train.py --model-dir ${{outputs.model}}
environment: azureml:AzureML-sklearn-1.5@latest
compute: local
outputs:
  model: {type: uri_folder}
experiment_name: scale-out
YML
openaml workspace create -n laptop -o table
openaml job create --file job.yml -w laptop --stream -o table | tail -5
openaml server stop -w laptop   # the CLI started it for the folder workspace

step "2. PostgreSQL"
PG=$OPENAML_TEST_POSTGRES_URL
python - "$PG" <<'PY'
import sys, sqlalchemy
e = sqlalchemy.create_engine(sys.argv[1], isolation_level="AUTOCOMMIT")
with e.connect() as c:
    c.exec_driver_sql("DROP DATABASE IF EXISTS guide_team WITH (FORCE)"); c.exec_driver_sql("CREATE DATABASE guide_team")
PY
DB=${PG%/*}/guide_team
export OPENAML_HOME=$PWD/host-a
openaml workspace create -n team --path $PWD/host-a/team --database-url "$DB" -o table
PORT_A=$(free_port)
setsid openaml server -w team --port $PORT_A > server-a.log 2>&1 & PIDS+=($!)

step "3. S3 (a local moto server stands in)"
S3PORT=$(free_port)
setsid moto_server -H 127.0.0.1 -p $S3PORT > moto.log 2>&1 & PIDS+=($!)
sleep 3
python -c "import boto3; boto3.client('s3', endpoint_url='http://127.0.0.1:$S3PORT', region_name='us-east-1', aws_access_key_id='k', aws_secret_access_key='s').create_bucket(Bucket='ml-team')"
cat > s3.yml <<YML
name: lake
type: s3
bucket: ml-team
endpoint_url: http://127.0.0.1:$S3PORT
region: us-east-1
credentials: {access_key_id: k, secret_access_key: s}
is_default: true
YML
for i in $(seq 60); do curl -sf http://127.0.0.1:$PORT_A/health >/dev/null && break; sleep 1; done
A=http://127.0.0.1:$PORT_A
openaml datastore create --file s3.yml -w $A -o table

step "4. second host"
export OPENAML_HOME=$PWD/host-b
openaml workspace create -n team --path $PWD/host-b/team --database-url "$DB" --secret-key-file $PWD/host-a/team/secret.key -o table
PORT_B=$(free_port)
setsid openaml server -w team --port $PORT_B > server-b.log 2>&1 & PIDS+=($!)
B=http://127.0.0.1:$PORT_B
for i in $(seq 60); do curl -sf $B/health >/dev/null && break; sleep 1; done
sleep 6

step "5. Ray"
RAYP=$(free_port); DASH=$(free_port)
RAY_AUTH_MODE=disabled RAY_USAGE_STATS_ENABLED=0 setsid ray start --block --head --port=$RAYP --dashboard-host=127.0.0.1 --dashboard-port=$DASH --num-cpus=2 --temp-dir=$PWD/ray > ray.log 2>&1 & PIDS+=($!)
for i in $(seq 90); do curl -sf http://127.0.0.1:$DASH/api/version >/dev/null && break; sleep 1; done
cat > ray.yml <<YML
name: ray-cpu
type: ray
address: http://127.0.0.1:$DASH
YML
openaml compute create --file ray.yml -w $B -o table

step "6. the same job, on Ray, sent to host B"
openaml job create --file job.yml --set compute=ray-cpu -w $B -o json > job.json
NAME=$(python -c "import json; print(json.load(open('job.json'))['name'])")
openaml job stream -n $NAME -w $B | tail -3
openaml job show -n $NAME -w $A -o json | python -c "import json,sys; print(json.load(sys.stdin)['status'])"
openaml job download -n $NAME --output-name model --download-path out -w $A
find out -type f
openaml model create --name team-model --type custom_model --path azureml://jobs/$NAME/outputs/model -w $B -o table
openaml model download --name team-model --version 1 --download-path model -w $A
find model -type f
curl -s $B/health; echo
