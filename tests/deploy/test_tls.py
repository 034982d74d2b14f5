"""deploy/tls/make-certs.sh: a CA and certificates that the Elastic services
and Traefik can use, with each container seeing only its own key."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.deploy.conftest import DEPLOY, load_yaml, require_tool


def _openssl(*args: str) -> str:
    result = subprocess.run(
        [require_tool("openssl"), *args], capture_output=True, text=True, check=True
    )
    return result.stdout


@pytest.mark.parametrize("name", ["elasticsearch", "kibana", "filebeat", "local"])
def test_it_signs_every_certificate_with_the_ca(certs, name):
    output = _openssl(
        "verify", "-CAfile", str(certs / "ca" / "ca.crt"), str(certs / name / f"{name}.crt")
    )
    assert output.strip().endswith(": OK")
    # The copy of the CA in each folder is the CA.
    assert (certs / name / "ca.crt").read_bytes() == (certs / "ca" / "ca.crt").read_bytes()


def test_it_names_elasticsearch_as_compose_calls_it(certs):
    text = _openssl(
        "x509", "-in", str(certs / "elasticsearch" / "elasticsearch.crt"), "-noout", "-text"
    )

    assert "DNS:elasticsearch" in text  # Kibana and Filebeat verify this name
    assert "TLS Web Server Authentication" in text


@pytest.mark.parametrize("name", ["kibana", "filebeat"])
def test_it_gives_kibana_and_filebeat_client_certificates(certs, name):
    text = _openssl("x509", "-in", str(certs / name / f"{name}.crt"), "-noout", "-text")

    assert "TLS Web Client Authentication" in text


def test_it_covers_the_public_names_in_the_local_fallback(certs):
    text = _openssl("x509", "-in", str(certs / "local" / "local.crt"), "-noout", "-text")

    for name in ("anomaly.test", "grafana.localhost", "kibana.localhost"):
        assert f"DNS:{name}" in text


def test_it_pairs_every_key_with_its_certificate(certs):
    for name in ("elasticsearch", "kibana", "filebeat", "local"):
        cert_key = _openssl("x509", "-in", str(certs / name / f"{name}.crt"), "-noout", "-pubkey")
        key = _openssl("pkey", "-in", str(certs / name / f"{name}.key"), "-pubout")
        assert cert_key == key, name


def test_it_keeps_the_ca_key_private(certs):
    assert (certs / "ca" / "ca.key").stat().st_mode & 0o077 == 0


def test_it_keeps_existing_certificates_unless_forced(certs, tmp_path):
    before = (certs / "kibana" / "kibana.crt").read_bytes()
    environ = {"PATH": "/usr/bin:/bin", "ENV_FILE": "/nonexistent", "CA_BITS": "2048"}
    script = str(DEPLOY / "tls" / "make-certs.sh")

    subprocess.run(["bash", script, str(certs)], check=True, capture_output=True, env=environ)
    assert (certs / "kibana" / "kibana.crt").read_bytes() == before

    copy = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(certs), str(copy)], check=True)
    subprocess.run(
        ["bash", script, str(copy)], check=True, capture_output=True, env={**environ, "FORCE": "1"}
    )
    assert (copy / "kibana" / "kibana.crt").read_bytes() != before


def _mounted_file(volume: str, path_in_container: str, certs: Path) -> Path:
    source, target = volume.split(":")[:2]
    relative = Path(path_in_container).relative_to(target)
    return certs / source.removeprefix("./deploy/tls/certs/") / relative


@pytest.mark.parametrize(
    ("service", "config", "keys"),
    [
        (
            "kibana",
            "kibana/kibana.yml",
            [
                "elasticsearch.ssl.certificate",
                "elasticsearch.ssl.key",
                "elasticsearch.ssl.certificateAuthorities",
            ],
        ),
        ("filebeat", "filebeat/filebeat.yml", ["certificate", "key", "certificate_authorities"]),
    ],
)
def test_it_points_the_clients_at_files_the_script_makes(compose, certs, service, config, keys):
    data = load_yaml(DEPLOY / config)
    settings = data if service == "kibana" else data["output.elasticsearch"]["ssl"]
    (volume,) = [
        v for v in compose["services"][service]["volumes"] if v.startswith("./deploy/tls/certs/")
    ]

    for key in keys:
        values = settings[key] if isinstance(settings[key], list) else [settings[key]]
        for value in values:
            assert _mounted_file(volume, value, certs).is_file(), (service, key)


def test_it_points_elasticsearch_at_files_the_script_makes(compose, certs):
    config = load_yaml(DEPLOY / "elasticsearch" / "elasticsearch.yml")
    (volume,) = [
        v
        for v in compose["services"]["elasticsearch"]["volumes"]
        if v.startswith("./deploy/tls/certs/")
    ]
    config_dir = "/usr/share/elasticsearch/config"

    tls_files = (".key", ".certificate", ".certificate_authorities")
    checked = [k for k in config if k.startswith("xpack.security.") and k.endswith(tls_files)]
    for key in checked:
        value = config[key]
        for path in value if isinstance(value, list) else [value]:
            assert _mounted_file(volume, f"{config_dir}/{path}", certs).is_file(), key
    assert len(checked) == 6  # key, certificate and CA for both HTTP and transport
