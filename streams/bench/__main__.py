"""`python -m streams.bench [--quick]`: run the benchmarks, write JSON, append to BENCHMARKS.md."""

from __future__ import annotations

import sys

from streams.bench.markdown import summary_lines
from streams.bench.options import parse_options
from streams.bench.output import write_outputs
from streams.bench.run import run_benchmarks

options = parse_options()
results = run_benchmarks(options, sys.stderr)
json_path = write_outputs(results, options.out_dir, options.markdown)
print("\n".join(summary_lines(results)))
print(f"results: {json_path}; row appended to {options.markdown}")
