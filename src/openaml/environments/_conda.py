"""Conda files, pip requirement lines and Docker build contexts -> pip requirements.

There is no conda here: a conda file becomes a list of pip requirements for a uv virtualenv.

- ``dependencies:`` entries that are mappings with a ``pip:`` list give pip requirements as written;
- plain conda entries are mapped to pip names (``pytorch`` -> ``torch``, ``py-xgboost`` ->
  ``xgboost``...), their conda versions turned into pip specifiers (``numpy=1.26`` ->
  ``numpy==1.26.*``, build strings dropped);
- ``python=3.x`` gives the Python version wanted; ``pip`` is dropped;
- conda-only packages (``mkl``, ``cudatoolkit``, compilers, system libraries) are dropped with a
  warning; ``channels:`` and ``name:`` are ignored;
- Azure-only packages that need an Azure workspace (``azureml-core``, ``azureml-defaults``, the
  SDK v1 family) are dropped with a warning; ``azureml-mlflow`` becomes ``mlflow``, since
  openaml's job runner sets ``MLFLOW_TRACKING_URI`` to the workspace's own MLflow server.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

from openaml.errors import ValidationError

__all__ = [
    "canonical_name",
    "load_conda_file",
    "map_pip_requirement",
    "normalize_requirement",
    "parse_conda",
    "read_build_context",
    "read_requirements_file",
]

# conda package name -> pip name (None: conda-only, dropped with a warning)
_CONDA_TO_PIP: dict[str, str | None] = {
    "pytorch": "torch",
    "pytorch-cpu": "torch",
    "pytorch-gpu": "torch",
    "py-xgboost": "xgboost",
    "py-xgboost-cpu": "xgboost-cpu",
    "py-lightgbm": "lightgbm",
    "matplotlib-base": "matplotlib",
    "tensorflow-gpu": "tensorflow",
    "tensorflow-base": "tensorflow",
    "pytables": "tables",
    "msgpack-python": "msgpack",
    "python-graphviz": "graphviz",
    "opencv": "opencv-python-headless",
    "py-opencv": "opencv-python-headless",
    "pyyaml": "pyyaml",
    "arrow-cpp": None,
    "libopencv": None,
}
_CONDA_ONLY = {
    "mkl", "mkl-service", "mkl_fft", "mkl_random", "mkl-include", "intel-openmp", "blas", "libblas",
    "libcblas", "liblapack", "openblas", "libopenblas", "cudatoolkit", "cudatoolkit-dev", "cudnn", "nccl",
    "cuda", "cuda-toolkit", "cuda-nvcc", "cuda-runtime", "pytorch-cuda", "cpuonly", "pytorch-mutex",
    "magma-cuda110", "magma-cuda113", "magma-cuda121", "libgcc", "libgcc-ng", "libstdcxx-ng",
    "libgomp", "_libgcc_mutex", "_openmp_mutex", "ca-certificates", "openssl", "conda", "gcc", "gxx",
    "gcc_linux-64", "gxx_linux-64", "gfortran", "make", "git", "openmpi", "mpich", "libffi", "zlib", "xz",
    "sqlite", "tk", "readline", "ncurses", "libuuid", "ld_impl_linux-64", "tzdata", "bzip2", "ffmpeg",
    "libjpeg-turbo", "libpng", "jpeg", "nodejs", "r-base", "libgfortran", "libgfortran-ng", "libiconv",
    "libxml2", "icu", "expat", "krb5", "libcurl", "curl", "libssh2", "lz4-c", "zstd", "snappy", "glog",
    "boost", "boost-cpp", "cmake", "ninja", "graphviz", "unixodbc", "freetds",
}
# azureml-* packages that work without Azure and are kept
_AZUREML_KEEP = {
    "azureml-inference-server-http", "azureml-fsspec", "azureml-dataprep", "azureml-dataprep-rslex",
    "azureml-dataprep-native", "azureml-ai-monitoring",
}
_AZURE_TO = {"azureml-mlflow": "mlflow"}

_CANON_RE = re.compile(r"[-_.]+")
_NAME_AT_START = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._\-]*)\s*(\[[^\]]*\])?\s*(.*)$", re.DOTALL)


def canonical_name(name: str) -> str:
    """PEP 503 normalised name (``Scikit_Learn`` -> ``scikit-learn``)."""
    return _CANON_RE.sub("-", name).lower()


def normalize_requirement(line: str) -> str | None:
    """Tidy one pip requirement line: comments removed, spaces around operators dropped.

    Returns None for blank/comment lines. Option lines (``--extra-index-url ...``) and
    URLs/paths are returned stripped but otherwise unchanged.
    """
    text = line.split(" #", 1)[0].strip() if not line.lstrip().startswith("#") else ""
    if not text:
        return None
    if text.startswith(("-", ".", "/")) or "://" in text or " @ " in text:
        return text
    m = _NAME_AT_START.match(text)
    if not m:
        return text
    name, extras, rest = m.group(1), m.group(2) or "", m.group(3)
    marker = ""
    if ";" in rest:
        rest, _, marker = rest.partition(";")
        marker = "; " + marker.strip()
    rest = re.sub(r"\s+", "", rest)
    return f"{name}{extras}{rest}{marker}"


def _req_name(req: str) -> str | None:
    if req.startswith(("-", ".", "/")) or "://" in req:
        return None
    m = _NAME_AT_START.match(req)
    return canonical_name(m.group(1)) if m else None


def map_pip_requirement(req: str, warnings: list[str]) -> str | None:
    """Map Azure-only packages: ``azureml-mlflow`` -> ``mlflow``; SDK v1 packages dropped (warned)."""
    name = _req_name(req)
    if name is None or not name.startswith("azureml-") or name in _AZUREML_KEEP:
        return req
    if name in _AZURE_TO:
        target = _AZURE_TO[name]
        warnings.append(f"{name} needs Azure; installing {target} instead (the job's MLFLOW_TRACKING_URI "
                        "points at this workspace's MLflow server)")
        return target
    warnings.append(f"{name} needs an Azure workspace (Azure ML SDK v1); not installed")
    return None


def _conda_spec_to_pip(entry: str, warnings: list[str]) -> tuple[str | None, str | None]:
    """One conda match spec -> (pip requirement or None, python version or None)."""
    text = entry.strip()
    if "::" in text:
        text = text.split("::", 1)[1]
    # "name 1.2.*" / "name=1.2=build" / "name>=1.2,<2"
    m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._\-]*)\s*(.*)$", text)
    if not m:
        raise ValidationError(f"conda dependency {entry!r} is not a conda package spec")
    name, ver = m.group(1), m.group(2).strip()
    if " " in ver and not re.search(r"[<>=!]", ver.split(" ")[0]):
        ver = ver.split(" ")[0]  # "1.2.* py38_0": version then build string
    spec = ""
    if ver:
        if ver[0] == "=" and not ver.startswith("=="):
            ver = ver[1:].split("=", 1)[0]  # "=1.2=build" -> "1.2"
            spec = f"=={ver}" if ver.endswith("*") else f"=={ver}.*"
        elif ver[0].isdigit():
            ver = ver.split(" ", 1)[0]
            spec = f"=={ver}"
        else:
            spec = ver.replace(" ", "")
    low = canonical_name(name)
    if low == "python":
        num = re.search(r"(\d+)(?:\.(\d+))?", ver or "")
        if ver and (num is None or not re.fullmatch(r"[<>=!~,.*\d\s]+", ver)):
            raise ValidationError(f"conda dependency {entry!r}: {ver!r} is not a Python version; write e.g. "
                                  "python=3.10", details={"field": "dependencies", "value": entry})
        return None, (f"{num.group(1)}.{num.group(2)}" if num and num.group(2) else num.group(1) if num else None)
    if low == "pip":
        return None, None
    if low in _CONDA_TO_PIP:
        mapped = _CONDA_TO_PIP[low]
        if mapped is None:
            warnings.append(f"conda package {name!r} has no pip equivalent; not installed")
            return None, None
        name = mapped
    elif low in _CONDA_ONLY:
        warnings.append(f"conda package {name!r} is conda-only (system/accelerator library); not installed")
        return None, None
    return f"{name}{spec}", None


def parse_conda(conda: dict[str, Any], *, source: str = "conda_file") -> tuple[list[str], str | None, list[str]]:
    """Turn a conda environment mapping into pip requirements.

    Args:
        conda: the parsed conda file (``name``, ``channels``, ``dependencies``).
        source: named in error messages (the file, or ``conda_file``).

    Returns:
        (pip requirements in file order, python version wanted such as ``"3.8"`` or None, warnings)

    Raises:
        ValidationError: ``dependencies`` is not a list, or an entry is neither a string nor a
            ``{pip: [...]}`` mapping.
    """
    if not isinstance(conda, dict):
        raise ValidationError(f"{source}: a conda file must be a mapping with 'dependencies:', "
                              f"got {type(conda).__name__}", details={"field": "conda_file"})
    deps = conda.get("dependencies") or []
    if not isinstance(deps, list):
        raise ValidationError(f"{source}: field 'dependencies' must be a list, got {type(deps).__name__}",
                              details={"field": "conda_file.dependencies"})
    warnings: list[str] = []
    reqs: list[str] = []
    python: str | None = None
    for i, dep in enumerate(deps):
        if isinstance(dep, (int, float)):
            dep = str(dep)
        if isinstance(dep, str):
            req, py = _conda_spec_to_pip(dep, warnings)
            python = py or python
            if req:
                reqs.append(req)
        elif isinstance(dep, dict) and set(dep) <= {"pip"}:
            pip_list = dep.get("pip") or []
            if not isinstance(pip_list, list):
                raise ValidationError(f"{source}: field 'dependencies.{i}.pip' must be a list of requirements",
                                      details={"field": f"conda_file.dependencies.{i}.pip"})
            for line in pip_list:
                norm = normalize_requirement(str(line))
                if norm:
                    reqs.append(norm)
        else:
            raise ValidationError(
                f"{source}: field 'dependencies.{i}': expected a conda package string or a "
                f"{{pip: [...]}} mapping, got {dep!r}", details={"field": f"conda_file.dependencies.{i}"})
    return reqs, python, warnings


def load_conda_file(path: str | Path) -> dict[str, Any]:
    """Read a conda YAML file.

    Raises:
        ValidationError: the file is missing (path named) or is not a YAML mapping.
    """
    from openaml._yaml import load_yaml_with_lines

    p = Path(path)
    if not p.is_file():
        raise ValidationError(f"conda file {str(path)!r} not found", details={"field": "conda_file",
                                                                               "value": str(path)})
    data, _ = load_yaml_with_lines(p)
    return data


def read_requirements_file(path: Path, root: Path | None = None, _depth: int = 0) -> list[str]:
    """Requirement lines of a requirements.txt, following ``-r other.txt`` (within ``root``)."""
    out: list[str] = []
    root = root or path.parent
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        norm = normalize_requirement(raw)
        if not norm:
            continue
        if norm.startswith(("-r ", "--requirement ")) and _depth < 5:
            inc = (path.parent / norm.split(None, 1)[1].strip()).resolve()
            if inc.is_file() and (inc == root or root.resolve() in inc.parents):
                out.extend(read_requirements_file(inc, root, _depth + 1))
            continue
        if norm.startswith(("-e ", "--editable", "-c ", "--constraint")):
            continue
        out.append(norm)
    return out


_CONDA_NAMES = ("conda.yml", "conda.yaml", "environment.yml", "environment.yaml", "conda_dependencies.yml",
                "conda_dependencies.yaml", "conda_env.yml", "conda_env.yaml")


def _dockerfile_lines(text: str) -> list[str]:
    joined = re.sub(r"\\\s*\n", " ", text)
    return [ln.strip() for ln in joined.splitlines() if ln.strip() and not ln.strip().startswith("#")]


def read_build_context(folder: Path, dockerfile_path: str = "Dockerfile"
                       ) -> tuple[list[str], str | None, str | None, list[str]]:
    """What a Docker build context can give without Docker.

    Looked for, in order: ``requirements.txt``; a conda file (``conda.yml``, ``environment.yml``,
    ...); ``pip install`` commands in the Dockerfile's ``RUN`` lines (``-r`` files read from the
    context). A ``FROM python:3.x`` base image gives the Python version wanted.

    Returns:
        (pip requirements, python version or None, what was used (for messages) or None, warnings)
    """
    warnings: list[str] = []
    python: str | None = None
    dockerfile = folder / dockerfile_path
    lines = _dockerfile_lines(dockerfile.read_text(encoding="utf-8", errors="replace")) if dockerfile.is_file() else []
    for ln in lines:
        m = re.match(r"(?i)^FROM\s+(?:\S+/)?python:(\d+\.\d+)", ln)
        if m:
            python = m.group(1)
    req = folder / "requirements.txt"
    if req.is_file():
        return read_requirements_file(req, folder), python, "requirements.txt", warnings
    for name in _CONDA_NAMES:
        f = folder / name
        if f.is_file():
            found, py, notes = parse_conda(load_conda_file(f), source=name)
            return found, py or python, name, notes
    reqs: list[str] = []
    for ln in lines:
        if not re.match(r"(?i)^RUN\s", ln):
            continue
        for cmd in re.split(r"&&|;|\|\|", ln[4:]):
            try:
                words = shlex.split(cmd)
            except ValueError:
                continue
            if len(words) >= 2 and words[0] in ("pip", "pip3", "python", "python3") and "install" in words:
                args = words[words.index("install") + 1:]
                skip = False
                for j, w in enumerate(args):
                    if skip:
                        skip = False
                        continue
                    if w in ("-r", "--requirement") and j + 1 < len(args):
                        f = (folder / args[j + 1]).resolve()
                        if f.is_file() and folder.resolve() in f.parents:
                            reqs.extend(read_requirements_file(f, folder))
                        skip = True
                    elif w in ("-i", "--index-url", "--extra-index-url", "-f", "--find-links", "-c"):
                        skip = True
                    elif not w.startswith("-"):
                        norm = normalize_requirement(w)
                        if norm:
                            reqs.append(norm)
            elif words and words[0] in ("apt-get", "apt", "yum", "apk", "conda", "mamba"):
                warnings.append(f"Dockerfile: {words[0]} packages are not installed without a container engine")
    if reqs:
        return reqs, python, f"{dockerfile_path} (pip install lines)", warnings
    return [], python, None, warnings
