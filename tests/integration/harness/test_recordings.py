"""The recordings index: kept in step by the recorder, and `convostack recordings
list|show|prune` on it."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from convostack.cli import main
from convostack.config import Config
from convostack.providers.recording import TEST_ID_HEADER, safe_test_id
from convostack.providers.recording_index import RecordingIndex
from convostack.testing.fake_upstream import fake_upstream_server
from convostack.testing.plugin import only_in_library_mode
from convostack.testing.stack import library_target
from convostack.testing.upstream import FAKE_MODEL

TEST_ID = "tests/test_kept.py::test_kept"


@pytest.fixture(autouse=True)
def _once(request: pytest.FixtureRequest) -> None:
    only_in_library_mode(request.config, "records in-process: once is enough")


@pytest.fixture
def recorded(tmp_path: Path) -> Path:
    """One chat completion recorded under TEST_ID; the recordings folder."""
    folder = tmp_path / "recordings"
    with fake_upstream_server(models=[FAKE_MODEL]) as upstream:
        config = Config.model_validate({
            "home": tmp_path, "db": f"sqlite:///{tmp_path / 'r.db'}", "upstream": upstream,
            "inference_mode": "record", "recording_dir": folder,
        })  # fmt: skip
        with library_target(config) as target, target.http_client() as http:
            body = {"model": FAKE_MODEL, "messages": [{"role": "user", "content": "hi"}]}
            answer = http.post("/v1/chat/completions", json=body, headers={TEST_ID_HEADER: TEST_ID})
            assert answer.status_code == 200
    return folder


def test_the_recorder_keeps_the_index(recorded: Path) -> None:
    (entry,) = RecordingIndex(recorded).entries()
    assert entry.test_id == TEST_ID
    assert entry.endpoint == "chat"
    assert entry.model == FAKE_MODEL
    assert entry.path.startswith(safe_test_id(TEST_ID) + "/")
    assert (recorded / entry.path).is_file()
    assert entry.recorded_at.startswith("20")


def test_list_and_show(recorded: Path) -> None:
    runner = CliRunner()
    listed = runner.invoke(main, ["recordings", "list", "--dir", str(recorded)])
    assert listed.exit_code == 0, listed.output
    assert TEST_ID in listed.output
    assert FAKE_MODEL in listed.output
    key = RecordingIndex(recorded).entries()[0].path.split("/")[1][:10]
    shown = runner.invoke(main, ["recordings", "show", "--dir", str(recorded), key])
    assert shown.exit_code == 0, shown.output
    assert '"endpoint": "chat"' in shown.output


def test_the_index_is_rebuilt_from_the_files(recorded: Path) -> None:
    (recorded / "index.sqlite").unlink()
    RecordingIndex(recorded).sync()
    (entry,) = RecordingIndex(recorded).entries()
    assert entry.test_id == TEST_ID


def test_prune_removes_what_no_test_uses(
    recorded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_kept.py").write_text("def test_kept():\n    pass\n")
    gone = recorded / safe_test_id("tests/test_gone.py::test_gone")
    gone.mkdir()
    kept_file = next(recorded.glob("*/*.json"))
    (gone / "abc.json").write_bytes(kept_file.read_bytes().replace(b"test_kept", b"test_gone"))
    runner = CliRunner()
    monkeypatch.chdir(tmp_path)  # pytest collects tests/test_kept.py from here
    dry = runner.invoke(main, ["recordings", "prune", "--dir", str(recorded),
                               "--tests", "tests", "--dry-run"])  # fmt: skip
    assert dry.exit_code == 0, dry.output
    assert "would remove" in dry.output
    assert (gone / "abc.json").exists()
    done = runner.invoke(main, ["recordings", "prune", "--dir", str(recorded),
                                "--tests", "tests"])  # fmt: skip
    assert done.exit_code == 0, done.output
    assert not gone.exists()
    assert kept_file.exists()
    assert [e.test_id for e in RecordingIndex(recorded).entries()] == [TEST_ID]
