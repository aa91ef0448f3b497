# Sourced by scripts/*.sh: installs what shoal's build and tests need on a fresh machine.
# Idempotent and quiet when everything is present.
if ! rustup target list --installed 2>/dev/null | grep -q '^wasm32-unknown-unknown$'; then
  echo "prereqs: adding rustup target wasm32-unknown-unknown (plugins are built from source)"
  rustup target add wasm32-unknown-unknown || {
    echo "prereqs: could not add wasm32-unknown-unknown; install it with 'rustup target add wasm32-unknown-unknown'" >&2
    return 1
  }
fi
