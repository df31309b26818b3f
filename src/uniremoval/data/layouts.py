"""Readers for the usual layouts of public restoration datasets.

Each reader takes a root folder (the dataset's top folder or any folder above it) and
returns a `PairReport`. Conventions (as distributed by the dataset authors and as
re-packaged by MPRNet/Restormer, which many people download instead):

- RESIDE ITS/OTS/SOTS (haze): a ``hazy/`` folder next to ``clear/`` (ITS/OTS) or ``gt/``
  (SOTS indoor/outdoor). Hazy names carry the scattering parameters after the image id:
  ITS ``1_1_0.90179.png`` (id_index_beta... ), OTS/SOTS-outdoor ``0001_0.8_0.2.jpg``
  (id_A_beta), SOTS-indoor ``1400_1.png``; the clear image is ``<id>.<ext>``.
- Rain100L / Rain100H (rain): JORDER's ``rain-001.png`` + ``norain-001.png`` in one folder,
  or ``rainy/`` (or ``rain/``) + ``norain/`` folders with either identical names or the
  ``rain-``/``norain-`` prefixes; re-packaged copies use ``input/`` + ``target/``.
- Rain13K (rain, MPRNet's training mix): ``input/`` + ``target/``, identical names.
- GoPro (blur): ``GOPRO_Large/{train,test}/<sequence>/blur/000047.png`` with
  ``<sequence>/sharp/000047.png`` (``blur_gamma/`` is ignored).
- RealBlur-J / RealBlur-R (blur): ``<scene>/blur/blur_<n>.png`` with ``<scene>/gt/gt_<n>.png``;
  the ``RealBlur_{J,R}_{train,test}_list.txt`` files (``gt_path blur_path`` per line) are
  used when present. Re-packaged copies use ``input/`` + ``target/``.
- SPA-Data (real rain): test sets have ``<id>rain.png`` + ``<id>gt.png`` (also ``_rain``/
  ``_gt``) side by side, or ``rain/`` + ``norain/`` folders; the training set is
  ``real_world/...`` mirrored by ``real_world_gt/...``.
- ``input_target``: any ``input/`` + ``target/`` (also ``lq``/``gt``, ``degraded``/``clean``).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

from .io import list_images
from .paired import Pair, PairReport, match_by_name

_SKIP_DIRS = {".git", "__pycache__"}


def _dirs_named(root: Path, names: set[str], max_depth: int = 6) -> list[Path]:
    """Folders under `root` (root included) whose name (lower case) is in `names`."""
    root = Path(root)
    found: list[Path] = []
    stack = [(root, 0)]
    while stack:
        d, depth = stack.pop()
        if d.name.lower() in names:
            found.append(d)
        if depth >= max_depth:
            continue
        try:
            subs = sorted((p for p in d.iterdir() if p.is_dir() and p.name not in _SKIP_DIRS), reverse=True)
        except OSError:
            continue
        stack += [(s, depth + 1) for s in subs]
    return sorted(found)


def _sibling(d: Path, names: tuple[str, ...]) -> Path | None:
    for n in names:
        for cand in (d.parent / n, d.parent / n.upper(), d.parent / n.capitalize()):
            if cand.is_dir():
                return cand
    return None


def _pairs_of_sibling_dirs(
    root: Path, input_names: set[str], target_names: tuple[str, ...], kind: str, layout: str,
    input_key: Callable[[str], str] = lambda s: s, target_key: Callable[[str], str] = lambda s: s,
) -> PairReport:
    rep = PairReport(layout=layout)
    for d in _dirs_named(root, input_names):
        t = _sibling(d, target_names)
        if t is not None:
            rep.extend(match_by_name(d, t, kind, input_key, target_key))
    rep.layout = layout
    return rep


def reside(root: Path) -> PairReport:
    """RESIDE ITS/OTS/SOTS: ``hazy/`` + ``clear/`` or ``gt/``; hazy ``<id>_*`` -> clear ``<id>``."""
    def key(rel: str) -> str:
        parent, _, stem = rel.rpartition("/")
        return (parent + "/" if parent else "") + stem.split("_")[0]

    return _pairs_of_sibling_dirs(root, {"hazy"}, ("clear", "gt", "GT", "clean"), "haze", "reside", input_key=key)


def _strip_rain_prefix(rel: str) -> str:
    parent, _, stem = rel.rpartition("/")
    stem = re.sub(r"^(no)?rain[-_]?", "", stem, flags=re.I)
    return (parent + "/" if parent else "") + stem


def rain100(root: Path) -> PairReport:
    """Rain100L/H: ``rain-NNN`` + ``norain-NNN`` side by side, or ``rainy|rain`` + ``norain``."""
    rep = _pairs_of_sibling_dirs(
        root, {"rainy", "rain"}, ("norain",), "rain", "rain100", _strip_rain_prefix, _strip_rain_prefix
    )
    # Side-by-side files in one folder (the JORDER release).
    for folder in sorted({p.parent for p in list_images(root) if p.name.lower().startswith("norain-")}):
        if folder.name.lower() in {"norain"}:
            continue
        files = list_images(folder, recursive=False)
        clean = {re.sub(r"^norain-", "", p.stem, flags=re.I): p for p in files if p.name.lower().startswith("norain-")}
        used = set()
        for p in sorted(files):
            if not p.name.lower().startswith("rain-"):
                continue
            k = p.stem[5:]
            if k in clean:
                rep.pairs.append(Pair(p, clean[k], "rain", p.stem))
                used.add(k)
            else:
                rep.unmatched_inputs.append(p)
        rep.unmatched_targets += [p for k, p in sorted(clean.items()) if k not in used]
    return rep


_KIND_HINTS = (
    ("rain", re.compile(r"rain|^spa([^a-z]|$)", re.I)),
    ("haze", re.compile(r"haz|fog|reside|(^|[^a-z])(sots|ots|its)([^a-z]|$)", re.I)),
    ("blur", re.compile(r"blur|gopro|^hide([^a-z]|$)", re.I)),
)


def guess_kind(parts: tuple[str, ...]) -> str:
    """Guess the degradation from folder names (``Rain13K/input`` -> rain), the deepest
    informative name winning; "unknown" when none says."""
    for part in reversed(parts):
        for kind, pat in _KIND_HINTS:
            if pat.search(part):
                return kind
    return "unknown"


def input_target(root: Path, kind: str | None = None) -> PairReport:
    """``input/`` + ``target/`` (also ``lq/``+``gt/``, ``degraded/``+``clean/``), same names.

    Without `kind`, the kind is guessed from the folder names above ``input/`` (re-packaged
    sets such as ``Rain13K/input``, ``GoPro/test/input``), else "unknown".
    """
    rep = PairReport(layout="input_target")
    for inames, tnames in ((("input",), ("target", "groundtruth")), (("lq",), ("gt", "hq")), (("degraded",), ("clean",))):
        sub = _pairs_of_sibling_dirs(root, set(inames), tnames, kind or "unknown", "input_target")
        if kind is None:
            root = Path(root)
            sub.pairs = [
                Pair(p.input, p.target, guess_kind((root.name,) + p.input.parent.parent.relative_to(root).parts), p.name)
                for p in sub.pairs
            ]
        rep.extend(sub)
    return rep


def rain13k(root: Path) -> PairReport:
    """Rain13K (and MPRNet-style test sets): ``input/`` + ``target/``, identical names."""
    rep = input_target(root, "rain")
    rep.layout = "rain13k"
    return rep


def gopro(root: Path) -> PairReport:
    """GoPro: ``<sequence>/blur/NNNNNN.png`` + ``<sequence>/sharp/NNNNNN.png``."""
    return _pairs_of_sibling_dirs(root, {"blur"}, ("sharp",), "blur", "gopro")


def _blur_to_gt(rel: str) -> str:
    parent, _, stem = rel.rpartition("/")
    stem = re.sub(r"(^|_)blur(_|$)", r"\1gt\2", stem, count=1)
    return (parent + "/" if parent else "") + stem


def realblur(root: Path) -> PairReport:
    """RealBlur-J/R: ``<scene>/blur/blur_N.png`` + ``<scene>/gt/gt_N.png`` (or the list files)."""
    root = Path(root)
    lists = sorted(root.rglob("RealBlur*_list.txt"))
    if lists:
        rep = PairReport(layout="realblur")
        for lst in lists:
            rep.extend(pairs_from_list(lst, "blur", base=lst.parent))
        rep.layout = "realblur"
        return rep
    return _pairs_of_sibling_dirs(root, {"blur"}, ("gt",), "blur", "realblur", _blur_to_gt)


def pairs_from_list(list_file: Path, kind: str, base: Path | None = None) -> PairReport:
    """Pairs from a text file with two paths per line; the path with a ``gt``/``sharp``/
    ``norain``/``target``/``clear`` folder or name part is the target. Missing files are reported."""
    base = Path(base) if base is not None else Path(list_file).parent
    target_re = re.compile(r"(^|[/_\\])(gt|sharp|norain|target|clear|groundtruth)([/_.\\]|$)", re.I)
    rep = PairReport(layout="list")
    for line in Path(list_file).read_text().splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        a, b = (base / parts[0].lstrip("/"), base / parts[1].lstrip("/"))
        inp, tgt = (b, a) if target_re.search(parts[0]) and not target_re.search(parts[1]) else (a, b)
        if not inp.is_file():
            rep.unmatched_targets.append(tgt)  # its input is missing
        elif not tgt.is_file():
            rep.unmatched_inputs.append(inp)
        else:
            rep.pairs.append(Pair(inp, tgt, kind, inp.with_suffix("").relative_to(base).as_posix()))
    return rep


def spa(root: Path) -> PairReport:
    """SPA-Data: ``<id>rain.png`` + ``<id>gt.png`` side by side, ``rain/`` + ``norain/``, or
    ``real_world/`` mirrored by ``real_world_gt/``."""
    root = Path(root)
    rep = PairReport(layout="spa")
    suffix_re = re.compile(r"^(.*?)[-_]?(rain|gt)$", re.I)
    folders = sorted({p.parent for p in list_images(root) if suffix_re.match(p.stem) and p.stem.lower().endswith("gt")})
    for folder in folders:
        files = list_images(folder, recursive=False)
        gts, rains = {}, {}
        for p in files:
            m = suffix_re.match(p.stem)
            if m:
                (gts if m.group(2).lower() == "gt" else rains)[m.group(1)] = p
        for k, p in sorted(rains.items()):
            if k in gts:
                rep.pairs.append(Pair(p, gts[k], "rain", p.stem))
            else:
                rep.unmatched_inputs.append(p)
        rep.unmatched_targets += [p for k, p in sorted(gts.items()) if k not in rains]
    rep.extend(_pairs_of_sibling_dirs(root, {"rain"}, ("norain", "gt"), "rain", "spa"))
    for d in _dirs_named(root, {"real_world"}):
        t = d.parent / "real_world_gt"
        if t.is_dir():
            rep.extend(match_by_name(d, t, "rain"))
    rep.layout = "spa"
    return rep


#: Layout name -> reader. `find_pairs(root, "auto")` tries them all.
LAYOUTS: dict[str, Callable[[Path], PairReport]] = {
    "reside": reside,
    "rain100": rain100,
    "gopro": gopro,
    "realblur": realblur,
    "spa": spa,
    "input_target": input_target,
    "rain13k": rain13k,  # same files as input_target; listed last so "auto" prefers the guess
}


def find_pairs(root: Path, layout: str = "auto") -> PairReport:
    """Pairs under `root` with the named layout, or with the layout that finds the most
    pairs when `layout` is "auto" (ties: fewest unmatched files, then the order of LAYOUTS)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder")
    if layout != "auto":
        if layout not in LAYOUTS:
            raise KeyError(f"unknown layout {layout!r}; known: {', '.join(LAYOUTS)}")
        rep = LAYOUTS[layout](root)
        rep.layout = layout
        return rep
    best: PairReport | None = None
    for name, reader in LAYOUTS.items():
        rep = reader(root)
        rep.layout = name
        if best is None or (len(rep.pairs), -rep.problems) > (len(best.pairs), -best.problems):
            best = rep
    assert best is not None
    return best
