"""Benchmark: a generated organisation of a given scale, served by the emulator, read back
through the three real clients; the keys must equal the dataset's.

    uv run python benchmarks/roundtrip_scale.py --scale large --flavor cloud

The test suite runs the same check at the demo and medium scales
(tests/simulator/test_roundtrip.py); this runs it where it takes minutes.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dagster_project.sandbox.emulator import server  # noqa: E402
from dagster_project.sandbox.simulator import generate  # noqa: E402
from tests.simulator.test_roundtrip import client_keys, file_keys  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", default="large", choices=("demo", "medium", "large"))
    parser.add_argument("--flavor", default="cloud", choices=("cloud", "server"))
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="driftgate-roundtrip-")) / "org"
    started = time.monotonic()
    generate(root, seed=7, scale=args.scale, flavor=args.flavor)
    generated = time.monotonic() - started
    emulator = server.start(str(root))
    started = time.monotonic()
    got = client_keys(emulator.url, args.flavor)
    fetched = time.monotonic() - started
    emulator.stop()
    want = file_keys(root)
    print(
        json.dumps(
            {
                "scale": args.scale,
                "flavor": args.flavor,
                "counts": {k: len(v) for k, v in want.items()},
                "exact": got == want,
                "generate_s": round(generated, 1),
                "fetch_s": round(fetched, 1),
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
            }
        )
    )


if __name__ == "__main__":
    main()
