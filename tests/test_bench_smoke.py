"""Smoke runs of the performance tools (no thresholds: the figures go in the README, not in CI).

Each tool runs in a subprocess exactly as a developer would run it; the test
checks that it finishes, prints its report and writes well-formed results in
which every contender did every operation it supports.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parent.parent / "tools"


def run_tool(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, str(TOOLS / argv[0]), *argv[1:]], capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, done.stderr
    return done


@pytest.mark.slow
def test_bench_quick(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = run_tool("bench.py", "--quick", "--json", str(out), "--dir", str(tmp_path))
    assert "| get by key |" in done.stdout
    assert "Done-when items measured here:" in done.stdout
    result = json.loads(out.read_text())
    assert result["machine"]["cores"] >= 1
    (size,) = result["results"]
    assert size["size"] == 10_000
    assert size["bulk_import"]["sessions"] == 10_000
    assert size["contenders"] == ["raw apsw", "litesessions", "sqlite3", "sqlite3 store", "diskcache", "in-memory"]
    for op, row in size["ops"].items():
        for name in ("raw apsw", "litesessions"):
            assert row[name]["per_s"] > 0, (op, name)
            assert len(row[name]["samples_us"]) == result["args"]["rounds"]
        assert row["raw apsw"]["ratio"] == 1.0
    assert size["ops"]["get_by_subject"]["diskcache"] is None  # no subject index: n/a
    assert size["ops"]["create"]["diskcache"]["per_s"] > 0
    # The work directory is removed afterwards (the files can be large).
    assert list(tmp_path.iterdir()) == [out]


@pytest.mark.slow
def test_scale_small(tmp_path: Path) -> None:
    out = tmp_path / "scale.json"
    done = run_tool(
        "scale.py", "--sessions", "3000", "--baseline", "500", "--samples", "300", "--opens", "2", "--json", str(out)
    )
    assert "3,000 against 500 (p50):" in done.stdout
    result = json.loads(out.read_text())
    small, large = result["results"]
    assert (small["size"], large["size"]) == (500, 3000)
    assert large["fill"]["sessions"] == 3000
    assert large["fill"]["bytes_per_session"] > 2048  # every ticket is really stored
    assert large["open"]["median_open_ms"] > 0
    for op in ("get", "update", "create", "get_by_subject"):
        p = large["serve"][op]
        assert 0 < p["p50_us"] <= p["p99_us"] <= p["max_us"]


@pytest.mark.slow
def test_convert_bench(tmp_path: Path) -> None:
    done = run_tool("convert_bench.py", "--number", "200", "--repeat", "2")
    assert "read: session_from_row (store)" in done.stdout
    assert "read: cattrs structure (dict)" in done.stdout


@pytest.mark.slow
def test_cleanup_load_small() -> None:
    done = run_tool("cleanup_load.py", "--expired", "3000", "--live", "2000")
    assert "check: expired left=0 live left=2000/2000" in done.stdout
    assert "garbage collections during the run:" in done.stdout
    assert "RESULT: ok" in done.stdout


@pytest.mark.slow
def test_cleanup_load_hold_models_sees_the_collections() -> None:
    # --hold-models keeps tracked objects alive and growing: collections happen and are timed.
    done = run_tool("cleanup_load.py", "--expired", "3000", "--live", "2000", "--hold-models")
    counts = [line for line in done.stdout.splitlines() if "garbage collections during the run:" in line]
    assert len(counts) == 1
    assert not counts[0].strip().startswith("garbage collections during the run: 0 ")
    assert "RESULT: ok" in done.stdout


@pytest.mark.slow
def test_import_floor_small(tmp_path: Path) -> None:
    done = run_tool("import_floor.py", "--sessions", "2000", "--page-sizes", "4096,8192", "--dir", str(tmp_path))
    rows = [line for line in done.stdout.splitlines() if re.fullmatch(r"\| .* \| [\d,]+/s \|", line)]
    assert [row.split(" | ")[:2] for row in rows] == [
        ["| schema", "4096"],
        ["| table only", "4096"],
        ["| rebuild", "4096"],
        ["| schema", "8192"],
        ["| table only", "8192"],
        ["| rebuild", "8192"],
    ]
    assert list(tmp_path.iterdir()) == []  # every variant's file was removed
