"""`stepwise protocol build` as a user runs it: a real subprocess of the installed entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from tests.protocol.test_published_tables import CASES, assert_matches_printed

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def stepwise(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEPWISE_")}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_ceftazidime_json_reproduces_the_published_table() -> None:
    result = stepwise("protocol", "build", "brigham-12", "--dose", "2000", "--unit", "mg", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout, parse_float=Decimal)
    assert set(data) == {"template", "target_dose", "unit", "solutions", "steps", "total_minutes"}
    assert (data["template"], data["target_dose"], data["unit"]) == ("brigham-12", 2000, "mg")
    case = CASES["uptodate-ceftazidime-2000mg-12step"]
    for ours, printed in zip(data["solutions"], case["solutions"], strict=True):
        assert set(ours) == {"number", "volume_ml", "concentration", "amount"}
        assert ours["volume_ml"] == printed["volume_ml"]
        assert_matches_printed(
            Decimal(ours["concentration"]),
            printed["concentration_mg_per_ml"],
            "concentration_mg_per_ml",
        )
    for ours, printed in zip(data["steps"], case["steps"], strict=True):
        assert set(ours) == {
            "number",
            "solution",
            "rate_ml_h",
            "minutes",
            "volume_ml",
            "dose",
            "cumulative_dose",
        }
        assert (ours["number"], ours["solution"]) == (printed["step"], printed["solution"])
        for field in ("rate_ml_h", "minutes", "volume_ml", "dose", "cumulative_dose"):
            assert_matches_printed(Decimal(ours[field]), printed[field], field)
    assert_matches_printed(Decimal(data["total_minutes"]), case["total_minutes"], "total_minutes")
    assert data["steps"][-1]["cumulative_dose"] == 2000


def test_wendel_table_with_doses() -> None:
    case = CASES["cdc1998-wendel-oral-penicillinV"]
    doses = ",".join(str(step["dose"]) for step in case["steps"])
    result = stepwise(
        "protocol",
        "build",
        "doses",
        "--dose",
        "1296700",
        "--unit",
        "units",
        "--doses",
        doses,
        "--interval",
        "15",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["solutions"] == []
    assert [s["dose"] for s in data["steps"]] == [s["dose"] for s in case["steps"]]
    assert [s["cumulative_dose"] for s in data["steps"]] == [
        s["cumulative_dose"] for s in case["steps"]
    ]
    assert all(
        s["solution"] is None and s["rate_ml_h"] is None and s["volume_ml"] is None
        for s in data["steps"]
    )
    assert data["total_minutes"] == 14 * 15


def test_table_is_the_default_output() -> None:
    result = stepwise("protocol", "build", "brigham-12", "--dose", "2000", "--unit", "mg")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith("brigham-12: target 2000 mg, 12 steps, total 339.375 min")
    step12 = next(line for line in lines if line.startswith("12 "))
    assert step12.split() == [
        "12",
        "3",
        "80.0",
        "174.375",
        "232.500",
        "1845.362",
        "2000.000",
        "100.00",
    ]


def test_all_brigham_options_and_bag_overrides() -> None:
    result = stepwise(
        "protocol",
        "build",
        "brigham-12",
        "--dose",
        "675",
        "--unit",
        "mg",
        "--final-rate",
        "80",
        "--bag-volume",
        "250",
        "--step-minutes",
        "15",
        "--bag",
        "1:volume=50,amount=1.5",
        "--bag",
        "2:volume=50,amount=15",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [s["concentration"] for s in data["solutions"][:2]] == [0.03, 0.3]
    assert data["steps"][-1]["cumulative_dose"] == 675


def test_doubling_options() -> None:
    result = stepwise(
        "protocol",
        "build",
        "doubling",
        "--dose",
        "1000",
        "--unit",
        "mg",
        "--start-fraction",
        "1/10000",
        "--factor",
        "2",
        "--steps",
        "12",
        "--interval",
        "20",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["steps"][0]["dose"] == 0.1
    assert data["steps"][-1]["cumulative_dose"] == 1000
    assert data["total_minutes"] == 240


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["brigham-12", "--dose", "-5", "--unit", "mg"], "dose must be greater than 0"),
        (["brigham-12", "--dose", "0", "--unit", "mg"], "dose must be greater than 0"),
        (
            ["brigham-12", "--dose", "2000", "--unit", "mg", "--bag-volume", "0"],
            "bag volume must be greater than 0",
        ),
        (["brigham-13", "--dose", "2000", "--unit", "mg"], "unknown template 'brigham-13'"),
        (["brigham-12", "--dose", "2000", "--unit", "mL"], "unknown unit 'mL'"),
        (["brigham-12", "--dose", "2000"], "unit is required"),
        (
            ["brigham-12", "--dose", "2000", "--unit", "mg", "--bag", "5:volume=50"],
            "bag 5 does not exist",
        ),
        (["brigham-12", "--dose", "lots", "--unit", "mg"], "dose must be a number"),
        (
            ["brigham-12", "--dose", "2000", "--unit", "mg", "--final-rate", "fast"],
            "final rate must be a number",
        ),
        (["doubling", "--dose", "100", "--unit", "mg", "--steps", "x"], "steps must be a number"),
        (["doses", "--unit", "mg", "--doses", "1,2,x"], "dose 3 must be a number"),
        (
            ["doses", "--unit", "mg", "--doses", "1,2", "--final-rate", "80"],
            "--final-rate does not apply",
        ),
        (
            ["brigham-12", "--dose", "2000", "--unit", "mg", "--nonsense"],
            "No such option: --nonsense",
        ),
        ([], "Missing argument"),
    ],
)
def test_bad_input_exits_non_zero_with_one_line(args: list[str], reason: str) -> None:
    result = stepwise("protocol", "build", *args)
    assert result.returncode != 0
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and reason in lines[0], lines[0]
