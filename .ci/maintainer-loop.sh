#!/usr/bin/env bash
# The maintainer loop end to end, in a scratch copy of the committed tree:
# one real spec change (a new optional claim in UserInfo), then
# `cargo xtask codegen --accept`, which must regenerate, refresh the
# snapshots, name the ones to read and call the change additive; after it,
# `cargo xtask codegen --check` must pass. The real tree is not touched.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
fail() { printf 'error: %s\n' "$*" >&2; exit 1; }

scratch=$(mktemp -d)
cleanup() { git -C "$root" worktree remove --force "$scratch/ws" >/dev/null 2>&1 || true; rm -rf "$scratch"; }
trap cleanup EXIT
git -C "$root" worktree add --detach --quiet "$scratch/ws" HEAD
cd "$scratch/ws"
# A target directory of its own: sharing the workspace's would let this
# copy's xtask binary replace the workspace's (cargo copies the final binary
# to the same target/debug/xtask path), pointing it at this scratch tree.
# Kept under target/ so a second run reuses the built dependencies.
export CARGO_TARGET_DIR="$root/target/maintainer-loop"
# The compile check of the generated crate (`cargo check`, no binary) runs
# in the workspace's target directory, whose dependencies are built.
export FV_COMPILE_CHECK_TARGET_DIR="$root/target"

python3 - <<'PY'
import pathlib
spec = pathlib.Path("spec/filevine-identity.yaml")
text = spec.read_text()
anchor = "        preferred_username:\n          type: [string, 'null']\n"
assert text.count(anchor) == 1, "the UserInfo anchor moved: update .ci/maintainer-loop.sh"
spec.write_text(text.replace(anchor, anchor + "        picture_url_ci:\n          type: [string, 'null']\n"))
PY

out=$(cargo xtask codegen --accept 2>&1) || { echo "$out"; fail "cargo xtask codegen --accept failed"; }
echo "$out"
grep -q "codegen__public_surface.snap" <<<"$out" || fail "--accept did not name the surface snapshot"
grep -q "additive (a minor release)" <<<"$out" || fail "the new optional response field is not reported additive"
git diff --quiet -- codegen/tests/snapshots && fail "--accept did not update the snapshots"
cargo xtask codegen --check >/dev/null || fail "--check fails right after --accept"
echo "maintainer loop: ok"
