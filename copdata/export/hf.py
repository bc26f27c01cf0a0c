"""Export a CoP dataset folder in the Hugging Face Hub layout, and publish it.

Layout written to ``out_dir``::

    README.md                                   dataset card (YAML front matter + text)
    data/<split>-XXXXX-of-YYYYY.parquet          shards, one file set per split

One row per clip. Columns: ``id``, ``split``, ``audio`` (a ``datasets.Audio``
feature holding the clip's FLAC file as bytes, as Hub audio datasets do; with
``audio_format="array"`` instead a struct ``{array: list<float32>,
sampling_rate: int32}`` of the decoded samples, about 3x larger), ``video`` (a
``datasets.Video`` feature holding the clip's H.264 MP4, byte for byte),
``roll`` (``Array2D((None, 88), "uint8")``), ``notes`` (struct of lists
``pitch, start, end, velocity`` as read from ``notes.mid``), ``steps`` (list of
``{step, text}``), ``caption`` (the first step's text), the clip row's source
columns (``source_id``, ``source``, ``segment``, ``start``, ``end``,
``midi_origin``), the source metadata (``title``, ``uploader``, ``license``,
..., one column per key) and ``stats`` (the row's per-view statistics).

Decoding: ``Audio``/``Video`` are what the Hub's viewer plays and what
``cast_column("audio", Audio(sampling_rate=16000))`` works on. ``datasets``
decodes them through ``torchcodec``, which needs a system FFmpeg (Debian:
``apt-get install ffmpeg``); where that is missing, :func:`load_export` loads
the same columns undecoded (``{bytes, path}``) and :func:`decode_audio` /
:func:`decode_video` decode them with soundfile / PyAV (the FFmpeg inside its
wheel). Both ways give the clip's exact samples (``Clip.audio()``) and frames
(``Clip.frames()``); :func:`decode_audio` and :func:`decode_video` also take
what ``datasets`` decoded (torchcodec decoders).

Every clip file is read through :func:`copdata.export.publish.publishable_views`
(regular files inside the dataset whose sha256 matches ``clips.jsonl``).

Shards hold at most ``max_rows_per_shard`` rows and about ``max_shard_bytes`` of
media; parquet row groups hold ``rows_per_group`` rows so the Hub's dataset
viewer can page through them. ``datasets.load_dataset(out_dir)`` loads the
folder. The export is written into a temporary sibling folder and renamed into
place when complete, so a failed export leaves no partial shards.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from .. import open_dataset
from ..dataset.rows import ClipRow
from ..dataset.store import Dataset
from ..errors import CopDataError, DatasetError
from ..ids import check_split_name, is_valid_clip_id, path_under
from ..notes import read_midi
from .card import dataset_card
from .publish import flac_samples, publishable_views

log = logging.getLogger(__name__)
AUDIO_FORMATS = ("flac", "array")
CORE_COLUMNS = ("id", "split", "audio", "video", "roll", "notes", "steps", "caption")
EXPORT_ENTRIES = {"README.md", "data", ".cache", ".huggingface"}
ROW_COLUMNS = ("source_id", "source", "segment", "start", "end", "midi_origin")


class PublishError(CopDataError):
    """Uploading to the Hugging Face Hub failed or cannot start (no token, offline)."""


def _value_type(values: list) -> tuple[str, bool]:
    """(datasets dtype, as_json) for one metadata key over all rows."""
    present = [v for v in values if v is not None]
    if not present:
        return "string", False
    if all(isinstance(v, bool) for v in present):
        return "bool", False
    if all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return "int64", False
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return "float64", False
    if all(isinstance(v, str) for v in present):
        return "string", False
    return "string", True


def _convert(value, dtype: str, as_json: bool):
    if value is None:
        return None
    if as_json:
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    if dtype == "float64":
        return float(value)
    return value


class _Schema:
    """Columns of the export, inferred from the dataset's clip rows."""

    def __init__(self, ds: Dataset, audio_format: str = "flac"):
        from datasets import Array2D, Audio, Features, List, Value, Video

        if audio_format not in AUDIO_FORMATS:
            raise DatasetError(f"audio format {audio_format!r} is not one of {AUDIO_FORMATS}")
        self.audio_format = audio_format

        rows = ds.rows
        self.row_cols = list(ROW_COLUMNS)
        stats = [r.stats.to_dict() for r in rows]
        meta_keys = sorted({k for r in rows for k in r.meta})
        stats_keys = sorted({k for st in stats for k in st})
        taken = set(CORE_COLUMNS) | set(self.row_cols) | {"stats"}
        # meta key -> (column name, dtype, as_json)
        self.meta_cols = {}
        for k in meta_keys:
            dtype, as_json = _value_type([r.meta.get(k) for r in rows])
            self.meta_cols[k] = (f"meta_{k}" if k in taken else k, dtype, as_json)
        self.stats_cols = {k: _value_type([st.get(k) for st in stats]) for k in stats_keys}
        row_types = {k: _value_type([getattr(r, k) for r in rows]) for k in self.row_cols}
        self.row_types = row_types
        u8, f64, s = Value("uint8"), Value("float64"), Value("string")
        spec = {
            "id": s, "split": s,
            "audio": ({"array": List(Value("float32")), "sampling_rate": Value("int32")}
                      if audio_format == "array" else Audio(sampling_rate=int(ds.sample_rate))),
            "video": Video(),
            "roll": Array2D(shape=(None, 88), dtype="uint8"),
            "notes": {"pitch": List(u8), "start": List(f64), "end": List(f64),
                      "velocity": List(u8)},
            "steps": List({"step": s, "text": s}),
            "caption": s,
        }
        for k in self.row_cols:
            spec[k] = Value(row_types[k][0])
        for name, dtype, _ in self.meta_cols.values():
            spec[name] = Value(dtype)
        if self.stats_cols:
            spec["stats"] = {k: Value(t) for k, (t, _) in self.stats_cols.items()}
        self.features = Features(spec)
        schema = self.features.arrow_schema
        fields = [pa.field(f.name, f.type.storage_type if isinstance(f.type, pa.ExtensionType)
                           else f.type) for f in schema]
        self.arrow = pa.schema(fields, metadata=schema.metadata)

    def row(self, ds: Dataset, clip_row: ClipRow, split_name: str) -> dict:
        """One export row from a clip's files (bytes embedded)."""
        clip = ds._clip(clip_row)
        views = publishable_views(ds.root, clip_row)  # regular files, hashes checked
        notes = read_midi(views["notes.mid"])
        roll = np.load(io.BytesIO(views["roll.npy"]), allow_pickle=False)
        if roll.dtype != np.uint8 or roll.ndim != 2 or roll.shape[1] != 88:
            raise DatasetError(f"roll.npy is {roll.dtype} {roll.shape}, not uint8 (T, 88)",
                               item=f"{clip.id}/roll.npy")
        steps = json.loads(views["steps.json"].decode("utf-8"))
        out = {
            "id": clip.id, "split": split_name,
            "audio": ({"array": flac_samples(views["audio.flac"], clip.id),
                       "sampling_rate": int(ds.sample_rate)}
                      if self.audio_format == "array" else
                      {"bytes": views["audio.flac"], "path": f"{clip.id}.flac"}),
            "video": {"bytes": views["video.mp4"], "path": f"{clip.id}.mp4"},
            "roll": roll.tolist(),
            "notes": {"pitch": [n.pitch for n in notes], "start": [n.start for n in notes],
                      "end": [n.end for n in notes], "velocity": [n.velocity for n in notes]},
            "steps": [{"step": str(s["step"]), "text": str(s["text"])} for s in steps],
            "caption": steps[0]["text"] if steps else "",
        }
        for k in self.row_cols:
            out[k] = _convert(getattr(clip_row, k), *self.row_types[k])
        meta = clip_row.meta
        for k, (name, dtype, as_json) in self.meta_cols.items():
            out[name] = _convert(meta.get(k), dtype, as_json)
        if self.stats_cols:
            stats = clip_row.stats.to_dict()
            out["stats"] = {k: _convert(stats.get(k), t, j) for k, (t, j) in self.stats_cols.items()}
        return out


def hub_split_name(split: str) -> str:
    """Hub split names must match ``\\w+``: ``-`` becomes ``_``. A split that is
    not a safe name (e.g. ``../../EVIL`` in a tampered ``clips.jsonl``) raises
    :class:`DatasetError`: it would become a file name."""
    try:
        check_split_name(split)
    except ValueError as exc:
        raise DatasetError(f"{exc}; rebuild the dataset or fix clips.jsonl") from None
    return split.replace("-", "_")


def torchcodec_ready() -> bool:
    """Whether ``datasets`` can decode ``Audio``/``Video`` here (torchcodec and
    the system FFmpeg libraries it loads)."""
    try:
        import torchcodec.decoders  # noqa: F401  (loads libavcodec on import)
    except Exception:  # ImportError, or RuntimeError/OSError without a system FFmpeg
        return False
    return True


def load_export(path: str | Path, decode: bool | None = None, **kwargs):
    """``datasets.load_dataset(path, **kwargs)`` of an export (a folder or a Hub
    repo). ``decode=None`` lets ``datasets`` decode the ``audio`` and ``video``
    columns when :func:`torchcodec_ready`, else (and with ``decode=False``) they
    come as ``{bytes, path}`` for :func:`decode_audio` / :func:`decode_video`."""
    import datasets

    loaded = datasets.load_dataset(str(path), **kwargs)
    if decode is None:
        decode = torchcodec_ready()
    if not decode:
        for name, feature in (("audio", datasets.Audio), ("video", datasets.Video)):
            some = next(iter(loaded.values())) if isinstance(loaded, dict) else loaded
            if isinstance(some.features.get(name), feature):
                loaded = loaded.cast_column(name, feature(decode=False))
    return loaded


def decode_audio(audio) -> np.ndarray:
    """Mono float32 samples of an exported ``audio`` cell: ``{bytes, path}``
    (FLAC, decoded with soundfile), ``{array, sampling_rate}``, or the
    torchcodec ``AudioDecoder`` that ``datasets`` returns when it decodes."""
    if hasattr(audio, "get_all_samples"):  # datasets' own decoding (torchcodec)
        samples = audio.get_all_samples().data.numpy()
        return samples.mean(axis=0).astype(np.float32) if samples.shape[0] > 1 else samples[0]
    if audio.get("array") is not None:
        return np.asarray(audio["array"], dtype=np.float32)
    import soundfile

    samples, _ = soundfile.read(io.BytesIO(audio["bytes"]), dtype="float32", always_2d=True)
    return samples.mean(axis=1)


def decode_video(video) -> np.ndarray:
    """RGB uint8 ``(T, H, W, 3)`` frames of an exported ``video`` cell: ``{bytes,
    path}`` or the MP4 bytes (decoded with PyAV), or the torchcodec
    ``VideoDecoder`` that ``datasets`` returns when it decodes."""
    if hasattr(video, "get_frames_in_range"):  # datasets' own decoding (torchcodec)
        frames = video.get_frames_in_range(0, len(video)).data
        if frames.shape[-1] != 3:  # NCHW (datasets' default dimension order)
            frames = frames.permute(0, 2, 3, 1)
        return np.ascontiguousarray(frames.numpy())
    import av

    data = video["bytes"] if isinstance(video, dict) else video
    with av.open(io.BytesIO(data)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    return np.stack(frames) if frames else np.zeros((0, 0, 0, 3), np.uint8)


def plan_shards(ds: Dataset, rows: list[ClipRow], max_rows: int,
                max_bytes: int) -> list[list[ClipRow]]:
    """Consecutive groups of rows with at most ``max_rows`` rows and about
    ``max_bytes`` of media (a single larger clip still gets its own shard)."""
    shards: list[list[dict]] = []
    current: list[dict] = []
    size = 0
    for row in rows:
        d = ds.root / "clips" / row.id  # a bad id is refused when the row is read
        row_bytes = sum(os.lstat(d / n).st_size for n in ("video.mp4", "audio.flac")
                        if is_valid_clip_id(row.id) and (d / n).is_file())
        if current and (len(current) >= max_rows or size + row_bytes > max_bytes):
            shards.append(current)
            current, size = [], 0
        current.append(row)
        size += row_bytes
    if current:
        shards.append(current)
    return shards


def check_push_possible(token: str | None) -> str:
    """The token to push with; raises :class:`PublishError` when offline or none."""
    from huggingface_hub import constants, get_token

    if constants.HF_HUB_OFFLINE:
        raise PublishError("HF_HUB_OFFLINE is set, so nothing can be uploaded; unset it on a "
                           "machine with network access and rerun with --push")
    token = token or get_token()
    if not token:
        raise PublishError("no Hugging Face token: run `huggingface-cli login`, set HF_TOKEN, "
                           "or pass --token; nothing was uploaded")
    return token


def export_hf(dataset_dir: str | Path, out_dir: str | Path, max_rows_per_shard: int = 256,
              rows_per_group: int = 16, max_shard_bytes: int = 500 * 1024 ** 2,
              push: str | None = None, private: bool = False, token: str | None = None,
              overwrite: bool = False, progress: bool = True,
              audio_format: str = "flac") -> Path:
    """Write ``dataset_dir`` as a Hub dataset folder ``out_dir``; upload it to the
    dataset repo ``push`` when given. Returns ``out_dir``.

    Refuses a non-empty ``out_dir`` unless ``overwrite``. With ``push`` the token
    (argument, ``HF_TOKEN`` or the cached login) is checked before anything is
    written, and a failed upload raises :class:`PublishError`.
    """
    if max_rows_per_shard < 1 or rows_per_group < 1:
        raise DatasetError("max_rows_per_shard and rows_per_group must be at least 1")
    ds = open_dataset(dataset_dir)
    if not ds.rows:
        raise DatasetError("the dataset has no clips; nothing to export", item=str(ds.root))
    if push:
        token = check_push_possible(token)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise DatasetError("--out is a file, not a folder", item=str(out))
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise DatasetError("output folder is not empty; pass --overwrite or choose "
                               "another --out", item=str(out))
        foreign = sorted(p.name for p in out.iterdir() if p.name not in EXPORT_ENTRIES)
        if foreign:
            raise DatasetError(f"--overwrite replaces only an earlier export (README.md and "
                               f"data/), but the folder also holds {foreign[:5]}; choose "
                               "another --out", item=str(out))
    schema = _Schema(ds, audio_format)
    by_split: dict[str, list[dict]] = defaultdict(list)
    for row in ds.rows:
        by_split[hub_split_name(row.split)].append(row)
    plans = {s: plan_shards(ds, rows, max_rows_per_shard, max_shard_bytes)
             for s, rows in by_split.items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    bar = tqdm(total=len(ds.rows), unit="clip", desc="export hf", disable=not progress)
    shard_files: dict[str, list[str]] = {}
    try:
        (work / "data").mkdir()
        for split, shards in plans.items():
            shard_files[split] = []
            for k, shard in enumerate(shards):
                name = f"data/{split}-{k:05d}-of-{len(shards):05d}.parquet"
                with pq.ParquetWriter(path_under(work, name), schema.arrow) as writer:
                    for g in range(0, len(shard), rows_per_group):
                        group = [schema.row(ds, r, split) for r in shard[g:g + rows_per_group]]
                        writer.write_table(pa.Table.from_pylist(group, schema=schema.arrow),
                                           row_group_size=rows_per_group)
                        bar.update(len(group))
                shard_files[split].append(name)
        card = dataset_card(ds, schema.features, {s: len(r) for s, r in by_split.items()},
                            shard_files, work)
        (work / "README.md").write_text(card, encoding="utf-8")
        _replace_folder(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    finally:
        bar.close()
    log.info("exported %d clips to %s", len(ds.rows), out)
    if push:
        push_to_hub(out, push, private=private, token=token)
    return out


def _replace_folder(new: Path, out: Path) -> None:
    """Rename the finished export ``new`` to ``out`` (an earlier export there is
    moved aside first and deleted after the rename)."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    os.replace(new, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def push_to_hub(folder: str | Path, repo_id: str, private: bool = False,
                token: str | None = None) -> str:
    """Upload an exported folder to the dataset repo ``repo_id``; returns its URL."""
    from huggingface_hub import HfApi

    token = check_push_possible(token)
    api = HfApi(token=token)
    try:
        url = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="dataset",
                          commit_message="Upload CoP dataset (copdata export)")
    except Exception as exc:  # network, auth, permission: all end the push the same way
        raise PublishError(f"upload to {repo_id} failed ({type(exc).__name__}: {exc}); the "
                           f"local export in {folder} is complete", item=repo_id) from exc
    return str(url)


def add_cli_arguments(parser) -> None:
    """Arguments of ``copdata export`` (argparse)."""
    parser.add_argument("dir", help="dataset folder written by copdata build")
    parser.add_argument("--format", choices=["hf"], default="hf",
                        help="export format (hf: Hugging Face Hub parquet layout)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--max-rows-per-shard", type=int, default=256)
    parser.add_argument("--rows-per-group", type=int, default=16,
                        help="parquet row group size (small groups keep the Hub viewer fast)")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier export")
    parser.add_argument("--audio-format", choices=AUDIO_FORMATS, default="flac",
                        help="audio column: flac = a datasets.Audio feature holding the clip's "
                             "FLAC bytes, as Hub datasets do (default; decoded by datasets with "
                             "torchcodec + FFmpeg, or by copdata.export.hf.decode_audio); array = "
                             "the decoded float32 samples, about 3x larger")
    parser.add_argument("--push", metavar="REPO_ID", default=None,
                        help="upload to this Hugging Face dataset repo after exporting")
    parser.add_argument("--private", action="store_true", help="create the repo private")
    parser.add_argument("--token", default=None,
                        help="Hugging Face token (default: HF_TOKEN or the cached login)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def export_main(args) -> int:
    """Run ``copdata export`` from parsed arguments; prints where the export went."""
    out = export_hf(args.dir, args.out, max_rows_per_shard=args.max_rows_per_shard,
                    rows_per_group=args.rows_per_group, push=args.push, private=args.private,
                    token=args.token, overwrite=args.overwrite, progress=not args.quiet,
                    audio_format=args.audio_format)
    counts = Counter(r.split for r in open_dataset(args.dir).rows)
    print(f"exported {sum(counts.values())} clips ({', '.join(f'{k}: {v}' for k, v in sorted(counts.items()))}) "
          f"to {out}" + (f"; pushed to https://huggingface.co/datasets/{args.push}" if args.push else ""))
    return 0
