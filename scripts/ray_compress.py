#!/usr/bin/env python3
"""scripts/ray_compress.py — compress a JSONL or Parquet corpus with Ray Data.

    python3 scripts/ray_compress.py --input corpus.jsonl --output out/ --ratio 4
    python3 scripts/ray_compress.py --input 'corpus/*.parquet' --output out/ \\
        --workers 8 --batch-size 256 --address auto       # an existing cluster

Each row needs a context column (--context-column, default "text") and a
question column (--question-column, default "question"), or give one
--question for every row. The output (Parquet, or JSONL with --format json)
holds every input column plus "compressed", "compressed_tokens" and "error"
(comi.ray.CompressBatch). Rows are never dropped: a bad row has an error and
compressed null. Prints one JSON line with rows, errors, seconds and rows/s.

Without --address a local Ray instance is started with --workers CPUs; with
--address (e.g. "auto" on a node of a running cluster) the job runs on that
cluster: install comi on every node (pip install .), and put the input and
output on storage every node can reach (a shared filesystem or s3://...).
"""

import argparse
import json
import sys
import time


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--input", required=True, help="JSONL or Parquet file(s) or directory")
    ap.add_argument("--output", required=True, help="output directory")
    ap.add_argument("--format", choices=("parquet", "json"), default="parquet")
    ap.add_argument("--context-column", default="text")
    ap.add_argument("--question-column", default="question")
    ap.add_argument("--question", default=None, help="one question for every row")
    ap.add_argument("--ratio", type=float, default=None)
    ap.add_argument("--target-tokens", type=int, default=None)
    ap.add_argument("--encoder", default=None, help="encoder spec (default lexical)")
    ap.add_argument("--workers", type=int, default=2, help="compression actors")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--address", default=None, help="Ray cluster address (default: local)")
    args = ap.parse_args(argv)

    import os

    # a busy machine can take longer than Ray's default to start its raylet
    os.environ.setdefault("RAY_raylet_start_wait_time_s", "300")
    import ray
    from comi.ray import CompressBatch

    if args.address:
        ray.init(address=args.address)
    else:
        # one CPU per compression actor plus one for the read and write tasks
        ray.init(num_cpus=args.workers + 1, include_dashboard=False, log_to_driver=False)
    src = args.input
    is_json = src.endswith(".jsonl") or src.endswith(".json")
    ds = ray.data.read_json(src) if is_json else ray.data.read_parquet(src)
    options = {k: v for k, v in (("ratio", args.ratio), ("target_tokens", args.target_tokens),
                                 ("encoder", args.encoder)) if v is not None}
    t0 = time.time()
    out = ds.map_batches(
        CompressBatch,
        fn_constructor_kwargs=dict(options, context_column=args.context_column,
                                   question_column=args.question_column,
                                   question=args.question),
        concurrency=args.workers, batch_size=args.batch_size, num_cpus=1)
    if args.format == "json":
        out.write_json(args.output)
    else:
        out.write_parquet(args.output)
    secs = time.time() - t0
    res = ray.data.read_json(args.output) if args.format == "json" else \
        ray.data.read_parquet(args.output)
    rows = res.count()
    errors = res.filter(lambda r: r["error"] is not None).count()
    print(json.dumps({"rows": rows, "errors": errors, "workers": args.workers,
                      "seconds": round(secs, 2), "rows_per_s": round(rows / secs, 1)}))
    ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
