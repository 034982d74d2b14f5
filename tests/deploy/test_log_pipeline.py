"""The log pipeline: the app writes LOG_DIR/app.log, Filebeat reads it as JSON
and writes it to Elasticsearch as a user that may do nothing else, Kibana
reads it. Checked across the files that must agree with each other."""

from __future__ import annotations

import io
import json
import logging
import re
import subprocess
from pathlib import Path

import structlog
from django.test import Client

from anomaly.logging import ecs_formatter
from tests.deploy.conftest import DEPLOY, ROOT, load_yaml

FILEBEAT = load_yaml(DEPLOY / "filebeat" / "filebeat.yml")
SETUP_USERS = DEPLOY / "elasticsearch" / "setup-users.sh"


def _expand(line: dict) -> dict:
    """What Filebeat's expand_keys does to a line: dotted keys become objects.
    A key that is both a value and an object would be a mapping conflict."""
    nested: dict = {}
    for key, value in line.items():
        node = nested
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            assert isinstance(node, dict), f"{key}: {part} is already a value"
        assert leaf not in node, f"{key} is already an object"
        node[leaf] = value
    return nested


def test_it_reads_the_file_the_image_writes():
    (source,) = FILEBEAT["filebeat.inputs"]

    assert "LOG_DIR=/var/log/anomaly" in (ROOT / "Dockerfile").read_text()
    assert source["type"] == "filestream"
    assert source["paths"] == ["/var/log/anomaly/app.log*"]  # rotated files too
    assert any(".gz" in pattern for pattern in source["prospector.scanner.exclude_files"])


def test_it_decodes_json_lines_into_nested_fields():
    (source,) = FILEBEAT["filebeat.inputs"]
    (parser,) = source["parsers"]

    assert parser["ndjson"]["target"] == ""
    assert parser["ndjson"]["expand_keys"] is True
    assert parser["ndjson"]["overwrite_keys"] is True  # our @timestamp wins


def test_it_writes_lines_elasticsearch_can_map():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(ecs_formatter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        Client().get("/api/health/", HTTP_X_REQUEST_ID="pipeline")
        structlog.get_logger("detection").info(
            "model.trained", algorithm="isolation_forest", version=2
        )
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("django.request").exception("Internal Server Error")
    finally:
        root.removeHandler(handler)

    lines = [_expand(json.loads(line)) for line in stream.getvalue().splitlines()]
    request = next(line for line in lines if line.get("event", {}).get("action") == "http.request")
    assert request["http"]["request"]["id"] == "pipeline"
    assert request["http"]["response"]["status_code"] == 200
    assert request["url"]["path"] == "/api/health/"
    assert all(line["ecs"]["version"] and line["log"]["level"] for line in lines)


def test_it_writes_as_the_dedicated_user_to_the_granted_data_stream():
    output = FILEBEAT["output.elasticsearch"]
    script = SETUP_USERS.read_text()

    assert output["username"] == "filebeat_writer"
    assert output["password"] == "${FILEBEAT_WRITER_PASSWORD}"
    assert output["hosts"] == ["https://elasticsearch:9200"]
    assert output["ssl"]["verification_mode"] == "full"
    assert re.fullmatch(r"logs-anomaly-\w+", output["index"])
    assert '"roles": ["filebeat_writer"]' in script
    assert '"names": ["logs-anomaly-*"]' in script
    # Least privilege: the writer may create documents, not read or delete.
    role = script.split("/_security/role/filebeat_writer", 1)[1].split("JSON", 2)[1]
    assert "create_doc" in role and '"read"' not in role and "delete" not in role


def test_it_connects_kibana_as_kibana_system_over_verified_tls():
    kibana = load_yaml(DEPLOY / "kibana" / "kibana.yml")

    assert kibana["elasticsearch.username"] == "kibana_system"
    assert kibana["elasticsearch.password"] == "${KIBANA_SYSTEM_PASSWORD}"
    assert kibana["elasticsearch.hosts"] == ["https://elasticsearch:9200"]
    assert kibana["elasticsearch.ssl.verificationMode"] == "full"


def test_it_enables_security_and_tls_in_elasticsearch():
    config = load_yaml(DEPLOY / "elasticsearch" / "elasticsearch.yml")

    assert config["xpack.security.enabled"] is True
    assert config["xpack.security.http.ssl.enabled"] is True
    assert config["xpack.security.transport.ssl.enabled"] is True


def _placeholders(path: Path) -> set[str]:
    return {
        name
        for line in path.read_text().splitlines()
        if not line.lstrip().startswith("#")
        for name in re.findall(r"\$\{([A-Z_]+)\}", line)
    }


def test_it_gives_each_service_the_passwords_its_config_uses(compose):
    services = compose["services"]
    script_variables = set(re.findall(r'"\$\{([A-Z_]+):\?\}"', SETUP_USERS.read_text()))
    kibana_variables = _placeholders(DEPLOY / "kibana" / "kibana.yml")
    filebeat_variables = _placeholders(DEPLOY / "filebeat" / "filebeat.yml")

    assert script_variables == {
        "ELASTIC_PASSWORD",
        "KIBANA_SYSTEM_PASSWORD",
        "FILEBEAT_WRITER_PASSWORD",
        "LOGS_READER_PASSWORD",
    }
    assert script_variables <= set(services["elasticsearch"]["environment"])
    assert kibana_variables <= set(services["kibana"]["environment"])
    assert filebeat_variables <= set(services["filebeat"]["environment"])
    # Each service gets only what it needs: Filebeat never sees the superuser.
    assert "ELASTIC_PASSWORD" not in services["filebeat"]["environment"]
    assert "ELASTIC_PASSWORD" not in services["kibana"]["environment"]


def test_it_has_a_user_setup_script_bash_can_parse():
    result = subprocess.run(["bash", "-n", str(SETUP_USERS)], capture_output=True, text=True)

    assert result.returncode == 0, result.stderr
