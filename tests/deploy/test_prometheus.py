"""Prometheus: the config loads, every alert is unit-tested, and the scrape
target is the port the application image really serves its metrics on."""

from __future__ import annotations

import re
import subprocess

from tests.deploy.conftest import DEPLOY, ROOT, load_yaml, require_tool

PROMETHEUS = DEPLOY / "prometheus"
RULES = PROMETHEUS / "rules" / "anomaly.yml"
RULE_TESTS = PROMETHEUS / "tests" / "anomaly_test.yml"


def _alerts() -> dict[str, dict]:
    return {
        rule["alert"]: rule
        for group in load_yaml(RULES)["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }


def test_it_accepts_the_config_and_the_rules_it_loads():
    promtool = require_tool("promtool")

    result = subprocess.run(
        [promtool, "check", "config", str(PROMETHEUS / "prometheus.yml")],
        capture_output=True,
        text=True,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    # The rule_files glob is relative to the config: it must find our rules.
    assert "SUCCESS: 11 rules found" in result.stdout + result.stderr


def test_it_passes_every_alert_unit_test():
    promtool = require_tool("promtool")

    result = subprocess.run(
        [promtool, "test", "rules", str(RULE_TESTS)], capture_output=True, text=True
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_it_has_the_alerts_the_product_needs():
    assert set(_alerts()) == {
        "AppDown",
        "AppInstanceDown",
        "HighServerErrorRate",
        "HighClientErrorRate",
        "HighLatencyP99",
        "HighMemoryUsage",
        "HighCpuUsage",
        "FlaggedRatioJump",
        "NoActiveModel",
        "ArtifactVerificationFailed",
        "NoPredictionsWhileRequestsArrive",
    }


def test_it_tests_every_alert_firing_and_staying_silent():
    fired, silent = set(), set()
    for case in load_yaml(RULE_TESTS)["tests"]:
        for check in case.get("alert_rule_test", []):
            (fired if check.get("exp_alerts") else silent).add(check["alertname"])

    assert set(_alerts()) - fired == set(), "alerts never tested firing"
    assert set(_alerts()) - silent == set(), "alerts never tested staying silent"


def test_it_gives_every_alert_a_severity_alertmanager_routes():
    routes = load_yaml(DEPLOY / "alertmanager" / "alertmanager.yml")["route"]["routes"]
    routed = {
        match.split("=", 1)[1].strip('"')
        for route in routes
        for match in route["matchers"]
        if match.startswith("severity=")
    }

    for name, rule in _alerts().items():
        assert rule["labels"]["severity"] in routed, name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name


def test_it_scrapes_the_port_the_app_image_serves_metrics_on():
    config = load_yaml(PROMETHEUS / "prometheus.yml")
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "anomaly-app"]
    (sd,) = job["dns_sd_configs"]
    dockerfile = (ROOT / "Dockerfile").read_text()

    assert sd["names"] == ["app"]  # the compose service, one address per replica
    assert re.search(rf"METRICS_PORT={sd['port']}\b", dockerfile)
    assert re.search(rf"^EXPOSE .*\b{sd['port']}\b", dockerfile, re.MULTILINE)


def test_it_selects_the_job_the_scrape_config_defines():
    jobs = {job["job_name"] for job in load_yaml(PROMETHEUS / "prometheus.yml")["scrape_configs"]}

    for name, rule in _alerts().items():
        for job in re.findall(r'job="([^"]+)"', rule["expr"]):
            assert job in jobs, name
