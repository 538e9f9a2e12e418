#!/usr/bin/env bash
# Validates the deployment files without a container daemon or a cluster: the compose file
# against the Compose Specification's schema, the Kubernetes manifests against the
# Kubernetes API's schemas (strict: unknown fields fail), the Prometheus and Alertmanager
# configurations with promtool and amtool, and the Dockerfile's shape. Called by
# scripts/test.sh; the tools (PyPI) are cached under target/tools/.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/tools/deploy-check-venv
if [[ ! -x $venv/bin/kubernetes-validate ]] || [[ ! -x $venv/bin/check-jsonschema ]]; then
  echo "== installing check-jsonschema, kubernetes-validate, dockerfile-parse (pip, in $venv)"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q check-jsonschema==0.39.0 kubernetes-validate==1.37.0 dockerfile-parse==2.0.1
fi

echo "== compose file (Compose Specification schema)"
"$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec deploy/compose/compose.yaml

echo "== Kubernetes manifests (Kubernetes 1.37 schemas, strict)"
"$venv/bin/kubernetes-validate" --strict --quiet deploy/kubernetes/*.yaml

echo "== Prometheus and Alertmanager configurations of the compose deployment"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp deploy/compose/prometheus.yml deploy/prometheus/alerts.yml "$tmp/"
promtool check config "$tmp/prometheus.yml"
amtool check-config deploy/compose/alertmanager.yml

echo "== Dockerfile"
"$venv/bin/python" - <<'PY'
import re, sys, tomllib
from dockerfile_parse import DockerfileParser

d = DockerfileParser(path="Dockerfile")
stages = [i for i in d.structure if i["instruction"] == "FROM"]
problems = []
if len(stages) < 2:
    problems.append("needs a build stage and a runtime stage")
runtime = d.structure[d.structure.index(stages[-1]):]
base = stages[-1]["value"].split()[0]
if "slim" not in base and "distroless" not in base:
    problems.append(f"the runtime stage's base `{base}` is not a slim image")
users = [i["value"].split(":")[0] for i in runtime if i["instruction"] == "USER"]
if not users or users[-1] in ("root", "0"):
    problems.append("the runtime stage must run as a non-root USER")
if not any(i["instruction"] == "COPY" and "--from=" in i["value"] for i in runtime):
    problems.append("the runtime stage must copy the binary from the build stage")
build = " ".join(i["value"] for i in d.structure if i["instruction"] == "RUN")
package = tomllib.load(open("pipeline/cli/Cargo.toml", "rb"))["package"]["name"]
if f"-p {package}" not in build or "--locked" not in build:
    problems.append(f"the build stage must run `cargo build --release --locked -p {package}`")
rust = re.match(r"rust:(\d+)\.(\d+)", stages[0]["value"])
need = tomllib.load(open("Cargo.toml", "rb"))["workspace"]["package"]["rust-version"]
if not rust or tuple(map(int, rust.groups())) < tuple(map(int, need.split(".")[:2])):
    problems.append(f"the build image must have Rust {need} or newer")
for p in problems:
    print(f"Dockerfile: {p}", file=sys.stderr)
sys.exit(1 if problems else 0)
PY
echo "deployment files: ok"
