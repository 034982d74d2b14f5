"""A worker's garbage collection between requests, in a fresh interpreter:
it changes the collector's thresholds for the whole process."""

from __future__ import annotations

import json
import textwrap

from tests.anomaly.fresh_interpreter import run_fresh

_SCRIPT = textwrap.dedent(
    """
    import gc, json, weakref, django
    django.setup()
    from django.core.signals import request_finished, request_started
    from anomaly.collector import collect_after_requests, collect_between_requests

    class Node:
        def __init__(self):
            self.me = self  # a cycle: only the collector frees it

    def garbage(count):
        refs = [weakref.ref(Node()) for _ in range(count)]
        return lambda: sum(ref() is not None for ref in refs)

    collect_after_requests(50_000)
    gc.collect()
    out = {"threshold": gc.get_threshold()}
    request_started.send(sender=None)
    alive = garbage(5_000)
    out["alive_in_request"] = alive()
    request_finished.send(sender=None)
    out["alive_after"] = alive()
    gc.collect()
    out["nothing_to_do"] = collect_between_requests()
    chosen = []
    for _ in range(COLLECTIONS):
        garbage(800)
        chosen.append(collect_between_requests())
    out["chosen"] = chosen
    print(json.dumps(out))
    """
)


def _run() -> dict:
    # 10 young collections make a middle one due, 10 middle ones an old one.
    script = _SCRIPT.replace("COLLECTIONS", "111")
    output = run_fresh(script, DJANGO_SETTINGS_MODULE="anomaly.settings")
    return json.loads(output.strip().splitlines()[-1])


def test_requests_run_without_collections_and_garbage_goes_after_them():
    outcome = _run()

    assert outcome["threshold"] == [50_000, 10, 10]
    assert outcome["alive_in_request"] == 5_000  # no collection inside the request
    assert outcome["alive_after"] == 0  # collected once the answer was out
    assert outcome["nothing_to_do"] is None


def test_it_collects_the_older_generations_as_often_as_python_would():
    chosen = _run()["chosen"]

    assert set(chosen) == {0, 1, 2}
    # Every eleventh collection is of the middle generation; after ten of
    # those comes a full one.
    assert chosen[10] == 1 and chosen[21] == 1
    assert chosen.count(1) == 10
    assert chosen.index(2) == 110
