#!/usr/bin/env bash
# Print, as a JSON list, the stacks CI previews and deploys: every Pulumi.<stack>.yaml except stacks on an
# existing cluster that carry no kubeconfig of their own (a laptop's k3d: CI cannot reach its context).
# County stacks (a `platform:` under cht-hosting:stacks) come after the platform and single stacks, so a
# deployment one stack at a time updates a platform before the county stacks that read its outputs.
set -euo pipefail
cd "${1:-.}"
is_county_stack() {
  awk '/^[[:space:]]*cht-hosting:stacks:.*platform:/ {found = 1}
       /^[[:space:]]*cht-hosting:stacks:/ {inside = 1; next} inside && /^[[:space:]]+platform:/ {found = 1}
       inside && /^[[:space:]]*cht-hosting:/ {inside = 0} END {exit !found}' "$1"
}
for pass in platform counties; do
  for file in Pulumi.*.yaml; do
    [ -e "$file" ] || continue
    stack=${file#Pulumi.}
    stack=${stack%.yaml}
    if grep -Eq '^[[:space:]]*cht-hosting:clusterMode:[[:space:]]*"?existing"?[[:space:]]*$' "$file" &&
      ! grep -Eq '^[[:space:]]*cht-hosting:kubeconfig:' "$file"; then
      continue
    fi
    if is_county_stack "$file"; then [ "$pass" = counties ] || continue; else [ "$pass" = platform ] || continue; fi
    printf '%s\n' "$stack"
  done
done | jq -R . | jq -cs .
