#!/usr/bin/env bash
# A warm `filevine-auth token` (a valid token in the cache) beside a
# hello-world Rust program: both release builds, run alternately PAIRS times
# (default 30) so that both see the same machine; prints a Markdown table of
# wall-clock milliseconds per run (min / median / max) and the ratio of the
# medians. The token comes from the crate's loopback test server (the
# `test_server` example); the cache is a fresh configuration directory with
# the key in store.key (no OS keyring: FILEVINE_KEYRING=off), as on a server.
#
#   scripts/cli-startup.sh            # 30 pairs
#   PAIRS=100 scripts/cli-startup.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
pairs=${PAIRS:-30}
cd "$root"

cargo build -q --release -p filevine-auth
cargo build -q --release -p filevine-identity-ext --example test_server
printf 'fn main() {\n    println!("hello, world");\n}\n' > "$work/hello.rs"
rustc -O -o "$work/hello" "$work/hello.rs"

# The server lives as long as this pipe's writer (this script).
exec 3> >(exec "$root/target/release/examples/test_server" fvpat_startup_bench > "$work/server.json")
for _ in $(seq 100); do [ -s "$work/server.json" ] && break; sleep 0.05; done
authority=$(sed 's/.*"authority":"\([^"]*\)".*/\1/' "$work/server.json")
trap 'exec 3>&-; rm -rf "$work"' EXIT

export FILEVINE_CONFIG_DIR="$work/config" FILEVINE_AUTHORITY="$authority" FILEVINE_PAT=fvpat_startup_bench FILEVINE_KEYRING=off
"$root/target/release/filevine-auth" token > /dev/null   # the one exchange: the cache is warm from here on

python3 - "$pairs" "$work/hello" "$root/target/release/filevine-auth" <<'PY'
import statistics, subprocess, sys, time
pairs, hello, cli = int(sys.argv[1]), sys.argv[2], sys.argv[3]
runs = {"hello": [], "token": []}
for _ in range(pairs):
    for name, argv in (("hello", [hello]), ("token", [cli, "token"])):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        runs[name].append((time.perf_counter() - start) * 1000)
print(f"| {pairs} runs each, alternating | min | median | max |")
print("|---|---|---|---|")
for name, label in (("hello", "hello-world Rust binary"), ("token", "`filevine-auth token`, warm cache")):
    values = runs[name]
    print(f"| {label} | {min(values):.2f} ms | {statistics.median(values):.2f} ms | {max(values):.2f} ms |")
print(f"\nratio of the medians: {statistics.median(runs['token']) / statistics.median(runs['hello']):.2f}x")
PY
