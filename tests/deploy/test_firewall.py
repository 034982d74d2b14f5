"""deploy/host/firewall.sh: inbound only 80, 443 and the custom SSH port."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.deploy.conftest import DEPLOY, require_tool

SCRIPT = DEPLOY / "host" / "firewall.sh"


def _run(*args: str, ssh_port: str | None = "2222") -> subprocess.CompletedProcess[str]:
    environ = {"PATH": "/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin"}
    if ssh_port is not None:
        environ["SSH_PORT"] = ssh_port
    return subprocess.run(["bash", str(SCRIPT), *args], env=environ, capture_output=True, text=True)


def test_it_drops_everything_inbound_but_web_and_ssh():
    ruleset = _run("--print").stdout

    assert "policy drop;" in ruleset
    accepted_tcp = re.findall(r"tcp dport (\{[^}]*\}|\d+)[^\n]*accept", ruleset)
    ports = {int(p) for group in accepted_tcp for p in re.findall(r"\d+", group)}
    assert ports == {80, 443, 2222}
    assert "ct state established,related accept" in ruleset  # replies still get in


def test_it_manages_its_own_table_and_leaves_dockers_rules_alone():
    ruleset = _run("--print").stdout

    assert "flush ruleset" not in ruleset
    assert ruleset.startswith("table inet anomaly_host\ndelete table inet anomaly_host\n")


@pytest.mark.parametrize("port", [None, "", "22", "80", "0", "70000", "22; drop"])
def test_it_refuses_a_missing_default_or_bad_ssh_port(port):
    result = _run("--print", ssh_port=port)

    assert result.returncode == 2
    assert result.stdout == ""


def test_it_produces_a_ruleset_nft_accepts():
    require_tool("nft")

    result = _run("--check")

    if "Operation not permitted" in result.stderr:
        pytest.skip("nft -c needs CAP_NET_ADMIN here")
    assert result.returncode == 0, result.stderr
