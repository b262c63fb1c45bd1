#!/usr/bin/env bash
# Every benchmark in turn, on an otherwise idle machine; JSON results land in $OUT.
#   ZSPACE_DATA=../shared/data bash benchmarks/run_all.sh [OUT]
set -euo pipefail
OUT="${1:-bench_out}"
mkdir -p "$OUT"
rm -rf "$OUT/ae"
python benchmarks/bench_autoencoder.py --keep "$OUT/ae" --json "$OUT/autoencoder.json"
python benchmarks/bench_fewshot.py --ae "$OUT/ae" --out "$OUT/fewshot"
python benchmarks/bench_gan.py --ae "$OUT/ae" --work "$OUT/gan" --pixel-factor "${PIXEL_FACTOR:-5}" --json "$OUT/gan.json"
python benchmarks/bench_flow.py --ae "$OUT/ae" --work "$OUT/flow" --json "$OUT/flow.json"
python benchmarks/bench_web.py --json "$OUT/web.json"
python benchmarks/bench_study.py --quick --out "$OUT/quick" --json "$OUT/study_quick.json"
python benchmarks/bench_study.py --out "$OUT/study" --json "$OUT/study.json"
