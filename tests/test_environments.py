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
    assert resolved["kind"] == "venv" and resolved["pip"] == ["six", "setuptools<81"]
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
    assert inline["kind"] == "venv" and inline["pip"] == ["six", "setuptools<81"]
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


def test_curated_sklearn_names_share_one_spec_hash_and_pin_mlflow_3() -> None:
    hashes = {resolve_spec(r).spec_hash for r in ("AzureML-sklearn-1.5@latest", "azureml:AzureML-sklearn-1.5@latest",
                                                    "azureml://registries/azureml/environments/sklearn-1.5/labels/latest")}
    assert len(hashes) == 1
    spec = resolve_spec("AzureML-sklearn-1.5@latest")
    assert spec.python == "3.10" and "scikit-learn~=1.5.0" in spec.pip and "mlflow==3.17.2" in spec.pip


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
    assert spec.pip == ["scikit-learn", "six==1.16.0", "setuptools<81"]
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
    assert time.monotonic() - t0 < 20  # a generous bound: the checks below prove nothing was rebuilt
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


# ---------------------------------------------------------------------------------------- issue 9: exact envs
ACCEPTANCE_CONDA = """\
name: pinned
channels: [conda-forge]
dependencies:
  - python=3.10
  - pip
  - pip:
    - scikit-learn==1.1.3
    - mlflow==2.0.1
    - pandas==1.5.3
    - numpy==1.23.5
"""
TERMINAL = ("Completed", "Failed", "Canceled")


def _run_job(ml_client, ws: Path, job, timeout: float = 600):  # type: ignore[no-untyped-def]
    made = ml_client.jobs.create_or_update(job)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = ml_client.jobs.get(made.name)
        if got.status in TERMINAL:
            log = ws / "jobs" / made.name / "user_logs" / "std_log.txt"
            return got, (log.read_text(encoding="utf-8") if log.exists() else "")
        time.sleep(0.5)
    raise AssertionError(f"job {made.name} did not finish in {timeout} s")


def _server_freeze() -> list[str]:
    from importlib.metadata import distributions

    return sorted(f"{d.metadata['Name']}=={d.version}" for d in distributions())


@pytest.mark.slow
def test_job_gets_every_pin_exactly_and_show_gives_the_lock(ml_client, cli, server, tmp_path: Path) -> None:
    # issue 9 item 1 (acceptance fidelity.sh, first part): pins older than the server's are installed as written
    from openaml import command

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "v.py").write_text(
        "import sys, sklearn, mlflow, pandas\nprint('VERSIONS', sklearn.__version__, mlflow.__version__, "
        "pandas.__version__)\nprint('PY', sys.version.split()[0])\n")
    (tmp_path / "env.yml").write_text(ACCEPTANCE_CONDA)
    env = Environment(image="mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest",
                      conda_file=str(tmp_path / "env.yml"))
    job, log = _run_job(ml_client, server.path, command(code=str(tmp_path / "src"), command="python v.py",
                                                        environment=env))
    assert job.status == "Completed", log
    assert "VERSIONS 1.1.3 2.0.1 1.5.3" in log
    py = log.split("PY ", 1)[1].split()[0]
    if py.startswith("3.10."):  # this machine has Python 3.10 (pyenv): nothing deviates
        assert not any("python 3.10 was asked for" in w for w in ml_client.jobs.get_raw(job.name).get("warnings", []))
    else:  # the nearest Python: said in the job's warnings and at the top of its log
        assert any("python 3.10 was asked for" in w for w in ml_client.jobs.get_raw(job.name)["warnings"])
        assert log.splitlines()[0].startswith("[openaml] environment: ")
    # the same spec registered: `environment show` gives the Python used and the resolved lock
    name = _name("pinned")
    yml = tmp_path / "reg.yml"
    yml.write_text(f"name: {name}\nimage: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest\n"
                   "conda_file: env.yml\n")
    cli("environment", "create", "--file", str(yml), check=True)
    shown = cli("environment", "show", "--name", name, "--version", "1", "-o", "json", check=True).json()
    assert shown["build_status"] == "built" and shown["python"] == py and shown["python_asked"] == "3.10"
    for pin in ("scikit-learn==1.1.3", "mlflow==2.0.1", "pandas==1.5.3", "numpy==1.23.5"):
        assert pin in shown["lock"]


def test_pins_built_against_numpy_1_bound_an_unpinned_numpy() -> None:
    # review of issue 9: scikit-learn==1.1.3 + pandas==1.5.3 with numpy unpinned resolved numpy 2 and
    # `import sklearn` failed ("numpy.dtype size changed"); conda-forge's repodata gives numpy<2
    from openaml.environments._build import numpy_abi_constraints

    assert numpy_abi_constraints(["scikit-learn==1.1.3", "pandas==1.5.3"]) == ["numpy<2"]
    assert numpy_abi_constraints(["pandas<2.0", "six"]) == ["numpy<2"]
    assert numpy_abi_constraints(["scikit-learn==1.1.3", "numpy==1.23.5"]) == []  # the user's numpy pin rules
    assert numpy_abi_constraints(["scikit-learn==1.5.2", "pandas>=1.5", "scipy"]) == []
    assert numpy_abi_constraints(["not a requirement !!", "torch==2.13.0"]) == []


@pytest.mark.slow
def test_old_pins_without_a_numpy_pin_get_a_numpy_they_import_with(ml_client, server, tmp_path: Path) -> None:
    from openaml import command

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "v.py").write_text("import numpy, sklearn, pandas\nprint('VERSIONS', sklearn.__version__, "
                                           "pandas.__version__, numpy.__version__)\n")
    (tmp_path / "env.yml").write_text("name: book\ndependencies:\n  - python=3.10\n  - pip\n  - pip:\n"
                                      "    - scikit-learn==1.1.3\n    - pandas==1.5.3\n")
    env = Environment(image="mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest",
                      conda_file=str(tmp_path / "env.yml"))
    job, log = _run_job(ml_client, server.path, command(code=str(tmp_path / "src"), command="python v.py",
                                                        environment=env))
    assert job.status == "Completed", log
    versions = log.split("VERSIONS ", 1)[1].split()
    assert versions[:2] == ["1.1.3", "1.5.3"] and versions[2].startswith("1.")


def test_unobtainable_pins_fail_naming_package_version_python_and_cache_nothing(tmp_path: Path) -> None:
    # mltable 1.0.0 has no build for the server's Python (its azureml-dataprep-rslex stops at cp310): with
    # the Python asked for available, nothing is relaxed and the build fails with uv's resolver message
    conda = {"dependencies": [f"python={server_python()}", {"pip": ["mltable==1.0.0"]}]}
    spec = resolve_spec({"conda_file": conda})
    assert spec.python_exact and spec.pip == ["mltable==1.0.0", "setuptools<81"]
    envs = tmp_path / "envs"
    with pytest.raises(EnvironmentBuildError) as exc:
        ensure_environment(spec, envs)
    msg = exc.value.message
    assert "mltable==1.0.0" in msg and f"Python {server_python()}" in msg and "cannot be installed" in msg
    assert env_status(spec, envs) == "not built" and not (envs / spec.spec_hash / READY_MARKER).exists()
    assert [p.name for p in (envs / spec.spec_hash).iterdir()] == ["build.log"]


def test_build_killed_halfway_is_never_reused(tmp_path: Path) -> None:
    import socket
    import sys

    # an index that accepts connections and never answers: uv waits, and is killed mid-build
    hang = socket.socket()
    hang.bind(("127.0.0.1", 0))
    hang.listen(8)
    port = hang.getsockname()[1]
    envs = tmp_path / "envs"
    spec = resolve_spec({"pip": [f"--index-url http://127.0.0.1:{port}/simple", "six==1.16.0"]})
    script = ("import sys, json; from openaml.environments import ensure_environment, spec_from_dict; "
              "ensure_environment(spec_from_dict(json.loads(sys.argv[1])), sys.argv[2])")
    import json

    proc = subprocess.Popen([sys.executable, "-c", script, json.dumps(spec.to_dict()), str(envs)],
                            start_new_session=True)
    root = envs / spec.spec_hash
    deadline = time.monotonic() + 60
    while not (root / "build.log").exists() or "uv pip install" not in (root / "build.log").read_text():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.1)
    time.sleep(0.5)
    os.killpg(proc.pid, 9)
    proc.wait()
    hang.close()
    assert env_status(spec, envs) == "not built" and not (root / READY_MARKER).exists()
    # a later job does not reuse the half-built folder: it builds again (and here fails: the index is gone)
    log = io.StringIO()
    with pytest.raises(EnvironmentBuildError):
        ensure_environment(spec, envs, log, timeout=60)
    assert "building" in log.getvalue() and "reusing" not in log.getvalue()


@pytest.mark.slow
def test_relaxed_pin_only_when_python_cannot_be_had_and_strict_refuses(tmp_path: Path) -> None:
    from openaml.environments import EnvOptions, env_info

    only = "/usr/bin/python3.11"
    if not Path(only).exists():
        pytest.skip("needs /usr/bin/python3.11")
    conda = {"dependencies": ["python=3.10", {"pip": ["mltable==1.0.0", "six==1.16.0"]}]}
    opts = EnvOptions(interpreters=(only,))
    spec = resolve_spec({"conda_file": conda}, options=opts)
    assert spec.python == "3.10" and spec.python_used.startswith("3.11") and not spec.python_exact
    assert any("python 3.10 was asked for" in w and "3.11" in w for w in spec.warnings)
    envs = tmp_path / "envs"
    ensure_environment(spec, envs)
    info = env_info(spec, envs)
    assert info is not None
    assert "six==1.16.0" in info["lock"]  # a pin that installs stays exact
    mlt = [p for p in info["lock"] if p.startswith("mltable==")]
    assert mlt and mlt[0] != "mltable==1.0.0"
    relaxed = [d for d in info["deviations"] if d.startswith("mltable==1.0.0 has no build for Python 3.11")]
    assert relaxed and mlt[0] in relaxed[0]
    # strict: the Python deviation alone fails the build, and nothing is cached
    strict = resolve_spec({"conda_file": conda}, options=EnvOptions(strict=True, interpreters=(only,)))
    assert strict.spec_hash != spec.spec_hash
    with pytest.raises(EnvironmentBuildError, match="strict"):
        ensure_environment(strict, envs)
    assert env_status(strict, envs) == "not built"


# ---------------------------------------------------------------------------------------- issue 9: isolation
SKLEARN_PIPELINE = """\
import sys, mlflow, mlflow.sklearn, pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
print("PREFIX", sys.prefix)
X = pd.DataFrame({"sex": ["m", "f", "f", "m"] * 5, "age": [22.0, 38.0, 26.0, 35.0] * 5})
y = [0, 1, 1, 0] * 5
pipe = Pipeline([("prep", ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), ["sex"]),
                                            ("num", StandardScaler(), ["age"])])),
                 ("clf", LogisticRegression())]).fit(X, y)
with mlflow.start_run() as run:
    mlflow.sklearn.log_model(pipe, "model")
back = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
print("PRED", list(back.predict(X.head(2))))
print("MLFLOW", mlflow.__version__)
"""


@pytest.mark.slow
def test_curated_and_default_jobs_never_touch_the_server_or_the_next_job(ml_client, server, tmp_path: Path) -> None:
    # issue 9 item 2: a curated environment is its own virtualenv; a job's `pip install` lands in the job's
    # own layer: the server's packages and the next job of the same environment are unchanged
    import sys

    from openaml import command

    src = tmp_path / "src"
    src.mkdir()
    (src / "train.py").write_text(SKLEARN_PIPELINE)
    before = _server_freeze()
    job, log = _run_job(ml_client, server.path, command(
        code=str(src), environment="azureml:AzureML-sklearn-1.5@latest",
        command="python train.py && pip install --quiet six==1.15.0 && "
                "python -c 'import six; print(\"SIX\", six.__version__)' && which pip"))
    assert job.status == "Completed", log
    prefix = log.split("PREFIX ", 1)[1].split()[0]
    assert prefix != sys.prefix and Path(prefix).resolve() != Path(sys.prefix).resolve()
    assert "PRED [0, 1]" in log and "MLFLOW 3." in log  # the book's plain log_model of a pipeline loads back (MLflow 3)
    assert "SIX 1.15.0" in log  # the job may pip install, into its own layer
    assert _server_freeze() == before

    # the shared environment's own pip, called directly, cannot change it either (a read-only mount where
    # the machine allows one: root or user namespaces)
    tamper = ("SH=$(python -c 'import os, six; d = os.path.dirname; print(d(d(d(d(six.__file__)))))') && "
              "$SH/bin/python -m pip install --quiet six==1.15.0 && echo TAMPERED || echo REFUSED")
    job_t, log_t = _run_job(ml_client, server.path, command(environment="azureml:AzureML-sklearn-1.5@latest",
                                                            command=tamper))
    ro = subprocess.run(["unshare", "-m", "--propagation", "private", "true"], capture_output=True).returncode == 0
    if ro:
        assert "REFUSED" in log_t and "TAMPERED" not in log_t, log_t

    job2, log2 = _run_job(ml_client, server.path, command(
        environment="azureml:AzureML-sklearn-1.5@latest",
        command="python -c 'import six, sys; print(\"SIX\", six.__version__); print(\"PREFIX\", sys.prefix)'"))
    assert job2.status == "Completed", log2
    assert "SIX 1.15.0" not in log2 and "SIX 1." in log2  # the next job gets the environment as built
    assert "reusing" in (server.path / "jobs" / job2.name / "system_logs" / "runner.log").read_text()

    # the default environment (no environment given) is not the server's either
    job3, log3 = _run_job(ml_client, server.path, command(
        command="python -c 'import sys; print(\"PREFIX\", sys.prefix)' && pip install --quiet six==1.15.0"))
    assert job3.status == "Completed", log3
    assert log3.split("PREFIX ", 1)[1].split()[0] != sys.prefix
    assert _server_freeze() == before


# ---------------------------------------------------------------------------------------- issue 9: MLflow clients
MLFLOW_CLIENT_SCRIPT = """\
import os, sys, mlflow, mlflow.sklearn, numpy as np
from sklearn.linear_model import LogisticRegression
mlflow.log_param("alpha", 0.5)
for step in range(3):
    mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
with open("note.txt", "w") as fh:
    fh.write("hello")
mlflow.log_artifact("note.txt")
mlflow.log_artifact("note.txt", artifact_path="more")
X = np.array([[0.0], [1.0], [2.0], [3.0]] * 3)
y = [0, 0, 1, 1] * 3
model = LogisticRegression().fit(X, y)
mlflow.sklearn.log_model(model, "model", registered_model_name=sys.argv[1])
run_id = mlflow.active_run().info.run_id
back = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
print("PRED", [int(p) for p in back.predict(X[:2])])
loaded = mlflow.pyfunc.load_model(f"models:/{sys.argv[1]}/1")
print("REG", [int(p) for p in loaded.predict(X[2:4])])
mlflow.end_run()
mlflow.autolog()
with mlflow.start_run(run_name="autologged") as run:
    LogisticRegression(C=0.25).fit(X, y)
print("AUTORUN", run.info.run_id)
print("CLIENT", mlflow.__version__)
"""


def _client_env(version: str) -> object:
    if version == "1":
        return Environment(conda_file={"dependencies": ["python=3.10", {"pip": [
            "mlflow==1.30.1", "scikit-learn==1.1.3", "pandas==1.5.3", "numpy==1.23.5"]}]})
    if version == "2":
        return Environment(conda_file={"dependencies": ["python=3.10", {"pip": [
            "mlflow==2.17.2", "scikit-learn~=1.5.0", "pandas~=1.5.3", "numpy~=1.26.4"]}]})
    return Environment(conda_file={"dependencies": [f"python={server_python()}", {"pip": [
        f"mlflow=={server_versions()['mlflow']}", "scikit-learn"]}]})


def _check_client_run(ml_client, server, job, log: str, reg: str, major: str) -> None:  # type: ignore[no-untyped-def]
    from mlflow.tracking import MlflowClient

    assert job.status == "Completed", log
    assert f"CLIENT {major}." in log and "PRED [0, 0]" in log and "REG [1, 1]" in log
    client = MlflowClient(tracking_uri=f"{server.url}/mlflow")
    run = client.get_run(job.name)
    assert run.data.params["alpha"] == "0.5"
    hist = client.get_metric_history(job.name, "loss")
    assert sorted((m.step, m.value) for m in hist) == [(0, 1.0), (1, 0.5), (2, 1.0 / 3)]
    names = {a.path for a in client.list_artifacts(job.name)}
    assert {"note.txt", "more"} <= names
    assert major == "3" or "model" in names  # MLflow 3 keeps models as logged models, not run artifacts
    versions = client.search_model_versions(f"name='{reg}'")
    assert [v.version for v in versions] == ["1"] and versions[0].run_id == job.name
    assert ml_client.models.get(reg, version="1").name == reg  # a workspace model, too
    auto = client.get_run(log.split("AUTORUN ", 1)[1].split()[0])
    assert auto.data.params.get("C") == "0.25" and "training_score" in auto.data.metrics


@pytest.mark.slow
def test_mlflow_1_2_and_3_clients_log_register_and_autolog(ml_client, server, tmp_path: Path) -> None:
    # issue 9 item 3: each major MLflow client in its own real environment against the workspace's server;
    # the 1.x and the 3.x client log to the same experiment at the same time
    from openaml import command

    src = tmp_path / "src"
    src.mkdir()
    (src / "client.py").write_text(MLFLOW_CLIENT_SCRIPT)
    experiment = _name("mlflow-clients")
    regs = {v: _name(f"clientmodel{v}") for v in ("1", "2", "3")}
    made = {v: ml_client.jobs.create_or_update(command(
        code=str(src), command=f"python client.py {regs[v]}", environment=_client_env(v),
        experiment_name=experiment)) for v in ("1", "3")}
    for v, job in made.items():
        deadline = time.monotonic() + 900
        while (got := ml_client.jobs.get(job.name)).status not in TERMINAL:
            assert time.monotonic() < deadline
            time.sleep(1)
        log = (server.path / "jobs" / job.name / "user_logs" / "std_log.txt").read_text()
        _check_client_run(ml_client, server, got, log, regs[v], v)
    job, log = _run_job(ml_client, server.path, command(
        code=str(src), command=f"python client.py {regs['2']}", environment=_client_env("2"),
        experiment_name=experiment))
    _check_client_run(ml_client, server, job, log, regs["2"], "2")


def test_mlflow_1x_registry_preview_paths_are_served(server) -> None:
    # regression: MLflow 1.x clients register models under /api/2.0/preview/mlflow/...; MLflow 3 serves only
    # /api/2.0/mlflow/..., so registered_model_name= failed with 404 from a 1.x client
    import httpx

    name = _name("preview-reg")
    made = httpx.post(f"{server.url}/mlflow/api/2.0/preview/mlflow/registered-models/create", json={"name": name},
                      timeout=30)
    assert made.status_code == 200, made.text
    assert made.json()["registered_model"]["name"] == name
    got = httpx.get(f"{server.url}/mlflow/api/2.0/mlflow/registered-models/get", params={"name": name}, timeout=30)
    assert got.status_code == 200 and got.json()["registered_model"]["name"] == name
    again = httpx.get(f"{server.url}/mlflow/api/2.0/preview/mlflow/registered-models/get", params={"name": name},
                      timeout=30)
    assert again.status_code == 200 and again.json()["registered_model"]["name"] == name


def test_python_choice_nearest_and_downloads_fail_clearly(tmp_path: Path) -> None:
    import sys

    from openaml.environments import EnvOptions

    conda = {"dependencies": ["python=3.5", {"pip": ["six==1.16.0"]}]}
    # only the server's interpreter allowed: it is the nearest, and the deviation is a warning naming both
    spec = resolve_spec({"conda_file": conda}, options=EnvOptions(interpreters=(sys.executable,)))
    assert spec.python == "3.5" and spec.python_used == ".".join(map(str, sys.version_info[:3]))
    assert any(w.startswith("python 3.5 was asked for and is not installed here") and spec.python_used in w
               for w in spec.warnings)
    # downloads on: uv is asked for a managed 3.5 at build time; none can be had, so the build fails clearly
    dl = resolve_spec({"conda_file": conda}, options=EnvOptions(python_downloads=True))
    assert dl.interpreter is None and dl.python_used == "3.5" and dl.spec_hash != spec.spec_hash
    assert any("uv downloads it at build time" in w for w in dl.warnings)
    envs = tmp_path / "envs"
    with pytest.raises(EnvironmentBuildError, match=r"downloading Python 3\.5"):
        ensure_environment(dl, envs, timeout=120)
    assert env_status(dl, envs) == "not built"
    # the workspace setting and an environment property both turn strict on (a different environment)
    strict = resolve_spec({"conda_file": conda, "properties": {"strict": "true"}},
                          options=EnvOptions(interpreters=(sys.executable,)))
    assert strict.strict and strict.spec_hash != spec.spec_hash
    with pytest.raises(EnvironmentBuildError, match="strict mode"):
        ensure_environment(strict, envs)
    assert env_status(strict, envs) == "not built"


@pytest.mark.slow
def test_job_warnings_list_the_python_and_each_relaxed_pin(tmp_path: Path) -> None:
    # a workspace limited to /usr/bin/python3.11 (workspace setting environments.interpreters): a job asking for
    # python=3.10 with mltable==1.0.0 runs on 3.11 with the nearest mltable that installs, and says so
    import json
    import sys

    from openaml import MLClient, command

    if not Path("/usr/bin/python3.11").exists():
        pytest.skip("needs /usr/bin/python3.11")
    ws = tmp_path / "ws"
    subprocess.run([sys.executable, "-m", "openaml", "workspace", "create", "-n", "relaxws", "--path", str(ws)],
                   check=True, capture_output=True)
    info = json.loads((ws / "workspace.json").read_text())
    info["environments"] = {"interpreters": ["/usr/bin/python3.11"]}
    (ws / "workspace.json").write_text(json.dumps(info))
    proc = subprocess.Popen([sys.executable, "-m", "openaml", "server", "--workspace", str(ws), "--port", "0"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while not (ws / "server.json").exists() or json.loads((ws / "server.json").read_text()).get("pid") != proc.pid:
            assert time.monotonic() < deadline and proc.poll() is None, "server did not start"
            time.sleep(0.1)
        client = MLClient(workspace=json.loads((ws / "server.json").read_text())["url"])
        env = Environment(conda_file={"dependencies": ["python=3.10", {"pip": ["mltable==1.0.0", "six==1.16.0"]}]})
        job, log = _run_job(client, ws, command(
            command="python -c 'import mltable, six, sys; print(\"GOT\", mltable.__version__ if hasattr(mltable, "
                    "\"__version__\") else \"?\", six.__version__, sys.version.split()[0])'", environment=env))
        assert job.status == "Completed", log
        warnings = client.jobs.get_raw(job.name)["warnings"]
        assert any(w.startswith("python 3.10 was asked for") and "3.11" in w for w in warnings)
        assert any(w.startswith("mltable==1.0.0 has no build for Python 3.11") for w in warnings), warnings
        lines = log.splitlines()
        assert lines[0].startswith("[openaml] environment: python 3.10 was asked for")
        assert any(ln.startswith("[openaml] environment: mltable==1.0.0 has no build") for ln in lines)
        assert "GOT" in log and " 1.16.0 3.11." in log
        client.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.slow
def test_every_cpu_curated_list_resolves_on_its_python() -> None:
    from openaml.environments import curated_names, find_uv

    uv = find_uv()
    for name in curated_names():
        if any(k in name.lower() for k in ("tensorflow", "pytorch")):
            continue  # large GPU framework downloads: documented as not built here
        spec = resolve_spec(name)
        done = subprocess.run([uv, "pip", "compile", "-", "--quiet", "--no-header", "--python",
                               spec.interpreter or str(spec.python_used)], input="\n".join(spec.pip),
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{name} on Python {spec.python_used}: {done.stderr[-1500:]}"


def test_build_error_keeps_uvs_verdict_before_a_long_traceback(tmp_path: Path) -> None:
    # review of issue 9: the message showed the end of a setuptools traceback, not uv's "Failed to build" line
    from openaml.environments._build import _tail

    log = tmp_path / "build.log"
    log.write_text("$ uv pip install\nerror: Failed to build `numpy==1.16.0`\n"
                   + "".join(f"  traceback line {i}\n" for i in range(60)), encoding="utf-8")
    text = _tail(log)
    assert text.splitlines()[0] == "error: Failed to build `numpy==1.16.0`"
    assert text.splitlines()[-1] == "  traceback line 59"
