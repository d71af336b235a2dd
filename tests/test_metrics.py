"""The metrics registry (app.metrics) and what each process counts (app.monitoring), without a
server: every output is read back with a strict reader of the text format
(tests/prometheus_text.py), itself checked to refuse what is out of format."""

from __future__ import annotations

import math
import sys
import threading

import pytest

from app.metrics import CONTENT_TYPE, Registry, format_number
from app.monitoring import ServerMetrics
from tests.prometheus_text import parse


def test_counters_and_gauges_read_back_with_their_help_type_and_labels() -> None:
    registry = Registry()
    requests = registry.counter("app_requests_total", "Requests answered.", ("method", "code"))
    registry.counter("app_starts_total", "Starts.")
    temperature = registry.gauge("app_temperature_celsius", "Room temperature.", ("room",))
    requests.inc(method="GET", code="200")
    requests.inc(2, method="GET", code="200")
    requests.inc(method="POST", code="503")
    temperature.set(21.5, room="ward 4")
    temperature.set(-3, room="cold store")

    text = registry.render()
    families = parse(text)

    assert list(families) == ["app_requests_total", "app_starts_total", "app_temperature_celsius"]
    assert families["app_requests_total"].type == "counter"
    assert families["app_requests_total"].help == "Requests answered."
    assert families["app_requests_total"].value(method="GET", code="200") == 3
    assert families["app_requests_total"].value(method="POST", code="503") == 1
    assert families["app_starts_total"].value() == 0  # without labels it exists from the start
    assert families["app_temperature_celsius"].type == "gauge"
    assert families["app_temperature_celsius"].value(room="ward 4") == 21.5
    assert families["app_temperature_celsius"].value(room="cold store") == -3
    assert 'app_requests_total{method="GET",code="200"} 3\n' in text
    assert requests.value(method="GET", code="200") == 3
    assert CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"


def test_a_histogram_counts_into_cumulative_buckets_with_inf_sum_and_count() -> None:
    registry = Registry()
    seconds = registry.histogram("op_seconds", "Time taken.", (0.1, 0.5, 2), ("op",))
    for value in (0.05, 0.1, 0.3, 0.5, 1.0, 7.0):  # 0.1 and 0.5 fall on their bounds: le
        seconds.observe(value, op="save")
    seconds.observe(0.2, op="read")

    text = registry.render()
    family = parse(text)["op_seconds"]

    assert family.type == "histogram"
    save = {
        dict(labels)["le"]: v
        for labels, v in family.series("op_seconds_bucket").items()
        if dict(labels)["op"] == "save"
    }
    assert save == {"0.1": 2, "0.5": 4, "2": 5, "+Inf": 6}
    assert family.value("op_seconds_count", op="save") == 6
    assert family.value("op_seconds_sum", op="save") == pytest.approx(8.95)
    assert family.value("op_seconds_bucket", op="read", le="0.1") == 0
    assert family.value("op_seconds_bucket", op="read", le="0.5") == 1
    assert family.value("op_seconds_count", op="read") == 1
    assert seconds.count(op="save") == 6
    # le comes last, after the series' own labels, and the lines of a series are in order.
    assert (
        'op_seconds_bucket{op="read",le="0.1"} 0\n'
        'op_seconds_bucket{op="read",le="0.5"} 1\n'
        'op_seconds_bucket{op="read",le="2"} 1\n'
        'op_seconds_bucket{op="read",le="+Inf"} 1\n'
        'op_seconds_sum{op="read"} 0.2\n'
        'op_seconds_count{op="read"} 1\n'
    ) in text


def test_label_values_and_help_are_escaped_and_read_back_unchanged() -> None:
    registry = Registry()
    tricky = 'C:\\wards\\4 "east"\nsecond line, and ünïcode'
    counter = registry.counter("paths_total", 'Help with a \\ backslash\nand "quotes".', ("p",))
    counter.inc(p=tricky)

    text = registry.render()

    assert '# HELP paths_total Help with a \\\\ backslash\\nand "quotes".\n' in text
    assert 'paths_total{p="C:\\\\wards\\\\4 \\"east\\"\\nsecond line, and ünïcode"} 1\n' in text
    family = parse(text)["paths_total"]
    assert family.help == 'Help with a \\ backslash\nand "quotes".'
    assert family.value(p=tricky) == 1


def test_numbers_are_written_as_the_format_reads_them() -> None:
    assert format_number(3.0) == "3"
    assert format_number(0) == "0"
    assert format_number(0.25) == "0.25"
    assert format_number(1e-05) == "1e-05"
    assert format_number(1.5e20) == "1.5e+20"
    assert format_number(math.inf) == "+Inf"
    assert format_number(-math.inf) == "-Inf"
    assert format_number(math.nan) == "NaN"
    registry = Registry()
    registry.gauge("big", "A large value.").set(2.0**60)
    assert parse(registry.render())["big"].value() == 2.0**60


def test_sampled_families_are_read_at_each_scrape() -> None:
    registry = Registry()
    open_now = {"bedside": 2, "board": 1}
    registry.sampled(
        "screens", "Open screens.", "gauge", lambda: {(k,): v for k, v in open_now.items()}, ["k"]
    )
    assert parse(registry.render())["screens"].value(k="bedside") == 2
    open_now["bedside"] = 0
    families = parse(registry.render())
    assert families["screens"].value(k="bedside") == 0
    assert families["screens"].type == "gauge"


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda m: m["counter"].inc(-1, route="/a"), "only goes up"),
        (lambda m: m["counter"].inc(math.nan, route="/a"), "only goes up"),
        (lambda m: m["counter"].inc(math.inf, route="/a"), "only goes up"),
        (lambda m: m["counter"].inc(route="/a", extra="x"), "takes the labels"),
        (lambda m: m["counter"].inc(), "takes the labels"),
        (lambda m: m["counter"].inc(route=5), "must be text"),
        (lambda m: m["gauge"].set(math.nan), "NaN"),
        (lambda m: m["histogram"].observe(math.nan, route="/a"), "NaN"),
        (lambda m: m["histogram"].observe(0.1, other="/a"), "takes the labels"),
    ],
)
def test_a_bad_update_is_refused_clearly_and_changes_nothing(change, error: str) -> None:
    registry = Registry()
    made = {
        "counter": registry.counter("c_total", "C.", ("route",)),
        "gauge": registry.gauge("g", "G."),
        "histogram": registry.histogram("h_seconds", "H.", (1.0,), ("route",)),
    }
    made["counter"].inc(route="/a")
    made["gauge"].set(4)
    made["histogram"].observe(0.5, route="/a")
    before = registry.render()
    with pytest.raises((ValueError, TypeError), match=error):
        change(made)
    assert registry.render() == before


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda r: r.counter("bad name", "x"), "not a metric name"),
        (lambda r: r.counter("1st_total", "x"), "not a metric name"),
        (lambda r: r.counter("ok_total", "x", ("bad-label",)), "not a label name"),
        (lambda r: r.counter("ok_total", "x", ("__reserved",)), "not a label name"),
        (lambda r: r.counter("ok_total", "x", ("a", "a")), "twice"),
        (lambda r: r.counter("ok_total", "  "), "help text is empty"),
        (lambda r: r.histogram("h", "x", ()), "at least one"),
        (lambda r: r.histogram("h", "x", (1, 0.5)), "rise strictly"),
        (lambda r: r.histogram("h", "x", (1, 1)), "rise strictly"),
        (lambda r: r.histogram("h", "x", (1, math.inf)), "finite"),
        (lambda r: r.histogram("h", "x", (1,), ("le",)), "histogram's own label"),
        (lambda r: r.sampled("s", "x", "histogram", dict), "counter or a gauge"),
        (lambda r: r.counter("taken_total", "x"), "is taken"),
        (lambda r: r.gauge("latency_count", "x"), "is taken"),  # the histogram's _count
    ],
)
def test_a_bad_metric_is_refused_clearly_and_registers_nothing(make, error: str) -> None:
    registry = Registry()
    registry.counter("taken_total", "Already here.")
    registry.histogram("latency", "Already here.", (1.0,))
    before = registry.render()
    with pytest.raises(ValueError, match=error):
        make(registry)
    assert registry.render() == before


def test_a_sampled_reading_with_the_wrong_labels_is_an_error_not_a_bad_line() -> None:
    registry = Registry()
    registry.sampled("s", "x", "counter", lambda: {("a", "b"): 1}, ("only",))
    with pytest.raises(ValueError, match="labels are"):
        registry.render()


def test_updates_from_several_threads_are_all_counted() -> None:
    # Threads switched as often as possible: an unguarded read-add-write would lose updates.
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    registry = Registry()
    counter = registry.counter("hits_total", "Hits.", ("kind",))
    seconds = registry.histogram("took_seconds", "Took.", (0.5,))
    threads_n, each = 8, 20_000
    scrapes: list[str] = []

    def work() -> None:
        for _ in range(each):
            counter.inc(kind="a")
            seconds.observe(0.25)

    def scrape() -> None:
        for _ in range(50):
            scrapes.append(registry.render())

    try:
        threads = [threading.Thread(target=work) for _ in range(threads_n)]
        threads.append(threading.Thread(target=scrape))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(previous)
    families = parse(registry.render())
    assert families["hits_total"].value(kind="a") == threads_n * each
    assert families["took_seconds"].value("took_seconds_count") == threads_n * each
    assert families["took_seconds"].value("took_seconds_sum") == threads_n * each * 0.25
    for text in scrapes:  # each scrape taken mid-way is itself consistent (parse checks it)
        parse(text)


def test_server_metrics_name_no_raw_method_path_or_status() -> None:
    metrics = ServerMetrics(lambda: None)
    metrics.request_done("GET", "/api/v1/sessions/{session_id}", 200, 0.02)
    metrics.request_done("BREW", None, 405, 0.001)  # any method a client invents: "other"
    metrics.request_done("GET", None, 404, 0.001)
    metrics.timer_fired("step", 0.04)
    metrics.database_fault("busy")

    families = parse(metrics.render())

    requests = families["stepwise_http_requests_total"]
    route = "/api/v1/sessions/{session_id}"
    assert requests.value(method="GET", route=route, status="2xx") == 1
    assert requests.value(method="other", route="unmatched", status="4xx") == 1
    assert requests.value(method="GET", route="unmatched", status="4xx") == 1
    durations = families["stepwise_http_request_duration_seconds"]
    assert durations.value("stepwise_http_request_duration_seconds_count", route=route) == 1
    assert durations.value("stepwise_http_request_duration_seconds_count", route="unmatched") == 2
    assert families["stepwise_timers_fired_total"].value(kind="step") == 1
    assert families["stepwise_timers_fired_total"].value(kind="escalation") == 0
    lateness = families["stepwise_timer_lateness_seconds"]
    assert lateness.value("stepwise_timer_lateness_seconds_bucket", kind="step", le="0.025") == 0
    assert lateness.value("stepwise_timer_lateness_seconds_bucket", kind="step", le="0.05") == 1
    assert families["stepwise_database_faults_total"].value(kind="busy") == 1
    assert families["stepwise_database_faults_total"].value(kind="unreachable") == 0
    # Before start-up there is no hub: no screens, nothing rendered.
    assert families["stepwise_live_screens"].series() == {
        (("kind", "bedside"),): 0,
        (("kind", "board"),): 0,
    }
    assert families["stepwise_live_renders_total"].value(kind="board") == 0


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("x 1\n", "before its family"),
        ("# HELP x X.\n# TYPE x counter\nx 1", "newline"),
        ('# HELP x X.\n# TYPE x counter\nx{a="1} 1\n', "unclosed"),
        ('# HELP x X.\n# TYPE x counter\nx{a="\\q"} 1\n', "bad escape"),
        ("# HELP x X.\n# TYPE x counter\nx one\n", "not a number"),
        ("# HELP x X.\n# TYPE x counter\n# HELP y Y.\n# TYPE y gauge\nx 1\n", "under its own"),
        (
            '# HELP h H.\n# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\n'
            "h_sum 1\nh_count 1\n",
            "cumulative",
        ),
        (
            '# HELP h H.\n# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\n'
            "h_sum 1\nh_count 3\n",
            "not the count",
        ),
        ('# HELP h H.\n# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n', "buckets"),
    ],
)
def test_the_reader_refuses_what_is_out_of_format(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse(text)
