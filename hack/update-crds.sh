#!/usr/bin/env bash
# Regenerates crds/*.yaml from the Rust API types (crds/src/api). Commit the result; the test
# `committed_crds_match_the_types` fails while they differ.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --quiet -p crds --bin crdgen -- crds
