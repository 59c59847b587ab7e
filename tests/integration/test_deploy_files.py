"""The deployment files in deploy/ are checked here, since no Docker engine or cluster runs in CI.

Kubernetes manifests are validated against the API schemas that kubernetes-validate ships
(strict: unknown fields fail); nginx's configuration is checked by nginx itself (``nginx -t``);
the compose file and the Dockerfile get structural checks. The settings every file sets must be
real ``STOREKEEPER_*`` settings and the commands real ``storekeeper`` commands: a renamed
setting or command breaks this test, not a production roll-out.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import typer
import yaml  # type: ignore[import-untyped]

from scripts.cluster import nginx_binary, render_nginx_conf
from storekeeper.cli.main import app as cli_app
from storekeeper.config import Settings
from tests.processes import free_port

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
"""The oldest Kubernetes minor still commonly run, and the newest the validator knows."""
COMPOSE_TOP_LEVEL = {"version", "name", "include", "services", "networks", "volumes", "secrets"}
COMPOSE_SERVICE_KEYS = {
    "build", "image", "command", "entrypoint", "environment", "env_file", "ports", "expose",
    "volumes", "depends_on", "healthcheck", "restart", "stop_grace_period", "deploy",
    "networks", "labels", "user", "working_dir", "secrets", "configs", "profiles",
}  # fmt: skip
DEPENDS_ON_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
NOT_SETTINGS = {"STOREKEEPER_TEST_PG_URL", "STOREKEEPER_BENCH_PG_URL"}


def _k8s_documents() -> list[tuple[str, dict[str, Any]]]:
    documents = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document and document.get("kind") != "Kustomization":
                documents.append((path.name, document))
    return documents


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def _assert_cli(args: list[str], where: str) -> None:
    """``storekeeper <args>`` names a real command and only options it has."""
    commands = getattr(typer.main.get_command(cli_app), "commands", {})
    assert args[0] in commands, f"{where}: storekeeper has no command {args[0]!r}"
    known = {opt for param in commands[args[0]].params for opt in param.opts + param.secondary_opts}
    unknown = {a for a in args[1:] if a.startswith("--")} - known
    assert not unknown, f"{where}: storekeeper {args[0]} has no option {unknown}"


# --- Kubernetes -------------------------------------------------------------------------------


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_kubernetes_manifest_matches_its_api_schema(version: str) -> None:
    documents = _k8s_documents()
    assert documents
    for name, document in documents:
        try:
            kubernetes_validate.validate(document, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{name} {document['kind']}: {exc.message}")


def test_the_validator_refuses_a_misspelt_field() -> None:
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate({**service, "spec": {"selectr": {}}}, "1.29.0", strict=True)


def test_the_manifests_hold_together() -> None:
    by_kind: dict[str, dict[str, dict[str, Any]]] = {}
    for _, document in _k8s_documents():
        by_kind.setdefault(document["kind"], {})[document["metadata"]["name"]] = document
    kinds = {"Namespace", "ConfigMap", "Secret", "Deployment", "Service", "Ingress", "Job"}
    assert kinds | {"HorizontalPodAutoscaler"} <= set(by_kind)
    assert {"storekeeper-api", "storekeeper-worker", "storekeeper-grpc"} <= set(
        by_kind["Deployment"]
    )
    workloads = [d["spec"]["template"] for d in by_kind["Deployment"].values()]
    workloads += [j["spec"]["template"] for j in by_kind["Job"].values()]
    for pod in workloads:
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        for container in pod["spec"]["containers"]:
            assert {"requests", "limits"} <= set(container["resources"]), container["name"]
            for source in container["envFrom"]:
                ref = source.get("configMapRef") or source["secretRef"]
                kind = "ConfigMap" if "configMapRef" in source else "Secret"
                assert ref["name"] in by_kind[kind], f"{container['name']}: no {kind} {ref}"
            _assert_cli(container["args"], container["name"])
    api = by_kind["Deployment"]["storekeeper-api"]["spec"]["template"]["spec"]["containers"][0]
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for service in by_kind["Service"].values():
        selector = service["spec"]["selector"].items()
        assert any(
            selector <= d["spec"]["template"]["metadata"]["labels"].items()
            for d in by_kind["Deployment"].values()
        ), f"Service {service['metadata']['name']} selects no pods"
    hpa = by_kind["HorizontalPodAutoscaler"]["storekeeper-api"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] in by_kind["Deployment"]
    for rule in by_kind["Ingress"]["storekeeper"]["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            assert path["backend"]["service"]["name"] in by_kind["Service"]


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    manifests = {p.name for p in (DEPLOY / "k8s").glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == manifests


# --- compose ----------------------------------------------------------------------------------


def test_compose_file_runs_the_distributed_deployment() -> None:
    compose = _compose()
    assert {k for k in compose if not k.startswith("x-")} <= COMPOSE_TOP_LEVEL
    services = compose["services"]
    wanted = {"postgres", "rabbitmq", "redis", "mosquitto", "migrate", "api-1", "api-2"}
    assert wanted | {"worker", "grpc", "nginx"} <= set(services)
    for name, service in services.items():
        assert set(service) <= COMPOSE_SERVICE_KEYS, (
            f"{name}: {set(service) - COMPOSE_SERVICE_KEYS}"
        )
        assert "image" in service or "build" in service, name
        assert "healthcheck" in service, f"{name} has no healthcheck"
        for target, condition in service.get("depends_on", {}).items():
            assert target in services, f"{name} depends on unknown {target}"
            assert condition["condition"] in DEPENDS_ON_CONDITIONS
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in compose["volumes"], f"{name} mounts undeclared volume {source}"
        if "build" in service:
            build = service["build"]
            assert (DEPLOY / build["context"] / build["dockerfile"]).is_file()
            _assert_cli(service["command"], name)
    assert services["migrate"]["command"] == ["migrate"]
    for name in ("api-1", "api-2", "worker", "grpc"):
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )
    assert {"api-1", "api-2"} <= set(services["nginx"]["depends_on"])


def test_compose_needs_only_variables_the_env_example_sets() -> None:
    text = (DEPLOY / "compose.yaml").read_text()
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", text))
    example = {
        line.split("=", 1)[0]
        for line in (DEPLOY / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert used <= example, f"not in deploy/.env.example: {used - example}"


# --- settings named anywhere in deploy/ --------------------------------------------------------


def test_every_storekeeper_variable_in_deploy_is_a_real_setting() -> None:
    names: dict[str, str] = {}
    for path in DEPLOY.rglob("*"):
        if path.is_file():
            for name in re.findall(r"STOREKEEPER_[A-Z0-9_]+", path.read_text(errors="replace")):
                names[name] = str(path.relative_to(DEPLOY))
    assert names
    unknown = {
        name: where
        for name, where in names.items()
        if name not in NOT_SETTINGS
        and name.removeprefix("STOREKEEPER_").lower() not in Settings.model_fields
    }
    assert not unknown, f"not Storekeeper settings: {unknown}"


# --- nginx ------------------------------------------------------------------------------------


def _nginx() -> str:
    found = nginx_binary()
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("nginx is not installed: scripts/ensure-services.sh installs it")
        pytest.skip("nginx is not installed (make services installs it)")
    return found


def test_nginx_accepts_the_deployment_config_rendered_for_loopback(tmp_path: Path) -> None:
    template = (DEPLOY / "nginx" / "nginx.conf").read_text()
    (tmp_path / "temp").mkdir()
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        render_nginx_conf(template, listen_port=18080, api_ports=[18001, 18002], directory=tmp_path)
    )
    done = subprocess.run(
        [_nginx(), "-t", "-p", str(tmp_path), "-c", str(conf)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rendered = conf.read_text()
    assert "server 127.0.0.1:18001 max_fails=1" in rendered
    assert "server 127.0.0.1:18002 max_fails=1" in rendered
    assert "api-" not in rendered


def test_nginx_config_streams_events_and_upgrades_websockets() -> None:
    text = (DEPLOY / "nginx" / "nginx.conf").read_text()
    blocks = dict(re.findall(r"location\s+(/api/v1/\w+)\s*\{(.*?)\}", text, re.DOTALL))
    assert "proxy_buffering off;" in blocks["/api/v1/events"]
    assert "proxy_set_header Upgrade $http_upgrade;" in blocks["/api/v1/live"]
    # POSTs that reached a process are never resent by nginx (orders are retried by clients).
    retries = re.findall(r"^\s*proxy_next_upstream .*$", text, re.MULTILINE)
    assert retries and not any("non_idempotent" in line for line in retries)
    assert "$upstream_addr" in text


# --- Dockerfile -------------------------------------------------------------------------------


def _stages(dockerfile: str) -> list[list[str]]:
    """Instructions per stage, continuation lines joined."""
    lines = re.sub(r"\\\n\s*", " ", dockerfile).splitlines()
    stages: list[list[str]] = []
    for line in (ln.strip() for ln in lines):
        if line.startswith("FROM "):
            stages.append([])
        if line and not line.startswith("#") and stages:
            stages[-1].append(line)
    return stages


def test_dockerfile_is_multi_stage_non_root_and_health_checked() -> None:
    stages = _stages((DEPLOY / "Dockerfile").read_text())
    assert len(stages) >= 2
    builder, final = "\n".join(stages[0]), stages[-1]
    assert "-c requirements/constraints.txt" in builder
    # The server depends on storekeeper-client, which is on no index: built from ./client.
    assert "COPY client ./client" in builder and " ./client ." in builder
    users = [line.split()[1] for line in final if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert any(ln.startswith("COPY --from=builder") for ln in final)
    assert any(ln.startswith("HEALTHCHECK") and "/healthz" in ln for ln in final)
    exposed = {p for ln in final if ln.startswith("EXPOSE ") for p in ln.split()[1:]}
    assert {"8000", "7070", "50051"} <= exposed
    assert 'ENTRYPOINT ["storekeeper"]' in final
    # Test and lint tools stay out of the image: only the runtime extras are installed.
    assert "[dev]" not in builder


def test_dockerignore_keeps_the_build_context_small() -> None:
    patterns = (DEPLOY.parent / ".dockerignore").read_text().splitlines()
    assert "*" in patterns
    assert {
        "!storekeeper/",
        "!client/",
        "!pyproject.toml",
        "!requirements/constraints.txt",
    } <= set(patterns)


# --- mosquitto ---------------------------------------------------------------------------------


def _mosquitto_conf() -> dict[str, list[str]]:
    options: dict[str, list[str]] = {}
    for line in (DEPLOY / "mosquitto" / "mosquitto.conf").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition(" ")
            options.setdefault(name, []).append(value.strip())
    return options


def test_the_broker_takes_no_anonymous_client_and_sensors_only_over_tls() -> None:
    conf = _mosquitto_conf()
    services = _compose()["services"]
    assert conf["allow_anonymous"] == ["false"]
    assert conf["per_listener_settings"] == ["false"]  # the rules hold on every listener
    assert conf["password_file"] and conf["acl_file"] == ["/mosquitto/config/acl"]
    assert conf["listener"] == ["1883", "8883"]
    assert {"certfile", "keyfile", "tls_version"} <= set(conf)
    ports = services["mosquitto"]["ports"]
    assert ports == ["8883:8883"], "only the TLS listener is published"
    assert "${MQTT_PASSWORD}@mosquitto" in _compose()["x-storekeeper-env"]["STOREKEEPER_MQTT_URL"]


_MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def _broker(tmp_path: Path, users: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    """The shipped ACL and authentication rules on a plain loopback listener (no TLS)."""
    port = free_port()
    passwords = tmp_path / "passwords"
    passwords.write_text("")
    for user, password in users.items():
        subprocess.run(["mosquitto_passwd", "-b", str(passwords), user, password], check=True)
    conf = tmp_path / "mosquitto.conf"
    shipped = _mosquitto_conf()
    conf.write_text(
        f"per_listener_settings {shipped['per_listener_settings'][0]}\n"
        f"allow_anonymous {shipped['allow_anonymous'][0]}\n"
        f"password_file {passwords}\nacl_file {DEPLOY / 'mosquitto' / 'acl'}\n"
        f"listener {port} 127.0.0.1\n" + ("user root\n" if os.geteuid() == 0 else "")
        # Started as root, mosquitto would switch to its own user, who cannot read tmp_path.
    )
    log = (tmp_path / "mosquitto.log").open("wb")
    process = subprocess.Popen([_MOSQUITTO, "-c", str(conf)], stderr=log, stdout=log)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, port
        except OSError:
            assert time.monotonic() < deadline, (tmp_path / "mosquitto.log").read_text()
            time.sleep(0.05)


def _pub(port: int, user: str | None, topic: str, message: str) -> int:
    auth = ["-u", user, "-P", f"{user}-pw"] if user else []
    command = ["mosquitto_pub", "-p", str(port), *auth, "-t", topic, "-m", message, "-q", "1"]
    return subprocess.run(command, capture_output=True, timeout=10).returncode


_SUB = ("mosquitto_sub", "-p")
_READINGS = ("-t", "storekeeper/sensors/+/readings", "-v", "-W", "4")


def test_the_broker_acl_lets_a_sensor_publish_only_its_own_readings(tmp_path: Path) -> None:
    if not shutil.which(_MOSQUITTO):
        pytest.skip("mosquitto is not installed")
    users = {"storekeeper": "storekeeper-pw", "cold-1": "cold-1-pw", "cold-2": "cold-2-pw"}
    process, port = _broker(tmp_path, users)
    try:
        sub = subprocess.Popen(
            [*_SUB, str(port), "-u", "storekeeper", "-P", "storekeeper-pw", *_READINGS],
            stdout=subprocess.PIPE,
        )
        spy = subprocess.Popen(  # a sensor trying to read the others' readings (and tokens)
            [*_SUB, str(port), "-u", "cold-2", "-P", "cold-2-pw", *_READINGS],
            stdout=subprocess.PIPE,
        )
        time.sleep(0.5)
        anonymous = _pub(port, None, "storekeeper/sensors/cold-1/readings", "anonymous")
        own = _pub(port, "cold-1", "storekeeper/sensors/cold-1/readings", "own")
        _pub(port, "cold-1", "storekeeper/sensors/cold-2/readings", "forged")
        seen, _ = sub.communicate(timeout=10)
        spied, _ = spy.communicate(timeout=10)
    finally:
        process.terminate()
        process.wait(timeout=10)

    assert anonymous != 0 and own == 0
    assert seen.decode().splitlines() == ["storekeeper/sensors/cold-1/readings own"]
    assert spied == b""


# --- forwarded addresses ----------------------------------------------------------------------


def test_nginx_sets_the_forwarded_address_instead_of_appending_to_the_clients() -> None:
    text = (DEPLOY / "nginx" / "nginx.conf").read_text()
    assert "$proxy_add_x_forwarded_for" not in text
    headers = re.findall(r"^\s*proxy_set_header X-Forwarded-For (\S+);", text, re.MULTILINE)
    assert headers == ["$remote_addr"]


def test_deploy_files_trust_only_the_proxys_address() -> None:
    every_file = "".join(p.read_text(errors="replace") for p in DEPLOY.rglob("*") if p.is_file())
    assert "FORWARDED_ALLOW_IPS" not in every_file  # uvicorn's own knob, "*" trusted anyone
    compose = _compose()
    # As pydantic-settings reads a list from the environment: JSON, then validated.
    trusted = json.loads(compose["x-storekeeper-env"]["STOREKEEPER_TRUSTED_PROXIES"])
    nginx_address = compose["services"]["nginx"]["networks"]["default"]["ipv4_address"]
    assert trusted == [nginx_address]
    configmap = next(d for name, d in _k8s_documents() if name == "configmap.yaml")
    proxies = json.loads(configmap["data"]["STOREKEEPER_TRUSTED_PROXIES"])
    assert proxies and "*" not in proxies
    for listed in (trusted, proxies):
        Settings(trusted_proxies=listed, _env_file=None)  # type: ignore[call-arg]
