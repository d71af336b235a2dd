"""Property tests over templates, parameters and edits (Hypothesis)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from app.protocol import editing
from app.protocol.engine import TARGET_DOSE_LIMITS
from app.protocol.model import Protocol, ProtocolError
from app.protocol.templates import (
    BRIGHAM_DESIGNS,
    BagOverride,
    BrighamParameters,
    DosesParameters,
    DoublingParameters,
    build,
)
from tests.protocol.invariants import assert_protocol_invariants

UNITS = st.sampled_from(["mg", "g", "mcg", "units"])


@st.composite
def target_in_unit(draw: st.DrawFn) -> tuple[Decimal, str]:
    """A unit and a target inside its plausible range (app.protocol.engine), spread over the
    whole range by drawing the order of magnitude first."""
    unit = draw(UNITS)
    low, high = TARGET_DOSE_LIMITS[unit]
    exponent = draw(st.integers(min_value=low.adjusted(), max_value=high.adjusted()))
    digits = draw(st.integers(min_value=1000, max_value=9999))
    target = Decimal(digits).scaleb(exponent - 3)
    return min(max(target, low), high), unit


def decimals(low: str, high: str, places: int = 3) -> st.SearchStrategy[Decimal]:
    return st.decimals(
        min_value=Decimal(low),
        max_value=Decimal(high),
        places=places,
        allow_nan=False,
        allow_infinity=False,
    )


@st.composite
def sensible_brigham(draw: st.DrawFn) -> tuple[str, BrighamParameters]:
    """Parameters a clinician could choose: bag 20-1000 mL, 5-60 min steps, and a final rate slow
    enough for every bag to hold its steps. The busiest bag (the 1/10 bag of brigham-16) runs
    R x (1/8 + 1/4 + 1/2 + 1) = 1.875 R for one step's time; allow R x minutes/60 <= volume / 2."""
    template = draw(st.sampled_from(sorted(BRIGHAM_DESIGNS)))
    volume = draw(decimals("20", "1000", 1))
    minutes = draw(decimals("5", "60", 0))
    max_rate = min(volume * Decimal("0.7"), volume * 60 / (minutes * 2))
    rate = draw(decimals("1", str(max_rate.quantize(Decimal("0.1"))), 1))
    target, unit = draw(target_in_unit())
    return template, BrighamParameters(
        target_dose=target,
        unit=unit,
        final_rate_ml_h=rate,
        bag_volume_ml=volume,
        step_minutes=minutes,
    )


@given(sensible_brigham())
def test_brigham_templates_always_complete_the_target(case: tuple[str, BrighamParameters]) -> None:
    template, parameters = case
    protocol = build(template, parameters)
    assert_protocol_invariants(protocol)
    assert len(protocol.steps) == 4 * len(BRIGHAM_DESIGNS[template].bags)


@given(
    template=st.sampled_from(sorted(BRIGHAM_DESIGNS)),
    target=decimals("-10", "100000", 4),
    rate=decimals("-5", "2000", 2),
    volume=decimals("-5", "1000", 1),
    minutes=decimals("-1", "120", 1),
    overrides=st.dictionaries(
        st.integers(min_value=0, max_value=5),
        st.builds(
            BagOverride,
            volume_ml=st.none() | decimals("0", "500", 1),
            amount=st.none() | decimals("0", "5000", 3),
        ),
        max_size=3,
    ),
)
def test_any_brigham_input_gives_a_valid_protocol_or_a_reason(
    template: str,
    target: Decimal,
    rate: Decimal,
    volume: Decimal,
    minutes: Decimal,
    overrides: dict[int, BagOverride],
) -> None:
    parameters = BrighamParameters(target, "mg", rate, volume, minutes, overrides)
    try:
        protocol = build(template, parameters)
    except ProtocolError as error:
        assert error.message and "\n" not in error.message
        return
    assert_protocol_invariants(protocol)


@st.composite
def sensible_doubling(draw: st.DrawFn) -> DoublingParameters:
    factor = draw(decimals("1.5", "3", 2))
    start = draw(st.sampled_from([Decimal("0.001"), Decimal("0.0001"), Decimal("0.00001")]))
    steps = draw(st.integers(min_value=2, max_value=40))
    target, unit = draw(target_in_unit())
    return DoublingParameters(
        target_dose=target,
        unit=unit,
        start_fraction=start,
        factor=factor,
        steps=steps,
        interval_minutes=draw(decimals("1", "120", 0)),
    )


@given(sensible_doubling())
def test_doubling_completes_the_target_or_names_the_largest_step_count(
    p: DoublingParameters,
) -> None:
    try:
        protocol = build("doubling", p)
    except ProtocolError as error:
        # Refused only when the ladder would pass the target early; the reason says what works.
        assert error.field == "steps" and "use at most" in error.message
        fewer = int(error.message.split("use at most ")[1].split()[0])
        assert 2 <= fewer < p.steps
        assert_protocol_invariants(build("doubling", _with_steps(p, fewer)))
        return
    assert_protocol_invariants(protocol)
    assert len(protocol.steps) == p.steps


def test_pure_doubling_over_12_steps_is_not_silently_short() -> None:
    # 1/10,000 doubled 11 times reaches only 41 % of the target; the last step brings the rest.
    protocol = build("doubling", DoublingParameters(Decimal(1000), "mg"))
    assert protocol.steps[-2].cumulative_dose == Decimal("204.7")
    assert protocol.steps[-1].dose == Decimal("795.3")
    assert protocol.steps[-1].cumulative_dose == 1000


def _with_steps(p: DoublingParameters, steps: int) -> DoublingParameters:
    return DoublingParameters(
        p.target_dose, p.unit, p.start_fraction, p.factor, steps, p.interval_minutes
    )


@given(
    doses=st.lists(decimals("0.001", "6000", 3).filter(lambda d: d > 0), min_size=2, max_size=30),
    interval=decimals("1", "90", 0),
)
def test_doses_template_keeps_the_given_ladder(doses: list[Decimal], interval: Decimal) -> None:
    doses.sort()
    protocol = build("doses", DosesParameters(tuple(doses), "mg", interval))
    assert_protocol_invariants(protocol)
    assert [s.dose for s in protocol.steps] == doses
    assert protocol.target_dose == sum(doses)


EDITS = st.lists(
    st.tuples(
        st.sampled_from(["insert", "edit", "delete"]),
        st.integers(min_value=0, max_value=20),
        st.none() | decimals("0.1", "200", 1),
        st.none() | decimals("1", "60", 0),
    ),
    max_size=6,
)


@given(case=sensible_brigham(), edits=EDITS)
def test_edits_keep_the_target_or_change_nothing(
    case: tuple[str, BrighamParameters],
    edits: list[tuple[str, int, Decimal | None, Decimal | None]],
) -> None:
    template, parameters = case
    protocol = build(template, parameters)
    for action, number, rate, minutes in edits:
        before = protocol
        try:
            protocol = _apply(protocol, action, number, rate, minutes)
        except ProtocolError:
            assert protocol is before
            continue
        assert_protocol_invariants(protocol)
    inserted = sum(1 for s in protocol.steps if s.origin == "inserted")
    assert len(protocol.steps) == 4 * len(BRIGHAM_DESIGNS[template].bags) + inserted


def _apply(
    protocol: Protocol, action: str, number: int, rate: Decimal | None, minutes: Decimal | None
) -> Protocol:
    if action == "insert":
        return editing.insert_step(protocol, number, rate_ml_h=rate, minutes=minutes)
    if action == "edit":
        return editing.edit_step(protocol, number, rate_ml_h=rate, minutes=minutes)
    return editing.delete_step(protocol, number)


@given(
    target=target_in_unit(),
    scale=st.sampled_from([Decimal("1e-6"), Decimal("0.5"), Decimal(2), Decimal("1e6")]),
)
def test_a_target_outside_its_plausible_range_is_refused_with_its_field(
    target: tuple[Decimal, str], scale: Decimal
) -> None:
    dose, unit = target
    low, high = TARGET_DOSE_LIMITS[unit]
    candidate = (low if scale < 1 else high) * scale
    try:
        build("brigham-12", BrighamParameters(target_dose=candidate, unit=unit))
    except ProtocolError as error:
        assert error.field == "dose" and "must be between" in error.message
    else:
        raise AssertionError(f"{candidate} {unit} was accepted")
    assert low <= dose <= high
