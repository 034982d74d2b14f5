"""A worker's garbage collection kept out of large requests, in a fresh
interpreter: it switches the collector off and on for the whole process."""

from __future__ import annotations

import json
import textwrap

from tests.anomaly.fresh_interpreter import run_fresh

_SCRIPT = textwrap.dedent(
    """
    import gc, json, weakref, django
    django.setup()
    from django.core.signals import request_finished, request_started
    from anomaly.collector import collect_due, keep_collection_out_of_large_requests

    class Node:
        def __init__(self):
            self.me = self  # a cycle: only the collector frees it

    def garbage(count):
        refs = [weakref.ref(Node()) for _ in range(count)]
        return lambda: sum(ref() is not None for ref in refs)

    def request(size, count=5_000):
        request_started.send(sender=None, environ={"CONTENT_LENGTH": str(size)})
        alive = garbage(count)
        during = alive(), gc.isenabled()
        request_finished.send(sender=None)
        return during, (alive(), gc.isenabled())

    keep_collection_out_of_large_requests(32_768)
    gc.collect()
    out = {"large": request(40_000), "small": request(500)}
    # A large request whose end never came does not keep the collector off.
    request_started.send(sender=None, environ={"CONTENT_LENGTH": "40000"})
    out["unfinished"] = request(500)
    gc.collect()
    out["nothing_due"] = collect_due()
    chosen = []
    gc.disable()  # as during a large request: only collect_due collects
    for _ in range(111):  # ten young collections make a middle one due,
        garbage(800)  # ten of those a full one
        chosen.append(collect_due())
    gc.enable()
    out["chosen"] = chosen
    print(json.dumps(out))
    """
)


def _run() -> dict:
    output = run_fresh(_SCRIPT, DJANGO_SETTINGS_MODULE="anomaly.settings")
    return json.loads(output.strip().splitlines()[-1])


def test_a_large_request_runs_without_the_collector_and_its_garbage_goes_after():
    (alive_during, enabled_during), (alive_after, enabled_after) = _run()["large"]

    assert alive_during == 5_000 and not enabled_during
    assert alive_after == 0 and enabled_after


def test_a_small_request_is_left_to_pythons_collector():
    outcome = _run()
    (alive_during, enabled_during), (_, enabled_after) = outcome["small"]

    assert enabled_during and enabled_after
    assert alive_during < 5_000  # collected as it went, as Python does
    (_, enabled), (_, enabled_after) = outcome["unfinished"]
    assert enabled and enabled_after


def test_after_a_large_request_it_collects_what_python_would_have():
    outcome = _run()

    assert outcome["nothing_due"] is None
    chosen = outcome["chosen"]
    # Every eleventh collection is of the middle generation; after ten of
    # those comes a full one.
    assert chosen[10] == 1 and chosen[21] == 1
    assert chosen.count(1) == 10
    assert chosen.index(2) == 110
