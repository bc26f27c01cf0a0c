"""Names and titles from inputs cannot run in a spreadsheet, add a table column,
or become HTML in a Markdown table or the dataset card (issue 19, item 4).
Oracles: Python's csv reader (cell count and text), the Markdown table's
column count, and the absence of any raw tag."""

import csv
import io
import json
import shutil

import numpy as np
import pytest
import soundfile
from mediafactory import build_synth_dataset

from copbench.leaderboard import render_leaderboard
from copbench.run import run_benchmark
from copdata.export.hf import export_hf

FORMULA = "=cmd|' \\C calc'!A0"
TAG = "<img src=x onerror=alert(1)>|x"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return build_synth_dataset(tmp_path_factory.mktemp("inj") / "D", 2, 2.0, 1.0)


@pytest.fixture(scope="module")
def results(dataset, tmp_path_factory):
    from copdata import open_dataset
    root = tmp_path_factory.mktemp("models")
    out = root / "results"
    for name in (FORMULA, TAG):
        folder = root / name
        folder.mkdir()
        for clip in open_dataset(dataset).clips("test"):
            soundfile.write(folder / f"{clip.id}.wav", np.zeros(clip.num_samples, np.float32),
                            clip.sample_rate)
        run_benchmark(str(folder), dataset, metrics=["si_sdr"], out=out, progress=False)
    return out


def test_csv_cells_are_never_formulas(results):
    rows = list(csv.reader(io.StringIO(render_leaderboard(results, "csv"))))
    header, body = rows[0], rows[1:]
    assert sorted(r[0] for r in body) == sorted(["'" + FORMULA, TAG])
    for row in body:
        assert len(row) == len(header)
        assert not any(cell.startswith(("=", "+", "@")) for cell in row)


def test_markdown_table_keeps_its_columns_and_shows_tags_as_text(results):
    text = render_leaderboard(results, "md")
    table = [line for line in text.splitlines() if line.startswith("|")]
    n_cols = table[0].count("|")
    for line in table:  # an escaped pipe (\|) is text, not a column
        assert line.replace("\\|", "").count("|") == n_cols, line
    assert "<img" not in text and "&lt;img src=x onerror=alert(1)&gt;" in text


def test_dataset_card_escapes_remote_titles(dataset, tmp_path):
    root = tmp_path / "D"
    shutil.copytree(dataset, root)
    rows = [json.loads(line) for line in (root / "clips.jsonl").read_text().splitlines()]
    for row in rows:
        row["meta"]["title"] = "<script>alert(1)</script>\n# Pwned | extra ```"
    (root / "clips.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    settings = json.loads((root / "dataset.json").read_text())
    settings["source"]["name"] = "<b>x</b>\n```\n<script>"
    (root / "dataset.json").write_text(json.dumps(settings))
    card = (export_hf(root, tmp_path / "hf", progress=False) / "README.md").read_text()
    body = card.split("---\n", 2)[2]
    prose, inside = [], False  # what Markdown renders as text and HTML: outside code blocks
    for line in body.splitlines():
        if line.startswith("```"):
            inside = not inside
        elif not inside:
            prose.append(line)
    prose = "\n".join(prose)
    assert not inside  # every code block is closed by its own fence
    assert "<script>" not in prose and "<b>" not in prose and "\n# Pwned" not in prose
    table = [line for line in card.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + 2  # header + one row per source item
    assert all(line.replace("\\|", "").count("|") == 6 for line in table)


@pytest.mark.parametrize("mean", ['"3.5"', "Infinity", "NaN", "true"])
def test_a_results_file_with_a_bad_mean_is_named(results, tmp_path, mean):
    from copbench.errors import BenchError
    folder = tmp_path / "results"
    shutil.copytree(results, folder)
    victim = sorted(folder.glob("*.json"))[0]
    text = victim.read_text()
    data = json.loads(text)
    data["metrics"]["si_sdr"]["mean"] = "__MEAN__"
    victim.write_text(json.dumps(data).replace('"__MEAN__"', mean))
    with pytest.raises(BenchError, match="not a finite number") as err:
        render_leaderboard(folder, "md")
    assert victim.name in str(err.value)
