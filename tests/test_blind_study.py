"""A motivated rater's attacks on the listening study, and on `copbench mos`
(issue 19, items 3, 7 and 14). Oracles: a rebuild from the same public inputs,
byte comparison, the file system's own sizes and times, and ratings files
worked by hand."""

import json
import re

import pytest
from mediafactory import build_synth_dataset
from test_listen_browser import MATCH, QUALITY, plausible_ratings

from copbench.cli import main
from copbench.listen import StudyError, build_study, default_key_path, read_key
from copbench.listen.study import render_page
from copbench.mos import run_mos


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return build_synth_dataset(tmp_path_factory.mktemp("ds") / "tiny", 2, 2.0, 1.0)


@pytest.fixture(scope="module")
def study(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("st") / "study"
    key = build_study(dataset, "silence", out, clips=1, seed=3, training=False, progress=False)
    return out, key


def test_stimuli_cannot_be_rebuilt_from_public_inputs(dataset, study, tmp_path):
    out, key = study
    page = (out / "index.html").read_text()
    assert "sha256" not in page and not re.search(r"[0-9a-f]{64}(?<!%s)" % key.study_hash,
                                                  page.replace(key.study_hash, "")
                                                  .replace(key.spec["key_hash"], ""))
    # the attacker rebuilds the study with the same dataset and seed
    again = build_study(dataset, "silence", tmp_path / "again", clips=1, seed=3, training=False,
                        progress=False)
    theirs = {p.read_bytes() for p in (tmp_path / "again" / "media").iterdir()}
    ours = {p.read_bytes() for p in (out / "media").iterdir()}
    assert len(ours) == len(key.stimuli) == 3 and not ours & theirs
    assert {s.role for s in again.stimuli.values()} == {"reference", "model", "anchor"}


def test_served_files_have_one_size_and_one_time(study):
    out, key = study
    media = sorted((out / "media").iterdir())
    assert len(media) == 3
    assert len({p.stat().st_size for p in media}) == 1
    assert len({int(p.stat().st_mtime) for p in [*media, out / "index.html"]}) == 1
    import av
    for path in media:  # the padding is a box players skip: every stream still decodes
        with av.open(str(path)) as container:
            assert sum(1 for _ in container.decode(audio=0)) > 0


def test_key_lives_outside_the_served_folder_and_is_bound_to_the_page(dataset, study, tmp_path):
    out, key = study
    assert default_key_path(out).is_file() and not list(out.rglob("*key*"))
    assert oct(default_key_path(out).stat().st_mode & 0o777) == "0o600"
    with pytest.raises(StudyError, match="outside the served study folder"):
        build_study(dataset, "silence", tmp_path / "s", clips=1, key_path=tmp_path / "s" / "k.json",
                    progress=False)
    # swapping two systems' labels in the key is noticed
    data = json.loads(default_key_path(out).read_text())
    ids = sorted(data["stimuli"])
    a, b = ids[0], ids[1]
    data["stimuli"][a]["system"], data["stimuli"][b]["system"] = (data["stimuli"][b]["system"],
                                                                  data["stimuli"][a]["system"])
    data["stimuli"][a]["role"], data["stimuli"][b]["role"] = (data["stimuli"][b]["role"],
                                                              data["stimuli"][a]["role"])
    swapped = tmp_path / "swapped.json"
    swapped.write_text(json.dumps(data))
    with pytest.raises(StudyError, match="labels were edited or swapped"):
        read_key(out, swapped)
    assert read_key(out).study_hash == key.study_hash


def test_study_options_that_break_the_page_are_refused(dataset, tmp_path):
    with pytest.raises(StudyError, match="raters-seed"):
        build_study(dataset, "silence", tmp_path / "a", clips=1, raters_seed=2 ** 53,
                    progress=False)
    with pytest.raises(StudyError, match="study-id"):
        build_study(dataset, "silence", tmp_path / "b", clips=1, study_id="<!--<script>",
                    progress=False)
    # whatever the spec holds, the inline JSON has no "<" to end or bend its script element
    page = render_page({"study_id": "</script><!--<script>", "trials": []}, "0" * 64)
    inline = page.split('id="study">', 1)[1].split("</script>", 1)[0]
    assert "<" not in inline and json.loads(inline)["study_id"] == "</script><!--<script>"


def _write(tmp_path, name, doc):
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return path


def test_mos_rejects_copies_and_implausible_files_and_aggregates_the_rest(study, tmp_path,
                                                                         capsys):
    out, key = study
    honest = [plausible_ratings(key, f"r{i}", QUALITY, MATCH) for i in range(2)]
    for row in honest[1]["ratings"]:  # two honest raters differ on the hidden reference
        if key.stimuli[row["stimulus"]].system == "oracle":
            row["quality"] = 4
    files = [_write(tmp_path, f"honest{i}", d) for i, d in enumerate(honest)]
    # the attack of the issue: five files differing only in rater_id, pushing "silence" up
    boost = {**QUALITY, "silence": 5}
    for i in range(5):
        files.append(_write(tmp_path, f"sock{i}", plausible_ratings(key, f"sock{i}", boost, MATCH)))
    bad = {}
    first = plausible_ratings(key, "fast", QUALITY, MATCH)
    first["ratings"][0]["listened_s"] = 0
    bad["fast"] = first
    played = plausible_ratings(key, "bool", QUALITY, MATCH)
    played["ratings"][0]["play_count"] = True
    bad["bool"] = played
    shuffled = plausible_ratings(key, "order", QUALITY, MATCH)
    shuffled["ratings"].reverse()
    for i, row in enumerate(shuffled["ratings"]):
        row["trial"] = i + 1
    bad["order"] = shuffled
    bad["list"] = dict(plausible_ratings(key, "list", QUALITY, MATCH), rater_id=["x"])
    nested = plausible_ratings(key, "nest", QUALITY, MATCH)
    nested["ratings"][0]["stimulus"] = [[["deep"]]]
    bad["nest"] = nested
    bad["ansi"] = plausible_ratings(key, "evil\n\x1b[31mrater", QUALITY, MATCH)
    files += [_write(tmp_path, k, v) for k, v in bad.items()]
    files.append(_write(tmp_path, "deep", "[" * 100000 + "]" * 100000))
    code = main(["mos", str(out), *map(str, files), "--out", str(tmp_path / "res")])
    text = capsys.readouterr().out
    assert code == 3
    assert "\x1b" not in text and "evil\n" not in text
    assert text.count("REJECTED") == 5 + len(bad) + 1
    assert text.count("the same answers to all 3 trials") == 5
    assert "listened_s 0" in text and "play_count True" in text and "out of order" in text
    results = json.loads((tmp_path / "res" / "silence.json").read_text())
    mos = results["metrics"]["mos_quality"]
    assert mos["n_raters"] == 2 and mos["mean"] == QUALITY["silence"]  # the socks are gone
    report = run_mos(out, files[:2], tmp_path / "res2")
    assert not report["rejected"]
