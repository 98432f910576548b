#!/usr/bin/env bash
# Regenerates crds/*.yaml and the API reference docs/api.md from the Rust API types
# (crds/src/api). Commit the result; the tests `committed_crds_match_the_types` and
# `committed_api_reference_matches_the_types` fail while they differ.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --quiet -p crds --bin crdgen -- crds
cargo run --quiet -p crds --bin crdgen -- --reference docs/api.md
