#!/usr/bin/env bash
# Print, as a JSON list, the stacks CI previews and deploys: every Pulumi.<stack>.yaml except stacks on an
# existing cluster that carry no kubeconfig of their own (a laptop's k3d: CI cannot reach its context).
set -euo pipefail
cd "${1:-.}"
for file in Pulumi.*.yaml; do
  [ -e "$file" ] || continue
  stack=${file#Pulumi.}
  stack=${stack%.yaml}
  if grep -Eq '^[[:space:]]*cht-hosting:clusterMode:[[:space:]]*"?existing"?[[:space:]]*$' "$file" &&
    ! grep -Eq '^[[:space:]]*cht-hosting:kubeconfig:' "$file"; then
    continue
  fi
  printf '%s\n' "$stack"
done | jq -R . | jq -cs .
