"""The deploy files (deploy/Dockerfile, deploy/compose.yaml, deploy/kubernetes/) against the
Kubernetes and Compose schemas, a Dockerfile linter, and the code they deploy: the settings
the services read, the services the supervisor runs, the NATS users of deploy/nats_auth.py."""

from __future__ import annotations

import ast
import copy
import fnmatch
import importlib.resources
import json
import re
import shutil
import subprocess
import sys
import tomllib
from collections import defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest
import yaml

from deploy import cluster
from deploy.nats_auth import USERS
from deploy.supervisor import Stack

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBE = DEPLOY / "kubernetes"
# The oldest Kubernetes still commonly run, and the newest the schemas know.
KUBE_VERSIONS = ("1.30", kubernetes_validate.latest_version())
SERVICES = ("api", "scheduler", "history", "runner")


def _manifests() -> list[tuple[str, dict[str, Any]]]:
    return [
        (path.name, doc)
        for path in sorted(KUBE.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc and doc["kind"] != "Kustomization"
    ]


def _compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return doc


def _compose_schema() -> jsonschema.Draft202012Validator:
    # The compose specification's schema, as check-jsonschema vendors it (with its license).
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    schema = json.loads(vendor.joinpath("compose-spec.json").read_text())
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def _pod_specs() -> dict[str, dict[str, Any]]:
    """Each workload's pod spec, by its component label."""
    return {
        doc["metadata"]["labels"]["app.kubernetes.io/component"]: doc["spec"]["template"]["spec"]
        for _, doc in _manifests()
        if doc["kind"] in ("Deployment", "StatefulSet", "Job")
    }


def _placeholders() -> dict[str, str]:
    return defaultdict(lambda: "CHANGE-ME")


# --- the schemas -------------------------------------------------------------------------


@pytest.mark.parametrize("version", KUBE_VERSIONS)
def test_kubernetes_manifests_match_the_schemas(version: str) -> None:
    manifests = _manifests()
    kinds = {doc["kind"] for _, doc in manifests}
    assert {"StatefulSet", "Deployment", "Job", "Service", "Secret", "ConfigMap"} <= kinds
    for name, doc in manifests:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            pytest.fail(f"{name}: {doc['kind']} {doc['metadata']['name']}: {e}")


def test_the_schemas_reject_mistakes() -> None:
    """The validators do look: a misspelt field, a value of the wrong type."""
    deployment = next(d for _, d in _manifests() if d["kind"] == "Deployment")
    typo = copy.deepcopy(deployment)
    typo["spec"]["replica"] = typo["spec"].pop("replicas")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(typo, KUBE_VERSIONS[-1], strict=True)
    compose = _compose()
    compose["services"]["api"]["restart_policy"] = "always"
    assert list(_compose_schema().iter_errors(compose))


def test_compose_file_matches_the_compose_specification() -> None:
    errors = [f"{e.json_path}: {e.message}" for e in _compose_schema().iter_errors(_compose())]
    assert errors == []


def test_kustomization_applies_every_manifest_but_the_example_secrets() -> None:
    kustomization = yaml.safe_load((KUBE / "kustomization.yaml").read_text())
    manifests = {p.name for p in KUBE.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == manifests - {"secrets.example.yaml"}
    generated = [f for g in kustomization["configMapGenerator"] for f in g["files"]]
    assert generated == ["nats.conf"]


def test_dockerfile_passes_hadolint() -> None:
    hadolint = Path(sys.executable).with_name("hadolint")
    result = subprocess.run(
        [str(hadolint), "--no-color", str(DEPLOY / "Dockerfile")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- the Dockerfile and the repository ---------------------------------------------------


def _dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments), continuation lines joined."""
    text = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text())
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1]) for ln in lines]


def test_dockerfile_copies_what_the_build_context_holds() -> None:
    ignore = [
        ln.rstrip("/")
        for ln in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
        if ln and not ln.startswith("#")
    ]

    def sent(path: str) -> bool:
        """Whether docker sends `path` (the last matching rule wins)."""
        keep = True
        for rule in ignore:
            pattern = rule.removeprefix("!")
            if fnmatch.fnmatch(path, pattern) or path.startswith(pattern + "/"):
                keep = rule.startswith("!")
        return keep

    copies = [args.split() for op, args in _dockerfile() if op == "COPY"]
    sources = [src for *srcs, _ in copies if not srcs[0].startswith("--from") for src in srcs]
    assert sources
    for src in sources:
        assert (ROOT / src).exists(), src
        assert sent(src.rstrip("/")), f"{src} is left out of the build context"
    assert not sent("deploy/secrets/api.env")
    assert not sent(".venv/bin/python")


def test_dockerfile_builds_plakar_as_the_makefile_does() -> None:
    makefile = (ROOT / "Makefile").read_text()
    version = re.search(r"^PLAKAR_VERSION := (\S+)", makefile, re.M)
    assert version
    args = dict(a.split("=", 1) for op, a in _dockerfile() if op == "ARG" and "=" in a)
    assert args["PLAKAR_VERSION"] == version[1]
    build = "CGO_ENABLED=0 GOFLAGS=-modcacherw go build -trimpath -o"
    assert build in makefile
    assert any(build in a for op, a in _dockerfile() if op == "RUN")
    user = next(a for op, a in _dockerfile() if op == "USER")
    assert not user.startswith(("0", "root"))


def test_every_static_file_is_packaged() -> None:
    """The image installs the project (not editable): the web UI must be in the wheel.
    setuptools globs package data as pathlib does (`*` within one directory)."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    package = ROOT / "services"
    packaged = {
        path
        for pattern in pyproject["tool"]["setuptools"]["package-data"]["services"]
        for path in package.glob(pattern)
    }
    static = {p for p in (package / "api" / "static").rglob("*") if p.is_file()}
    assert {p for p in static if "__pycache__" not in p.parts} <= packaged


def _cli_accepts(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """plakar-cp parses `argv` as it would start it (nothing is started)."""
    from services import cli

    started: list[str] = []

    async def migrate(*_: object) -> None:
        started.append("migrate")

    monkeypatch.setattr(cli, "_migrate", migrate)

    def service(kind: str, _: object) -> int:
        started.append(kind)
        return 0

    monkeypatch.setattr(cli, "_service", service)
    assert cli.main(argv) == 0
    assert started == [argv[0]]


def _commands() -> list[list[str]]:
    """Every plakar-cp command line of the files (the image's entrypoint is plakar-cp)."""
    services = _compose()["services"].values()
    compose = [s["command"] for s in services if "command" in s and "entrypoint" not in s]
    containers = [c for spec in _pod_specs().values() for c in spec["containers"]]
    kube = [c["args"] for c in containers if c["image"] == "plakar-cp" and "command" not in c]
    cmd = next(a for op, a in _dockerfile() if op == "CMD")
    return [c for c in [*compose, *kube, json.loads(cmd)] if c[0] != "-c"]


def test_every_command_of_the_files_is_one_plakar_cp_takes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    commands = _commands()
    assert {c[0] for c in commands} == {*SERVICES, "migrate"}
    for argv in commands:
        _cli_accepts(argv, monkeypatch)
    # The NATS nodes run the nats-server of the wheel the image installs.
    assert Path(sys.executable).with_name("nats-server").exists() or shutil.which("nats-server")


# --- consistency with the code -----------------------------------------------------------


def _settings_read() -> set[str]:
    """Every PLAKAR_CP_* variable the code reads (shared/settings.py's `_env("X")` and
    the literal names elsewhere)."""
    names: set[str] = set()
    for path in [*(ROOT / "shared").rglob("*.py"), *(ROOT / "services").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "_env"
                and isinstance(node.args[0], ast.Constant)
            ):
                names.add(f"PLAKAR_CP_{node.args[0].value!s}")
            elif (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and re.fullmatch(r"PLAKAR_CP_[A-Z_]+", node.value)
            ):
                names.add(node.value)
    return names


def _variables_set() -> dict[str, set[str]]:
    """Every env variable the files give a container, with where."""
    where: dict[str, set[str]] = defaultdict(set)
    compose = _compose()
    for name, service in compose["services"].items():
        for var in service.get("environment", {}):
            where[var].add(f"compose {name}")
    for name, doc in _manifests():
        if doc["kind"] in ("ConfigMap", "Secret"):
            for var in doc.get("data", doc.get("stringData", {})):
                where[var].add(name)
    for component, spec in _pod_specs().items():
        for container in spec["containers"]:
            for env in container.get("env", []):
                where[env["name"]].add(f"kubernetes {component}")
    for kind, env in cluster.service_env("compose", _placeholders()).items():
        for var in env:
            where[var].add(f"{kind}.env")
    for op, args in _dockerfile():
        if op == "ENV":
            for var in re.findall(r"(\w+)=", args):
                where[var].add("Dockerfile")
    return where


def test_every_plakar_cp_variable_of_the_files_is_read_by_the_code() -> None:
    read = _settings_read()
    unknown = {
        var: where
        for var, where in _variables_set().items()
        if var.startswith("PLAKAR_CP_") and var not in read
    }
    assert unknown == {}


def test_every_other_variable_is_the_nats_or_postgres_servers() -> None:
    conf = (KUBE / "nats.conf").read_text()
    # Values that are env variables: `"key": $NAME`.
    referenced = set(re.findall(r'": \$(\w+)', conf))
    expected = {cluster.password_var(u) for u in cluster.nats_users()}
    assert referenced == expected | {cluster.SERVER_NAME_VAR, cluster.ROUTES_VAR}
    others = {v for v in _variables_set() if not v.startswith("PLAKAR_CP_")}
    image = {"PATH", "HOME", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"}
    image |= {"PIP_DISABLE_PIP_VERSION_CHECK", "PIP_NO_CACHE_DIR"}
    assert others == referenced | image | {"POSTGRES_PASSWORD", "GOMEMLIMIT"}


def test_nats_config_is_the_one_nats_auth_makes() -> None:
    conf = (KUBE / "nats.conf").read_text()
    assert conf == cluster.nats_config(), (
        "deploy/nats_auth.py changed: run `plakar-cp nats-config > deploy/kubernetes/nats.conf`"
    )
    users = set(re.findall(r'"user": "([\w-]+)"', conf))
    assert users == {*USERS, "runner-default", cluster.ROUTE_USER}


def test_every_service_the_supervisor_runs_is_deployed(tmp_path: Path) -> None:
    stack = Stack(data_dir=tmp_path, http_port=8470, runners=1)
    urls: dict[str, str] = defaultdict(str)
    kinds = {s.argv[-1] for s in stack._services({}, urls, defaultdict(str), "")}
    assert kinds == set(SERVICES)
    compose = _compose()["services"]
    deployed = {s["command"][0] for s in compose.values() if "command" in s}
    assert kinds | {"migrate"} <= deployed
    assert kinds | {"migrate", "nats", "postgres"} == set(_pod_specs())
    assert compose["scheduler"]["deploy"]["replicas"] == 2
    assert {f"nats-{i}" for i in (1, 2, 3)} <= set(compose)
    sets = {d["metadata"]["name"]: d for _, d in _manifests() if d["kind"] == "StatefulSet"}
    assert sets["nats"]["spec"]["replicas"] == 3
    assert sets["nats"]["spec"]["volumeClaimTemplates"]


def test_each_container_gets_its_own_credentials_only() -> None:
    """Compose's env file and Kubernetes' Secret of each kind of container are its own;
    the runners' hold no database URL."""
    compose = _compose()["services"]
    for name, service in compose.items():
        kind = name.split("-")[0]
        assert service["env_file"] == [f"secrets/{kind}.env"], name
    for component, spec in _pod_specs().items():
        refs = [
            e["secretRef"]["name"]
            for c in spec["containers"]
            for e in c.get("envFrom", [])
            if "secretRef" in e
        ]
        keys = [
            e["valueFrom"]["secretKeyRef"]["name"]
            for c in spec["containers"]
            for e in c.get("env", [])
            if "secretKeyRef" in e.get("valueFrom", {})
        ]
        assert [*refs, *keys] == [f"plakar-cp-{component}"], component
    for platform in cluster.PLATFORMS:
        env = cluster.service_env(platform, _placeholders())
        assert set(env["runner"]) == {"PLAKAR_CP_NATS_URL"}
        # The NATS user and PostgreSQL role the supervisor gives each kind of service.
        for kind in SERVICES:
            seeds = env[kind]["PLAKAR_CP_NATS_URL"].split(",")
            # Runners: their group's own user, not the all-groups `runner`.
            user = "runner-default" if kind == "runner" else kind
            assert {urlsplit(u).username for u in seeds} == {user}
            assert len(seeds) == 3
            if kind != "runner":
                role = urlsplit(env[kind]["PLAKAR_CP_DATABASE_URL"]).username
                assert role == f"plakar_{kind}"


def test_example_secrets_are_the_generators_with_placeholders() -> None:
    secrets = {d["metadata"]["name"]: d for n, d in _manifests() if n == "secrets.example.yaml"}
    expected = cluster.service_env("kubernetes", _placeholders())
    assert set(secrets) == {f"plakar-cp-{k}" for k in expected}
    for kind, env in expected.items():
        assert secrets[f"plakar-cp-{kind}"]["stringData"] == env


def test_kubernetes_workloads_run_as_non_root_with_limits() -> None:
    for component, spec in _pod_specs().items():
        assert spec["securityContext"]["runAsNonRoot"] is True, component
        for c in spec["containers"]:
            assert c["securityContext"]["allowPrivilegeEscalation"] is False, component
            assert c["securityContext"]["capabilities"]["drop"] == ["ALL"], component
            assert {"cpu", "memory"} <= set(c["resources"]["limits"]), component
            assert {"cpu", "memory"} <= set(c["resources"]["requests"]), component
            if component != "postgres":
                assert c["securityContext"]["readOnlyRootFilesystem"] is True, component


def test_probes_ask_the_health_endpoints() -> None:
    specs = _pod_specs()
    api = specs["api"]["containers"][0]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert api[probe]["httpGet"]["path"] == "/api/v1/health/live"
    nats = specs["nats"]["containers"][0]
    assert nats["livenessProbe"]["httpGet"]["path"].startswith("/healthz")
    health = _compose()["services"]["api"]["healthcheck"]["test"]
    assert any("/api/v1/health'" in part for part in health)


def test_secrets_generator_writes_private_files(tmp_path: Path) -> None:
    paths = cluster.write_env_files(tmp_path / "secrets", "compose")
    assert [p.name for p in paths] == [f"{k}.env" for k in cluster.ENV_FILES]
    for path in paths:
        assert path.stat().st_mode & 0o077 == 0
    api = dict(ln.split("=", 1) for ln in (tmp_path / "secrets/api.env").read_text().splitlines())
    nats = dict(ln.split("=", 1) for ln in (tmp_path / "secrets/nats.env").read_text().splitlines())
    assert f"api:{nats['NATS_PASSWORD_API']}@nats-1:4222" in api["PLAKAR_CP_NATS_URL"]
    with pytest.raises(FileExistsError):
        cluster.write_env_files(tmp_path / "secrets", "compose")


def test_the_grafana_dashboard_names_only_metrics_the_api_serves() -> None:
    from services.api.metrics import Figures, Histogram, families

    empty = Figures(
        jobs=[],
        durations={},
        lateness=Histogram([], [], 0.0),
        active=[],
        groups=[],
        tasks=[],
        freshness=[],
        deliveries=[],
    )
    served: set[str] = set()
    for family in families(empty):
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}
        served |= {family.name + s for s in suffixes.get(family.type, [""])}
    board = json.loads((DEPLOY / "grafana" / "plakar-cp.json").read_text())
    panels = board["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    named: set[str] = set()
    for p in panels:
        assert p["targets"], p["title"]
        assert p["gridPos"]["x"] + p["gridPos"]["w"] <= 24, p["title"]
        for t in p["targets"]:
            named |= set(re.findall(r"\bplakar_cp_[a-z_]+", t["expr"]))
    assert named <= served, sorted(named - served)
    # Every metric has a panel.
    assert {n.removesuffix("_bucket").removesuffix("_total") for n in named} >= {
        f.name for f in families(empty)
    }
