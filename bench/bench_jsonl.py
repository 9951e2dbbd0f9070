"""bench_jsonl: the records of the benchmarks' JSON-lines result files, for the summarize_*.py
scripts: every line that is a JSON object, in file order (other lines, such as a tool's
progress output, are skipped)."""
import json


def records(paths):
    for p in paths:
        with open(p) as f:
            for line in f:
                line = line.strip()
                if line.startswith("{"):
                    yield json.loads(line)
