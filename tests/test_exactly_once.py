"""A batch that is run again, changed, or run twice at once: every input is translated
once per content and model, our own outputs are never read as inputs, and two
processes writing into one folder never overwrite each other."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import events, visible
from model_helpers import make_run
from PIL import Image

from cyclestudio.cli import main
from cyclestudio.core.imagecodec import read_picture
from cyclestudio.core.modelfile import export_model
from cyclestudio.jobs.translate import Item, Settings, encode


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("models")
    first = export_model(make_run(folder / "one"), folder / "one.csmodel")
    second = export_model(make_run(folder / "two", seed=1), folder / "two.csmodel")
    return first, second


def picture(path: Path, seed: int, size: tuple[int, int] = (24, 16)) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray((rng.random((size[1], size[0], 3)) * 255).astype(np.uint8)).save(path)
    return path


def outcomes(capsys) -> dict[str, dict]:
    """The `file` events of the last run, by input file name."""
    return {Path(e["input"]).name: e for e in events(capsys.readouterr().out)
            if e["event"] == "file"}


def run(model: Path, *args: str) -> int:
    return main(["translate", str(model), *args, "--device", "cpu", "--events"])


def test_a_rerun_translates_only_what_changed_and_a_new_model_translates_all_again(
        models, tmp_path, capsys):
    first, second = models
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for i in range(3):
        picture(src / f"p{i}.png", i)
    assert run(first, str(src), "--out", str(out)) == 0
    assert {e["status"] for e in outcomes(capsys).values()} == {"translated"}
    made = {p.name: p.read_bytes() for p in visible(out)}

    picture(src / "p1.png", 99)  # new content
    os.utime(src / "p2.png")  # touched only: same content
    assert run(first, str(src), "--out", str(out)) == 0
    seen = outcomes(capsys)
    assert seen["p1.png"]["status"] == "translated"
    for name in ("p0.png", "p2.png"):
        assert seen[name]["status"] == "skipped" and seen[name]["code"] == "done_before"
    assert (out / "p1_zebra.png").read_bytes() != made["p1_zebra.png"]
    assert (out / "p0_zebra.png").read_bytes() == made["p0_zebra.png"]

    # A different model: everything again, replacing the outputs the first one made.
    assert run(second, str(src), "--out", str(out)) == 0
    assert {e["status"] for e in outcomes(capsys).values()} == {"translated"}
    assert (out / "p0_zebra.png").read_bytes() != made["p0_zebra.png"]

    # An output someone edited is theirs now: never replaced without --overwrite.
    (out / "p0_zebra.png").write_bytes(b"edited by hand")
    picture(src / "p0.png", 50)
    assert run(second, str(src), "--out", str(out)) == 0
    assert outcomes(capsys)["p0.png"]["code"] == "output_exists"
    assert (out / "p0_zebra.png").read_bytes() == b"edited by hand"

    # Without the manifest, the old rule: an existing output is skipped.
    (out / ".cyclestudio-manifest.jsonl").unlink()
    picture(src / "p1.png", 7)
    assert run(first, str(src), "--out", str(out)) == 0
    assert {e["code"] for e in outcomes(capsys).values()} == {"output_exists"}


def test_an_output_folder_inside_the_input_folder_is_never_read_as_input(
        models, tmp_path, capsys):
    photos = tmp_path / "photos"
    (photos / "trip").mkdir(parents=True)
    picture(photos / "a.png", 1)
    picture(photos / "trip" / "b.png", 2)
    for _ in range(2):
        assert run(models[0], str(photos), "--out", str(photos / "translated")) == 0
    assert sorted(outcomes(capsys)) == ["a.png", "b.png"]
    assert [p.relative_to(photos).as_posix() for p in visible(photos, recursive=True)
            if p.is_file()] == ["a.png", "translated/a_zebra.png", "translated/trip/b_zebra.png",
                                "trip/b.png"]
    # The same through a path that is spelled differently (a link to the output folder).
    os.symlink(photos / "translated", tmp_path / "elsewhere")
    assert run(models[0], str(photos), "--out", str(tmp_path / "elsewhere")) == 0
    assert sorted(outcomes(capsys)) == ["a.png", "b.png"]


def test_an_output_another_process_wrote_meanwhile_is_not_overwritten(models, tmp_path):
    source = picture(tmp_path / "cat.png", 3)
    output = tmp_path / "out" / "cat_zebra.png"
    output.parent.mkdir()
    output.write_bytes(b"the other process's")  # written after this one planned its work
    pic = read_picture(source)
    result = np.zeros(pic.pixels.shape, np.float32)
    outcome = encode(result, pic, Item(source, output), Settings(fmt="png"))
    assert (outcome.status, outcome.code) == ("skipped", "output_exists")
    assert output.read_bytes() == b"the other process's"
    assert not [p for p in output.parent.iterdir() if p.name.endswith(".tmp")]


def test_two_translations_into_one_folder_each_file_is_written_once(models, tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    count = 40
    for i in range(count):
        picture(src / f"{i:02d}.png", i, (32, 32))
    command = [sys.executable, "-m", "cyclestudio", "translate", str(models[0]), str(src),
               "--out", str(out), "--device", "cpu", "--events"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    jobs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=env) for _ in range(2)]
    finished = []
    for job in jobs:
        stdout, stderr = job.communicate(timeout=240)
        assert job.returncode == 0, stderr
        finished.append(json.loads(stdout.splitlines()[-1]))
    assert sum(f["translated"] for f in finished) == count
    assert sum(f["skipped"] for f in finished) == count
    assert len(visible(out)) == count


def test_a_batch_lists_its_failures_at_the_end_and_writes_them_to_a_file(
        models, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    picture(src / "good.png", 1)
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff not really")
    (src / "empty.png").write_bytes(b"")
    listed = tmp_path / "failed.txt"
    assert main(["translate", str(models[0]), str(src), "--out", str(tmp_path / "out"),
                 "--device", "cpu", "--failed-list", str(listed)]) == 1
    printed = capsys.readouterr().out.splitlines()
    at = printed.index("failed (2):")
    assert printed[at + 1:] == [f"  {src / 'broken.jpg'}: not an image PIL can read",
                                f"  {src / 'empty.png'}: empty file"]
    assert listed.read_text().splitlines() == [f"{src / 'broken.jpg'}\tnot an image PIL can read",
                                               f"{src / 'empty.png'}\tempty file"]
