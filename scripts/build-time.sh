#!/usr/bin/env bash
# Clean release builds of a minimal consumer of the SDK (PAT → token) and of
# the same program written by hand with reqwest + serde, with each TLS and
# crypto choice: aws-lc-rs (the default) and ring; the SDK both with its
# default features (sign-in and the gateway client built too) and with only
# what the program uses. Every build gets an empty target directory of its
# own and the workspace's Cargo.lock (the same dependency versions). Prints
# a Markdown table: seconds and binary size.
#
#   scripts/build-time.sh            # all five
#   JOBS=2 scripts/build-time.sh     # cargo's -j
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
jobs=${JOBS:-$(nproc)}

sdk_main='use filevine_identity_ext::{Credentials, PersonalAccessToken, TokenProvider};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let provider = TokenProvider::builder()
        .credentials(Credentials::personal_access_token(PersonalAccessToken::new(std::env::var("FILEVINE_PAT")?)?))
        .build()?;
    let token = provider.token().await?;
    println!("token valid for {} s", token.expires_in().as_secs());
    Ok(())
}'

hand_main='use serde::Deserialize;

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: Option<u64>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    INSTALL
    let client = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(3))
        .timeout(std::time::Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let pat = std::env::var("FILEVINE_PAT")?;
    let form = [("grant_type", "personal_access_token"), ("token", pat.as_str()), ("scope", "fv.api.gateway.access filevine.v2.api.*")];
    let response = client.post("https://identity.filevine.io/connect/token").form(&form).send().await?.error_for_status()?;
    let token: TokenResponse = response.json().await?;
    println!("token of {} bytes valid for {:?} s", token.access_token.len(), token.expires_in);
    Ok(())
}'

project() { # name, dependencies, main
  mkdir -p "$work/$1/src"
  printf '[package]\nname = "%s"\nversion = "0.0.0"\nedition = "2024"\npublish = false\n\n[dependencies]\n%s\n\n[workspace]\n' "$1" "$2" > "$work/$1/Cargo.toml"
  printf '%s\n' "$3" > "$work/$1/src/main.rs"
  cp "$root/Cargo.lock" "$work/$1/Cargo.lock"
}

tokio_dep='tokio = { version = "1", features = ["rt-multi-thread", "macros"] }'
project sdk-default "filevine-identity-ext = { path = \"$root/filevine-identity-ext\" }
$tokio_dep" "$sdk_main"
project sdk-aws-lc "filevine-identity-ext = { path = \"$root/filevine-identity-ext\", default-features = false, features = [\"aws-lc\"] }
$tokio_dep" "$sdk_main"
project sdk-ring "filevine-identity-ext = { path = \"$root/filevine-identity-ext\", default-features = false, features = [\"ring\"] }
$tokio_dep" "$sdk_main"
project hand-aws-lc "reqwest = { version = \"0.13\", default-features = false, features = [\"rustls\", \"http2\", \"json\", \"form\"] }
serde = { version = \"1\", features = [\"derive\"] }
$tokio_dep" "${hand_main/INSTALL/}"
project hand-ring "reqwest = { version = \"0.13\", default-features = false, features = [\"rustls-no-provider\", \"http2\", \"json\", \"form\"] }
rustls = { version = \"0.23\", default-features = false, features = [\"ring\", \"std\", \"tls12\"] }
serde = { version = \"1\", features = [\"derive\"] }
$tokio_dep" "${hand_main/INSTALL/let _ = rustls::crypto::ring::default_provider().install_default();}"

# Fetch everything first: downloads are not build time.
for name in sdk-default sdk-aws-lc sdk-ring hand-aws-lc hand-ring; do
  (cd "$work/$name" && cargo fetch -q)
done

declare -A seconds size
for name in hand-aws-lc sdk-default sdk-aws-lc hand-ring sdk-ring; do
  start=$(date +%s.%N)
  (cd "$work/$name" && CARGO_TARGET_DIR="$work/$name/target" cargo build -q --release -j "$jobs")
  seconds[$name]=$(echo "$(date +%s.%N) - $start" | bc)
  size[$name]=$(stat -c %s "$work/$name/target/release/$name")
done

row() { # label, sdk, hand
  local ratio
  ratio=$(echo "scale=3; ${seconds[$2]} / ${seconds[$3]}" | bc)
  printf '| %s | %.0f s | %.1f MB | %.0f s | %.1f MB | %.2f× |\n' "$1" "${seconds[$3]}" "$(echo "${size[$3]} / 1048576" | bc -l)" \
    "${seconds[$2]}" "$(echo "${size[$2]} / 1048576" | bc -l)" "$ratio"
}
echo "| TLS and crypto | hand-written reqwest + serde: build | binary | SDK consumer: build | binary | SDK / hand-written |"
echo "|---|---|---|---|---|---|"
row "rustls + aws-lc-rs, the SDK's default features" sdk-default hand-aws-lc
row "rustls + aws-lc-rs, tokens only (\`features = [\"aws-lc\"]\`)" sdk-aws-lc hand-aws-lc
row "rustls + ring, tokens only (\`features = [\"ring\"]\`)" sdk-ring hand-ring
echo
echo "cargo build --release -j $jobs, empty target directory each, $(nproc) cores, $(rustc --version)"
