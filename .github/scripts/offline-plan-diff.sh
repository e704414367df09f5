#!/usr/bin/env bash
# The offline plan of every stack on the PR's base and head, and the diff a reviewer reads in the PR.
#
#   offline-plan-diff.sh BASE_DIR HEAD_DIR OUT_DIR      (PYTHON, BASE_SHA, HEAD_SHA from the environment)
#
# Writes OUT_DIR/base/<stack>/ and OUT_DIR/head/<stack>/ (the review folders of `python -m offline.plan`),
# OUT_DIR/plan.diff (`diff -ruN base head`) and OUT_DIR/comment.md (the PR comment, size-capped).
# Needs no credentials: secrets are placeholders and the plan redacts them. Exits 1 when a stack fails
# to plan on the head (the comment still says why); a stack that fails on the base is only reported.
set -euo pipefail

if [[ $# -ne 3 ]]; then
    echo "usage: $0 BASE_DIR HEAD_DIR OUT_DIR" >&2
    exit 2
fi
base_dir=$(cd "$1" && pwd)
head_dir=$(cd "$2" && pwd)
mkdir -p "$3"
out=$(cd "$3" && pwd)
python=${PYTHON:-python3}
marker='<!-- cht-hosting:offline-plan -->'
max_diff_chars=60000 # a PR comment holds 65536 characters

stacks_in() {
    local file name
    for file in "$1"/Pulumi.*.yaml; do
        [[ -e $file ]] || continue
        name=${file##*/Pulumi.}
        echo "${name%.yaml}"
    done
}

# plan SIDE DIR STACK: the review folder, or a file saying why there is none (so the diff shows it).
plan() {
    local side=$1 dir=$2 stack=$3
    local dest="$out/$side/$stack" log="$out/$side-$stack.log"
    mkdir -p "$dest"
    if [[ ! -e "$dir/Pulumi.$stack.yaml" ]]; then
        echo "Stack $stack does not exist on the $side." >"$dest/ABSENT.txt"
        return 0
    fi
    if ! (cd "$dir" && "$python" -m offline.plan "$stack" --out "$dest") >"$log" 2>&1; then
        cp "$log" "$dest/PLAN-FAILED.txt"
        return 1
    fi
}

# side_label SIDE SHA: "base `0123abc`", or just "base" when the commit is not known.
side_label() {
    local tick='`'
    if [[ -n $2 ]]; then printf '%s %s%s%s' "$1" "$tick" "${2:0:7}" "$tick"; else printf '%s' "$1"; fi
}

mapfile -t stacks < <({ stacks_in "$base_dir"; stacks_in "$head_dir"; } | sort -u)
failed_on_head=()
failed_on_base=()
for stack in "${stacks[@]}"; do
    plan base "$base_dir" "$stack" || failed_on_base+=("$stack")
    plan head "$head_dir" "$stack" || failed_on_head+=("$stack")
done

# Same timestamps on both sides, so the diff headers carry no noise.
find "$out/base" "$out/head" -exec touch -h -d @0 {} +
status=0
(cd "$out" && diff -ruN base head >plan.diff) || status=$?
if [[ $status -gt 1 ]]; then
    echo "diff failed (exit $status)" >&2
    exit 2
fi

{
    echo "$marker"
    echo "### Offline plan: $(side_label base "${BASE_SHA:-}") → $(side_label head "${HEAD_SHA:-}")"
    echo
    echo "Evaluated on Pulumi's mock engine (no vCenter, no cluster, no credentials; secrets redacted)."
    echo "Stacks: ${stacks[*]:-none}."
    echo
    for stack in "${failed_on_head[@]}"; do
        echo "- :x: **$stack** does not plan on the head: see \`head/$stack/PLAN-FAILED.txt\` in the diff."
    done
    for stack in "${failed_on_base[@]}"; do
        echo "- :warning: $stack did not plan on the base (compared against its error output)."
    done
    if [[ ! -s "$out/plan.diff" ]]; then
        echo "No change to the rendered output of any stack."
    else
        echo "<details open><summary>$(grep -c "^diff -ruN" "$out/plan.diff" || true) changed files</summary>"
        echo
        echo '`````diff'
        head -c "$max_diff_chars" "$out/plan.diff"
        echo
        echo '`````'
        echo "</details>"
        if [[ $(wc -c <"$out/plan.diff") -gt $max_diff_chars ]]; then
            echo
            echo "The diff is truncated here; the full one is in this run's \`offline-plan\` artifact."
        fi
    fi
} >"$out/comment.md"

if [[ ${#failed_on_head[@]} -gt 0 ]]; then
    echo "Stacks that do not plan on the head: ${failed_on_head[*]}" >&2
    exit 1
fi
