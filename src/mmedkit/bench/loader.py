"""Load benchmarks in the MMedBench layout: ``<root>/{Train,Test}/<Language>.jsonl``.

``--data`` takes such a folder, the word ``demo`` (the embedded demo sample), or the hub id
``Henrychur/MMedBench`` (fetched with huggingface_hub when online).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmedkit.assets import demo_root
from mmedkit.bench.items import Item, parse_answer
from mmedkit.errors import DataError
from mmedkit.languages import Language, parse_langs
from mmedkit.records import read_records

HUB_ID = "Henrychur/MMedBench"
SPLITS = {"train": "Train", "test": "Test"}


@dataclass
class LoadReport:
    """What a load read, and what it skipped and why."""

    loaded: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


def resolve_data(data: str | os.PathLike[str]) -> Path:
    """Turn ``--data`` into a local folder in the MMedBench layout.

    Accepts a folder, ``demo``, or a hub dataset id (``Henrychur/MMedBench``).
    """
    text = str(data)
    if text == "demo":
        return demo_root()
    path = Path(text).expanduser()
    if path.exists():
        if not path.is_dir():
            raise DataError(f"--data must be a folder in the MMedBench layout, got a file: {path}")
        return path
    if text.count("/") == 1 and not text.startswith((".", "/")):
        return _download_from_hub(text)
    raise DataError(f"data folder not found: {path}")


def _download_from_hub(repo_id: str) -> Path:
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise DataError("reading from the hub needs huggingface_hub: pip install 'mmedkit[eval]'") from exc
    try:
        local = snapshot_download(repo_id=repo_id, repo_type="dataset",
                                  allow_patterns=["*.jsonl", "**/*.jsonl", "*.zip", "README.md"])
    except Exception as exc:
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        hint = ("HF_HUB_OFFLINE=1 is set and the dataset is not in the local cache" if offline else
                "check your network, that you accepted the dataset's terms on the hub, and HF_TOKEN")
        raise DataError(f"could not fetch dataset {repo_id!r} from the Hugging Face hub: "
                        f"{type(exc).__name__}: {exc}. {hint}; or pass a local folder with "
                        f"Train/ and Test/ JSONL files") from exc
    root = Path(local)
    zips = sorted(root.glob("*.zip"))
    if zips and find_layout_root(root) is None:
        from mmedkit.models.embedded import cache_root

        dest = cache_root() / "data" / repo_id.replace("/", "--") / root.name
        if find_layout_root(dest) is None:
            for z in zips:
                extract_zip(z, dest)
        root = dest
    found = find_layout_root(root)
    if found is None:
        raise DataError(f"dataset {repo_id!r} has no Test/ folder of <Language>.jsonl files (looked in {root})")
    return found


def find_layout_root(root: Path) -> Path | None:
    """The folder under ``root`` (itself included) holding a ``Test/`` or ``Train/`` of JSONL files."""
    if not root.is_dir():
        return None
    nested = {p.parent.parent for p in root.rglob("*.jsonl") if p.parent.name in SPLITS.values()}
    for cand in [root, *sorted(nested)]:
        if any((cand / name).is_dir() for name in SPLITS.values()):
            return cand
    return None


MAX_EXTRACTED_BYTES = 4 << 30
"""Most bytes an archive may expand to."""
MAX_RATIO = 200
"""Most an archive member may expand (text compresses about 5 to 10 times; a zip bomb, thousands)."""
MAX_MEMBERS = 10_000


def extract_zip(path: Path, dest: Path, *, max_bytes: int = MAX_EXTRACTED_BYTES, max_ratio: int = MAX_RATIO,
                max_members: int = MAX_MEMBERS) -> Path:
    """Extract ``path`` into ``dest`` atomically, refusing members that would escape ``dest`` and archives that
    expand past ``max_bytes`` or more than ``max_ratio`` times (counted while writing, not from the headers);
    a refused archive leaves nothing behind."""
    import shutil
    import zipfile

    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        with zipfile.ZipFile(path) as zf:
            members = [m for m in zf.infolist() if not m.filename.startswith("__MACOSX/")]
            if len(members) > max_members:
                raise DataError(f"archive has {len(members)} members (limit {max_members})", path=str(path))
            total = 0
            for member in members:
                total += _extract_member(zf, member, tmp, path, max_bytes - total, max_ratio)
    except (zipfile.BadZipFile, OSError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DataError(f"unreadable archive: {exc}", path=str(path)) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


def _extract_member(zf: Any, member: Any, root: Path, archive: Path, budget: int, max_ratio: int) -> int:
    """Write one member under ``root``; the bytes written (DataError past ``budget`` or ``max_ratio``)."""
    target = (root / member.filename).resolve()
    if not target.is_relative_to(root.resolve()):
        raise DataError(f"unsafe path {member.filename!r} in archive", path=str(archive))
    if member.is_dir():
        target.mkdir(parents=True, exist_ok=True)
        return 0
    target.parent.mkdir(parents=True, exist_ok=True)
    limit = min(budget, max(member.compress_size, 1024) * max_ratio)
    written = 0
    with zf.open(member) as src, target.open("wb") as out:
        while chunk := src.read(1 << 20):
            written += len(chunk)
            if written > limit:
                raise DataError(f"archive member {member.filename!r} expands past {limit} bytes (limits: "
                                f"{max_ratio} times its compressed size, and the archive's remaining "
                                f"{budget} bytes); refused as a possible zip bomb", path=str(archive))
            out.write(chunk)
    return written


def _option_text(value: Any, letter: str, path: str, line: int) -> str:
    """An option's text: a string, or a finite number written as one (null, lists, objects, NaN are errors)."""
    ok = isinstance(value, str) or (isinstance(value, (int, float)) and not isinstance(value, bool)
                                    and math.isfinite(value))
    if not ok:
        raise DataError(f"option {letter} must be text, got {json.dumps(value)}", path=path, line=line,
                        field=f"options.{letter}")
    return str(value)


def _as_bool(value: Any) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value.strip().lower() in {"1", "true", "yes"}
    return bool(value)


def parse_record(rec: Any, *, language: Language, split: str, path: str, line: int,
                 multi_answer: bool) -> Item:
    """Turn one MMedBench JSON record into an :class:`Item`, validating every field."""
    if not isinstance(rec, dict):
        raise DataError(f"expected a JSON object, got {type(rec).__name__}", path=path, line=line)
    question = rec.get("question")
    if not isinstance(question, str) or not question.strip():
        raise DataError("missing or empty question", path=path, line=line, field="question")
    raw_options = rec.get("options")
    if not isinstance(raw_options, dict):
        raise DataError("expected an object of letter -> option text", path=path, line=line,
                        field="options")
    options = {str(k).strip().upper(): _option_text(v, str(k), path, line)
               for k, v in raw_options.items() if str(k).strip()}
    if not options:
        raise DataError("empty option set", path=path, line=line, field="options")
    if "answer_idx" not in rec:
        raise DataError("missing answer", path=path, line=line, field="answer_idx")
    answer = parse_answer(rec["answer_idx"], options, path=path, line=line)
    meta = rec.get("meta_info")
    meta = dict(meta) if isinstance(meta, dict) else ({"meta_info": meta} if meta else {})
    subject = rec.get("subject") or meta.get("subject") or meta.get("field") or meta.get("category")
    item_id = str(rec.get("id") or rec.get("realidx") or f"{language.code}-{split}-{line}")
    rationale = rec.get("rationale")
    n_answers = rec.get("n_answers") if isinstance(rec.get("n_answers"), int) else language.answer_count(question)
    if isinstance(rec.get("multi_answer"), bool):  # written by mmedkit: the task's own flag per item
        multi_answer = rec["multi_answer"]
    elif n_answers:
        multi_answer = n_answers > 1
    return Item(
        id=item_id,
        language=language.code,
        question=question,
        options=options,
        answer=answer,
        rationale=rationale if isinstance(rationale, str) and rationale.strip() else None,
        human_checked=_as_bool(rec.get("human_checked")),
        subject=str(subject) if subject else None,
        split=split,
        multi_answer=multi_answer or len(answer) > 1,
        n_answers=n_answers,
        meta={**meta, "source_file": path, "source_line": line},
    )


def _is_multi(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return True
    return isinstance(value, str) and len([p for p in value.replace(";", ",").split(",") if p.strip()]) > 1


def load_file(path: Path, language: Language, split: str, *, skip_invalid: bool = False,
              report: LoadReport | None = None) -> list[Item]:
    """Load one ``<Language>.jsonl`` file.

    A file is a multi-answer task when any of its records gives the answer as a list or several
    letters (FrenchMedMCQA): then every item of the file may be answered with any subset.
    """
    def skip(err: DataError) -> None:
        if report is not None:
            report.skipped.append(str(err))

    records = list(read_records(path, skip_invalid=skip_invalid, on_skip=skip))
    multi = any(isinstance(r.data, dict) and _is_multi(r.data.get("answer_idx")) for r in records)
    items: list[Item] = []
    for rec in records:
        try:
            items.append(parse_record(rec.data, language=language, split=split, path=str(path),
                                      line=rec.line, multi_answer=multi))
        except DataError as exc:
            if not skip_invalid:
                raise
            skip(exc)
    seen: set[str] = set()
    unique = []
    for it in items:
        if it.id in seen:
            err = DataError(f"duplicate item id {it.id!r}", path=str(path), line=it.meta["source_line"], field="id")
            if not skip_invalid:
                raise err
            skip(err)
            continue
        seen.add(it.id)
        unique.append(it)
    return unique


def load_benchmark(data: str | os.PathLike[str], *, split: str = "test",
                   langs: str | Iterable[str] | None = None, skip_invalid: bool = False,
                   report: LoadReport | None = None, limit: int | None = None) -> list[Item]:
    """Load ``split`` of an MMedBench-layout benchmark for the requested languages.

    Languages whose file is missing raise :class:`DataError` when they were asked for
    explicitly, and are skipped (noted in ``report``) when ``langs`` is None.
    """
    if split.lower() not in SPLITS:
        raise DataError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    root = resolve_data(data)
    folder = root / SPLITS[split.lower()]
    if not folder.is_dir():
        raise DataError(f"no {SPLITS[split.lower()]}/ folder in {root} (expected the MMedBench layout "
                        f"<root>/Train/<Language>.jsonl and <root>/Test/<Language>.jsonl)")
    explicit = langs is not None and langs != "" and langs != "all"
    report = report if report is not None else LoadReport()
    items: list[Item] = []
    for lang in parse_langs(langs):
        path = folder / f"{lang.name}.jsonl"
        if not path.is_file():
            if explicit:
                raise DataError(f"missing file for {lang.name}: {path}")
            report.skipped.append(f"{path}: not found, language {lang.code} skipped")
            continue
        got = load_file(path, lang, split.lower(), skip_invalid=skip_invalid, report=report)
        if limit is not None:
            got = got[:limit]
        report.loaded[lang.code] = len(got)
        items.extend(got)
    if not items:
        raise DataError(f"no items loaded from {folder}")
    return items


def write_benchmark(items: Iterable[Item], root: str | os.PathLike[str]) -> dict[str, int]:
    """Write items to ``root`` in the MMedBench layout (atomic per file); returns counts per file."""
    from mmedkit.languages import get_language
    from mmedkit.utils import atomic_write_text

    groups: dict[Path, list[str]] = {}
    for it in items:
        path = Path(root) / SPLITS[it.split] / f"{get_language(it.language).name}.jsonl"
        rec = it.to_record()
        rec.get("meta_info", {}).pop("source_file", None)
        rec.get("meta_info", {}).pop("source_line", None)
        if rec.get("meta_info") == {}:
            rec.pop("meta_info")
        groups.setdefault(path, []).append(json.dumps(rec, ensure_ascii=False))
    for path, lines in groups.items():
        atomic_write_text(path, "\n".join(lines) + "\n")
    return {str(p): len(v) for p, v in groups.items()}
