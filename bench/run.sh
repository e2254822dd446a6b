#!/usr/bin/env bash
# Kept for old references: the harness is bench/run.
exec "$(dirname "$0")/run" "$@"
