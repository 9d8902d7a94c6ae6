"""Environments: CLI and SDK against a real server, resolution, conda parsing, real uv builds."""

from __future__ import annotations

import io
import os
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from openaml.entities import Environment
from openaml.environments import (
    READY_MARKER,
    ensure_environment,
    env_status,
    parse_conda,
    read_build_context,
    resolve_spec,
    server_python,
    server_versions,
    spec_from_dict,
)
from openaml.errors import ConflictError, EnvironmentBuildError, NotFoundError, ValidationError

CONDA_SIX = """\
name: tiny
channels: [conda-forge]
dependencies:
  - python={py}
  - pip
  - pip:
    - six
"""


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _write_env_yaml(folder: Path, name: str, *, extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "conda.yml").write_text(CONDA_SIX.format(py=server_python()))
    f = folder / "env.yml"
    f.write_text(f"$schema: https://azuremlschemas.azureedge.net/latest/environment.schema.json\n"
                 f"name: {name}\nimage: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest\n"
                 f"conda_file: conda.yml\n{extra}")
    return f


# ---------------------------------------------------------------------------------------- CLI
def test_cli_create_list_show_archive_restore(cli, ml_client, tmp_path: Path) -> None:
    name = _name("cli-env")
    yml = _write_env_yaml(tmp_path / "envdef", name, extra="description: first\n")
    # run from another folder: conda.yml is found next to the YAML
    first = cli("environment", "create", "--file", str(yml), cwd=tmp_path, check=True).json()
    assert first["version"] == "1"
    assert first["conda_file"]["dependencies"][2] == {"pip": ["six"]}  # inlined, parsed
    assert first["spec_hash"] and first["build_status"] in ("built", "not built")
    second = cli("environment", "create", "-f", str(yml), "--set", "description=second", cwd=tmp_path,
                 check=True).json()
    assert second["version"] == "2" and second["description"] == "second"

    versions = cli("environment", "list", "-n", name, "-o", "json", check=True).json()
    assert [v["version"] for v in versions] == ["2", "1"]
    assert cli("environment", "show", "-n", name, "-v", "1", check=True).json()["description"] == "first"

    cli("environment", "archive", "-n", name, "-v", "2", check=True)
    assert ml_client.environments.get(name, label="latest").version == "1"
    cli("environment", "restore", "-n", name, "-v", "2", check=True)
    assert cli("environment", "show", "-n", name, "-l", "latest", check=True).json()["version"] == "2"
    with pytest.raises(NotFoundError, match="versions: 1, 2"):
        ml_client.environments.get(name, version="7")


def test_cli_bad_input_names_file_line_field_and_path(cli, ml_client, tmp_path: Path) -> None:
    f = tmp_path / "bad.yml"
    f.write_text("name: bad-env\nimage: python\nconda_fil: conda.yml\n")
    r = cli("environment", "create", "--file", str(f))
    assert r.returncode == 1
    err = " ".join(r.stderr.split())
    assert "bad.yml, line 3" in err and "conda_fil" in err and "unknown field" in err

    name = _name("nocondafile")
    f = tmp_path / "env.yml"
    f.write_text(f"name: {name}\nimage: python\nconda_file: envs/conda.yaml\n")
    r = cli("environment", "create", "--file", str(f), cwd=tmp_path)
    assert r.returncode == 1
    err = " ".join(r.stderr.split())
    assert "envs/conda.yaml" in err and "not found" in err
    with pytest.raises(NotFoundError):  # nothing was created
        ml_client.environments.get(name)


def test_cli_build_prewarms_and_show_reports_status(cli, ml_client, server, tmp_path: Path) -> None:
    name = _name("prewarm")
    (tmp_path / "conda.yml").write_text(CONDA_SIX.format(py=server_python()))
    created = ml_client.environments.create_or_update(
        Environment(name=name, image="python", conda_file=str(tmp_path / "conda.yml")))
    built = cli("environment", "build", "-n", name, "-v", "1", check=True).json()
    assert built["status"] == "built" and built["kind"] == "venv"
    assert built["spec_hash"] == created.spec_hash
    root = server.path / "envs" / built["spec_hash"]
    assert (root / READY_MARKER).is_file() and (root / "build.log").is_file()
    assert ml_client.environments.get(name).build_status == "built"


# ---------------------------------------------------------------------------------------- SDK
def test_sdk_create_get_list_archive_restore(ml_client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "conda.yml").write_text(CONDA_SIX.format(py=server_python()))
    name = _name("sdk-env")
    env = Environment(name=name, image="mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04",
                      conda_file="conda.yml", description="from the sdk", tags={"team": "a"})
    made = ml_client.environments.create_or_update(env)
    assert (made.name, made.version) == (name, "1")
    assert isinstance(made.conda_file, dict) and made.tags == {"team": "a"}
    again = ml_client.create_or_update(env)  # MLClient.create_or_update dispatches on the type
    assert again.version == "2"
    with pytest.raises(ConflictError, match="immutable"):
        ml_client.environments.create_or_update(Environment(name=name, version="1", image="python"))

    assert ml_client.environments.get(name, version="1").description == "from the sdk"
    assert ml_client.environments.get(name, label="latest").version == "2"
    assert [e.version for e in ml_client.environments.list(name=name)] == ["2", "1"]
    assert name in {e.name for e in ml_client.environments.list()}

    ml_client.environments.archive(name)
    assert name not in {e.name for e in ml_client.environments.list()}
    assert {e.version for e in ml_client.environments.list(name=name, list_view_type="ArchivedOnly")} == {"1", "2"}
    ml_client.environments.restore(name)
    assert ml_client.environments.get(name, label="latest").version == "2"


def test_sdk_rejects_bad_environments_and_loses_nothing(ml_client, tmp_path: Path) -> None:
    name = _name("sdk-bad")
    with pytest.raises(ValidationError, match="not-there.yml"):
        ml_client.environments.create_or_update(Environment(name=name, image="python", conda_file="not-there.yml"))
    with pytest.raises(NotFoundError):
        ml_client.environments.get(name)
    with pytest.raises(ValidationError, match="reserved"):
        ml_client.environments.create_or_update(Environment(name="AzureML-mine", image="python"))
    with pytest.raises(ValidationError, match="either 'image' or 'build'"):
        ml_client.environments.create_or_update(Environment(name=name, image="python", build={"path": "x"}))
    with pytest.raises(ValidationError, match="at least one"):
        ml_client.environments.create_or_update(Environment(name=name))
    with pytest.raises(ValidationError, match="dependencies.0"):
        ml_client.environments.create_or_update(
            Environment(name=name, conda_file={"dependencies": [{"npm": ["x"]}]}))


def test_sdk_build_context_is_uploaded_and_its_requirements_used(ml_client, tmp_path: Path) -> None:
    ctx = tmp_path / "docker-context"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM python:3.11-slim\nCOPY requirements.txt .\nRUN pip install -r requirements.txt\n")
    (ctx / "requirements.txt").write_text("six\n")
    name = _name("ctx-env")
    made = ml_client.environments.create_or_update(Environment(name=name, build={"path": str(ctx)}))
    assert made.build is not None and made.build.path.startswith("azureml://codes/")
    resolved = ml_client.environments.resolve(f"azureml:{name}:1")
    assert resolved["kind"] == "venv" and resolved["pip"] == ["six"]
    assert Path(resolved["build"]["local_path"]).joinpath("requirements.txt").is_file()

    bare = tmp_path / "bare-context"
    bare.mkdir()
    (bare / "Dockerfile").write_text("FROM ubuntu:22.04\nRUN apt-get update && apt-get install -y curl\n")
    made = ml_client.environments.create_or_update(Environment(name=_name("ctx-bare"), build={"path": str(bare)}))
    resolved = ml_client.environments.resolve(f"{made.name}@latest")
    assert resolved["kind"] == "base"
    assert any("running in the default environment instead" in w for w in resolved["warnings"])


def test_resolve_for_job_forms_and_errors(ml_client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = _name("job-env")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "conda.yml").write_text(CONDA_SIX.format(py=server_python()))
    ml_client.environments.create_or_update(Environment(name=name, image="python", conda_file="conda.yml"))
    for ref in (f"azureml:{name}:1", f"{name}:1", f"{name}@latest", f"azureml:{name}@latest"):
        r = ml_client.environments.resolve(ref)
        assert (r["name"], r["version"], r["kind"]) == (name, "1", "venv"), ref
        assert r["conda_file"]["name"] == "tiny" and len(r["spec_hash"]) == 64
        # the job runner rebuilds the EnvSpec from this dict without the server
        assert spec_from_dict(r).spec_hash == resolve_spec(r).spec_hash == r["spec_hash"]
    with pytest.raises(NotFoundError, match="versions: 1"):
        ml_client.environments.resolve(f"azureml:{name}:5")
    with pytest.raises(NotFoundError, match="not found"):
        ml_client.environments.resolve("azureml:no-such-env-anywhere:1")
    with pytest.raises(NotFoundError, match="AzureML-sklearn-1.5"):
        ml_client.environments.resolve("azureml:AzureML-no-such-curated@latest")
    curated = ml_client.environments.resolve("azureml://registries/azureml/environments/sklearn-1.5/labels/latest")
    assert curated["kind"] == "venv" and curated["curated"] == "AzureML-sklearn-1.5"
    assert ml_client.environments.resolve(None)["kind"] == "base"
    # the jobs SDK inlines a job's environment relative to the job YAML's folder
    sub = tmp_path / "jobdir"
    sub.mkdir()
    (sub / "env-conda.yml").write_text(CONDA_SIX.format(py=server_python()))
    payload = ml_client.environments._inline(Environment(image="python", conda_file="env-conda.yml"), sub)
    assert payload["conda_file"]["name"] == "tiny"
    inline = ml_client.environments.resolve(Environment(image="python:3.11", conda_file="conda.yml"))
    assert inline["kind"] == "venv" and inline["pip"] == ["six"]
    image_only = ml_client.environments.resolve({"image": "library/python:latest"})
    assert image_only["kind"] == "base" and "needs a container engine" in image_only["warnings"][0]


# ---------------------------------------------------------------------------------------- resolution
@pytest.mark.parametrize("ref", [
    "AzureML-sklearn-1.5@latest",
    "azureml:AzureML-sklearn-1.5@latest",
    "azureml://registries/azureml/environments/sklearn-1.5/labels/latest",
    "azureml://registries/azureml/environments/sklearn-1.5/versions/12",
    "azureml:AzureML-sklearn-0.24-ubuntu18.04-py37-cpu:21",
    "azureml:AzureML-lightgbm-3.3@latest",
    "azureml:AzureML-tensorflow-2.16-cuda12@latest",
    "azureml:AzureML-acpt-pytorch-2.8-cuda12.6@latest",
    "azureml://registries/azureml/environments/acpt-pytorch-2.2-cuda12.1/labels/latest",
    "AzureML-minimal-ubuntu22.04-py39-cpu-inference@latest",
])
def test_curated_names_resolve_to_their_own_virtualenv_from_azure_package_lists(ref: str) -> None:
    # issue 9 item 2: a curated environment is built like any other, never the server's interpreter
    spec = resolve_spec(ref)
    assert spec.kind == "venv" and spec.pip and "(curated)" in spec.source
    assert any(r.startswith("mlflow==") for r in spec.pip) or "minimal" in ref
    assert not any(r.startswith("azureml-") and r != "azureml-inference-server-http" for r in spec.pip)


def test_curated_sklearn_names_share_one_spec_hash_and_pin_mlflow_2() -> None:
    hashes = {resolve_spec(r).spec_hash for r in ("AzureML-sklearn-1.5@latest", "azureml:AzureML-sklearn-1.5@latest",
                                                    "azureml://registries/azureml/environments/sklearn-1.5/labels/latest")}
    assert len(hashes) == 1
    spec = resolve_spec("AzureML-sklearn-1.5@latest")
    assert spec.python == "3.10" and "scikit-learn~=1.5.0" in spec.pip and "mlflow==2.17.2" in spec.pip


def test_unknown_curated_lists_known_names_and_workspace_refs_need_the_server() -> None:
    with pytest.raises(NotFoundError) as exc:
        resolve_spec("azureml:AzureML-Foo-9@latest")
    assert "AzureML-sklearn-1.5" in exc.value.message and "AzureML-lightgbm-3.3" in exc.value.message
    with pytest.raises(ValidationError, match="resolve_for_job"):
        resolve_spec("my-env:1")
    with pytest.raises(ValidationError, match="unknown field"):
        resolve_spec({"image": "python", "dockerfile": "x"})


def test_image_only_runs_in_base_with_the_documented_warning() -> None:
    spec = resolve_spec({"image": "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest"})
    assert spec.kind == "base" and spec.image
    assert spec.warnings[0].startswith("image mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest "
                                       "needs a container engine")
    assert spec.warnings[0].endswith("running in the default environment instead")
    assert resolve_spec(None).kind == "base" and resolve_spec(None).warnings == []


def test_conda_parsing_maps_packages_and_warns() -> None:
    conda = {
        "name": "book", "channels": ["conda-forge", "pytorch"],
        "dependencies": [
            "python=3.8", "pip=21.2.4", "numpy=1.21.2", "conda-forge::pandas>=1.1,<1.2", "pytorch::pytorch",
            "mkl", "cudatoolkit=11.3", "scikit-learn 0.24.2 py38_0",
            {"pip": ["azureml-defaults==1.38.0", "azureml-mlflow==1.38.0", "mlflow== 1.23.1",
                     "inference-schema[numpy-support]==1.3.0  # comment", "mltable"]},
        ],
    }
    reqs, python, warnings = parse_conda(conda)
    assert python == "3.8"
    assert reqs == ["numpy==1.21.2.*", "pandas>=1.1,<1.2", "torch", "scikit-learn==0.24.2",
                    "azureml-defaults==1.38.0", "azureml-mlflow==1.38.0", "mlflow==1.23.1",
                    "inference-schema[numpy-support]==1.3.0", "mltable"]
    assert any("'mkl'" in w for w in warnings) and any("cudatoolkit" in w for w in warnings)

    spec = resolve_spec({"conda_file": conda})
    assert spec.kind == "venv" and spec.python == "3.8"
    have = server_versions()
    # Azure-only packages: azureml-mlflow -> mlflow, SDK v1 dropped
    assert "azureml-defaults==1.38.0" not in spec.pip and not any(r.startswith("azureml-") for r in spec.pip)
    assert any("azureml-defaults" in w and "not installed" in w for w in spec.warnings)
    assert any("azureml-mlflow" in w and "mlflow" in w for w in spec.warnings)
    # issue 9 item 1: pins are kept exactly as written, whatever Python is asked for; nothing from the server
    assert "numpy==1.21.2.*" in spec.pip and "mlflow==1.23.1" in spec.pip and spec.constraints == []
    assert "mlflow" not in spec.pip and all(r.split("==")[0] != "numpy" or "1.21.2" in r for r in spec.pip)
    assert have["numpy"] not in " ".join(spec.pip)
    # Python 3.8 when this machine has it (pyenv), else the nearest with a warning naming asked and used
    assert spec.python_used and (spec.python_used.startswith("3.8.") or any(
        "python 3.8 was asked for" in w and spec.python_used in w for w in spec.warnings))
    assert "inference-schema[numpy-support]==1.3.0" in spec.pip


def test_conda_same_python_keeps_pins_and_adds_no_server_constraints(tmp_path: Path) -> None:
    (tmp_path / "conda.yaml").write_text(
        f"dependencies:\n  - python={server_python()}\n  - scikit-learn\n  - pip:\n    - six==1.16.0\n")
    spec = resolve_spec({"image": "python", "conda_file": "conda.yaml"}, base_path=tmp_path)
    assert spec.pip == ["scikit-learn", "six==1.16.0"]
    assert spec.constraints == [] and spec.python_used and spec.python_used.startswith(server_python())
    assert not any("python" in w.lower() and "asked" in w for w in spec.warnings)
    # inline content and the file give the same hash
    content = (tmp_path / "conda.yaml").read_text()
    assert resolve_spec({"image": "python", "conda_file": content}).spec_hash == spec.spec_hash
    with pytest.raises(ValidationError, match="missing.yaml"):
        resolve_spec({"conda_file": "missing.yaml"}, base_path=tmp_path)


def test_build_context_dockerfile_pip_lines(tmp_path: Path) -> None:
    (tmp_path / "extra.txt").write_text("requests>=2\n")
    (tmp_path / "Dockerfile").write_text(
        "FROM python:3.10-slim\nRUN apt-get update && \\\n    pip install --no-cache-dir six 'attrs>=23' "
        "&& pip install -r extra.txt\n")
    reqs, python, used, warnings = read_build_context(tmp_path)
    assert reqs == ["six", "attrs>=23", "requests>=2"] and python == "3.10"
    assert used and "Dockerfile" in used and any("apt-get" in w for w in warnings)


# ---------------------------------------------------------------------------------------- uv builds
def test_uv_build_once_concurrently_then_reuse(tmp_path: Path) -> None:
    spec = resolve_spec({"pip": ["six"]})
    assert spec.kind == "venv"
    envs = tmp_path / "envs"
    logs = [io.StringIO(), io.StringIO()]
    results: list[Path] = []
    threads = [threading.Thread(target=lambda i=i: results.append(ensure_environment(spec, envs, logs[i])))
               for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    text = logs[0].getvalue() + logs[1].getvalue()
    assert text.count("building") == 1 and "reusing" in text  # built once, under the lock
    assert results[0] == results[1] == envs / spec.spec_hash / "bin"
    root = envs / spec.spec_hash
    assert (root / READY_MARKER).is_file() and env_status(spec, envs) == "built"
    out = subprocess.run([str(results[0] / "python"), "-c", "import six, sys; print(sys.prefix)"],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert Path(out) == root

    log = root / "build.log"
    before = (log.stat().st_mtime_ns, log.read_text())
    job_log = tmp_path / "job.log"
    t0 = time.monotonic()
    assert ensure_environment(spec_from_dict(spec.to_dict()), envs, job_log) == results[0]
    assert time.monotonic() - t0 < 0.5
    assert (log.stat().st_mtime_ns, log.read_text()) == before  # not rebuilt
    assert "reusing" in job_log.read_text()


def test_failed_build_raises_with_uv_output_and_leaves_no_ready_env(tmp_path: Path) -> None:
    spec = resolve_spec({"conda_file": {"dependencies": [{"pip": ["openaml-no-such-package-xyz"]}]}})
    envs = tmp_path / "envs"
    with pytest.raises(EnvironmentBuildError) as exc:
        ensure_environment(spec, envs, tmp_path / "job.log")
    assert "openaml-no-such-package-xyz" in exc.value.message and "build.log" in exc.value.message
    root = envs / spec.spec_hash
    assert not (root / READY_MARKER).exists() and env_status(spec, envs) == "not built"
    assert [p.name for p in root.iterdir()] == ["build.log"]  # the log stays for diagnosis
    assert "build failed" in (tmp_path / "job.log").read_text()
