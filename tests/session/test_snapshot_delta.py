"""The snapshot deltas (app.session.snapshot_delta): whatever two JSON values, the delta from one
rebuilds the other exactly, types included; a list that only grew keeps only its new tail; and
a chain of deltas rebuilds every snapshot from its last full one."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.session.snapshot_delta import (
    CHECKPOINT_EVERY,
    DELTA,
    FULL,
    Parts,
    Stored,
    apply,
    apply_parts,
    apply_text,
    canonical,
    checkpoint_due,
    diff,
    diff_parts,
    diff_text,
    rebuild,
    same,
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=4), inner, max_size=6)
    ),
    max_leaves=40,
)


def mutated(value: Any, draw: st.DrawFn) -> Any:
    """`value` with a few changes deep inside: what one command does to a session's state."""
    if isinstance(value, dict) and value and draw(st.booleans()):
        key = draw(st.sampled_from(sorted(value)))
        out = dict(value)
        choice = draw(st.integers(0, 2))
        if choice == 0:
            del out[key]
        elif choice == 1:
            out[key] = mutated(value[key], draw)
        else:
            out[draw(st.text(max_size=4))] = draw(values)
        return out
    if isinstance(value, list) and draw(st.booleans()):
        choice = draw(st.integers(0, 2))
        if choice == 0:
            return [*value, *draw(st.lists(values, max_size=3))]
        if choice == 1 and value:
            index = draw(st.integers(0, len(value) - 1))
            return [*value[:index], mutated(value[index], draw), *value[index + 1 :]]
        return value[: draw(st.integers(0, len(value)))]
    return draw(values)


@st.composite
def pairs(draw: st.DrawFn) -> tuple[Any, Any]:
    a = draw(values)
    return a, draw(st.one_of(values, st.just(None).map(lambda _: mutated(a, draw))))


@settings(max_examples=400, deadline=None)
@given(pairs())
def test_a_delta_rebuilds_the_new_value_exactly(pair: tuple[Any, Any]) -> None:
    a, b = pair
    before = json.loads(json.dumps(a))
    delta = diff(a, b)
    stored = json.loads(json.dumps(delta))  # what the database keeps
    rebuilt = apply(a, stored)
    assert same(rebuilt, b)
    assert json.dumps(rebuilt, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert same(a, before)  # the base is not changed in place
    assert (delta is None) == same(a, b)


@settings(max_examples=200, deadline=None)
@given(pairs(), st.booleans())
def test_a_text_delta_rebuilds_the_new_text_byte_for_byte(
    pair: tuple[Any, Any], spaced: bool
) -> None:
    a, b = pair
    before = canonical(a)
    after = json.dumps(b) if spaced else canonical(b)  # spaced: as thresholds are written
    assert apply_text(before, diff_text(before, after)) == after


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (1, 1.0),
        (1, True),
        (0, False),
        (0.0, -0.0),
        ({"a": 1}, {"a": 1.0}),
        ([1, 2], [1, 2.0]),
        (None, {}),
        ([], {}),
    ],
)
def test_values_python_holds_equal_are_different_json(a: Any, b: Any) -> None:
    assert not same(a, b)
    assert same(apply(a, diff(a, b)), b)


def test_a_list_that_only_grew_keeps_only_its_tail() -> None:
    readings = [{"hr": 60 + n, "at": f"09:{n:02d}"} for n in range(40)]
    grown = {"vitals": [*readings, {"hr": 99, "at": "10:00"}], "version": 41}
    delta = diff({"vitals": readings, "version": 40}, grown)
    assert delta == [
        "d",
        {"vitals": ["l", 40, {}, [{"hr": 99, "at": "10:00"}]], "version": ["=", 41]},
        [],
    ]


def test_an_unchanged_part_is_kept_as_null() -> None:
    parts = Parts('{"a":1}', '{"alarms":[]}', "{}")
    changed = Parts('{"a":2}', '{"alarms":[]}', '{"hr_high": 120}')
    delta = diff_parts(parts, changed)
    assert delta.alarms == "null"
    assert json.loads(delta.thresholds) == ["t", '{"hr_high": 120}']  # not canonical: verbatim
    assert apply_parts(parts, delta) == changed


def test_a_checkpoint_at_least_every_so_many_events() -> None:
    assert checkpoint_due(None, 5)
    assert not checkpoint_due(1, 2)
    assert checkpoint_due(CHECKPOINT_EVERY - 1, CHECKPOINT_EVERY)
    assert checkpoint_due(CHECKPOINT_EVERY - 2, CHECKPOINT_EVERY + 3)
    assert not checkpoint_due(CHECKPOINT_EVERY, 2 * CHECKPOINT_EVERY - 1)


def test_a_chain_rebuilds_every_snapshot_and_refuses_a_broken_one() -> None:
    wholes = [Parts(canonical({"v": n, "log": list(range(n))}), "[]", "{}") for n in range(6)]
    rows = [Stored(0, FULL, None, wholes[0])]
    for n in range(1, 6):
        rows.append(Stored(n, DELTA, n - 1, diff_parts(wholes[n - 1], wholes[n])))
    assert rebuild(rows) == list(enumerate(wholes))
    with pytest.raises(ValueError):
        rebuild(rows[1:])  # no full one first
    with pytest.raises(ValueError):
        rebuild([rows[0], rows[2]])  # a delta whose base is missing
