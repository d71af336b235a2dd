"""`stepwise protocol …`: the command-line shell around the pure protocol engine.

The option names and the JSON shape are a contract (product-spec §2): automated checks rely on them.
Every option is taken as text and parsed by `app.protocol.parsing`, so bad input gets the same
one-line reason here as on the preview page.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from app.protocol.model import ProtocolError
from app.protocol.parsing import ProtocolRequest, build_from_request
from app.protocol.render import to_json_dict, to_text_table
from app.protocol.templates import TEMPLATES

protocol_cli = typer.Typer(help="Build desensitization protocols.", no_args_is_help=True)

Text = str | None


@protocol_cli.command("build")
def build_command(
    template: Annotated[str, typer.Argument(help=f"One of: {', '.join(TEMPLATES)}.")],
    dose: Annotated[
        Text, typer.Option("--dose", help="Target dose (for doses: their sum, optional).")
    ] = None,
    unit: Annotated[Text, typer.Option("--unit", help="mg, g, units or mcg.")] = None,
    final_rate: Annotated[
        Text, typer.Option("--final-rate", help="brigham-*: final rate, mL/h (80).")
    ] = None,
    bag_volume: Annotated[
        Text, typer.Option("--bag-volume", help="brigham-*: volume of each bag, mL (250).")
    ] = None,
    step_minutes: Annotated[
        Text, typer.Option("--step-minutes", help="brigham-*: minutes per step (15).")
    ] = None,
    bag: Annotated[
        list[str] | None,
        typer.Option(
            "--bag", help="brigham-*: bag recipe override N:volume=ML,amount=A (repeatable)."
        ),
    ] = None,
    start_fraction: Annotated[
        Text,
        typer.Option(
            "--start-fraction", help="doubling: first dose as a fraction of the target (1/10000)."
        ),
    ] = None,
    factor: Annotated[
        Text, typer.Option("--factor", help="doubling: factor between doses (2).")
    ] = None,
    steps: Annotated[Text, typer.Option("--steps", help="doubling: number of steps (12).")] = None,
    interval: Annotated[
        Text, typer.Option("--interval", help="doubling, doses: minutes between doses (15).")
    ] = None,
    doses: Annotated[
        Text, typer.Option("--doses", help="doses: comma-separated doses, e.g. 100,200,400.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object instead of a table.")
    ] = False,
) -> None:
    """Compute a protocol and print it as a table (or JSON with --json)."""
    request = ProtocolRequest(
        template=template,
        dose=dose,
        unit=unit,
        final_rate=final_rate,
        bag_volume=bag_volume,
        step_minutes=step_minutes,
        bags=list(bag or []),
        start_fraction=start_fraction,
        factor=factor,
        steps=steps,
        interval=interval,
        doses=doses,
    )
    try:
        protocol = build_from_request(request, strict_options=True)
    except ProtocolError as error:
        typer.echo(f"error: {error.message}", err=True)
        raise typer.Exit(code=2) from None
    if as_json:
        typer.echo(json.dumps(to_json_dict(protocol)))
    else:
        typer.echo(to_text_table(protocol))
