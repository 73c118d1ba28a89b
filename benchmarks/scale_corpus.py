"""A larger real corpus for the scale benchmark, built offline, and slices of it by chunk count.

    python -m benchmarks.scale_corpus [--sizes 1000,5000,20000] [--cache .cache/scale]

Distractors: the Python 3.11 documentation (English HTML, Debian package ``python3.11-doc``) and the Chinese manual
pages (Debian package ``manpages-zh``, simplified-Chinese pages only), fetched with ``apt-get download`` (no root
needed) and unpacked with ``dpkg-deb -x`` into the cache. Manual pages are troff: converted here to Markdown (a small
troff stripper; groff is not assumed). Nothing is committed: everything lives under the git-ignored ``.cache/``.

A slice of N chunks is the shipped policy corpus (always whole, so the development set is answerable at every size)
plus distractor documents in one fixed order until the chunk count reaches N; slices nest (the 1k slice's documents
are the first ones of the 5k slice's) and keep the English/Chinese mix of the whole pool. Chunks are counted with
the indexer's own loader and chunker at default settings, once per document (cached by content hash).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / ".cache" / "scale"
PACKAGES = ("python3.11-doc", "manpages-zh")
PYDOC = "usr/share/doc/python3.11/html"
MANDIR = "usr/share/man/zh_CN"  # zh_TW holds the same pages in traditional script: near duplicates, left out
# Python documentation folders worth reading; the indexes (genindex, search, module index) are lists of links.
PYDOC_PARTS = ("library", "c-api", "reference", "tutorial", "howto", "whatsnew", "faq", "extending", "using",
               "installing", "distributing", "install")
SEED = 20251127
DEFAULT_SIZES = (1000, 5000, 20000)


class ScaleCorpusError(Exception):
    """The scale corpus cannot be built here (no apt-get, a package not found...)."""


# --- troff (man pages) to Markdown ---

_ESCAPES = [
    (re.compile(r"\\f(?:\[[^\]]*\]|\(..|.)"), ""),  # font changes: \fB \fI \fR \fP \f(CW \f[B]
    (re.compile(r"\\s[+-]?\d+"), ""),  # point size
    (re.compile(r"\\\*(?:\[[^\]]*\]|\(..|.)"), ""),  # strings defined elsewhere
    (re.compile(r"\\[&,/%|^c]"), ""),  # zero-width and spacing hints
]
_NAMED = {"em": "—", "en": "–", "lq": "“", "rq": "”", "oq": "‘", "cq": "’", "co": "©", "rg": "®", "bu": "•",
          "mu": "×", "de": "°", "aq": "'", "dq": '"', "ti": "~", "ha": "^", "ga": "`", "rs": "\\", "hy": "-",
          "tm": "™", "<=": "≤", ">=": "≥", "->": "→", "<-": "←", "pl": "+", "mi": "-", "eq": "="}
_NAMED_RE = re.compile(r"\\\((..)|\\\[([^\]]*)\]")
_FONT_MACROS = {"B", "I", "SM", "SB", "BR", "RB", "IR", "RI", "BI", "IB"}
_BREAKS = {"PP", "LP", "P", "sp", "br", "TP", "TQ", "RS", "RE", "nf", "fi", "in", "ti", "ne", "HP", "Vb", "Ve",
           "EX", "EE", "UE", "ME", "PD", "ad", "na", "hy", "nh", "ft", "ps", "vs", "ll", "ta", "bp", "ce", "ul",
           "ig", "ds", "nr", "de", "am", "if", "ie", "el", "rm", "tr", "so", "cs", "ss", "fam", "lf", "pc", "mk",
           "rt", "ev", "\\\""}


def _inline(text: str) -> str:
    for pattern, repl in _ESCAPES:
        text = pattern.sub(repl, text)
    text = _NAMED_RE.sub(lambda m: _NAMED.get(m.group(1) or m.group(2), ""), text)
    return text.replace("\\-", "-").replace("\\e", "\\").replace("\\.", ".").replace("\\ ", " ").replace("\\~", " ").replace("\\0", " ")


def _args(rest: str) -> list[str]:
    """A request's arguments: space-separated, double quotes group."""
    return [(quoted or bare).replace('""', '"') for quoted, bare in re.findall(r'"((?:[^"]|"")*)"|(\S+)', rest)]


def troff_to_markdown(source: str) -> tuple[str, str]:
    """(title, Markdown text) of a man page's troff source: sections become headings, macros and escapes go,
    the words stay. Returns ("", "") for a page that only includes another one (``.so``)."""
    lines_out: list[str] = []
    name, section, summary = "", "", ""
    in_name = False
    skipping_macro = False
    for raw in source.splitlines():
        line = raw.rstrip()
        if skipping_macro:  # a macro definition: .de XX ... ..
            skipping_macro = line != ".."
            continue
        if line.startswith((".\\\"", "'\\\"", '.\\"', "\\\"")) or line in (".", "'"):
            continue
        if line.startswith((".", "'")):
            request, _, rest = line[1:].strip().partition(" ")
            rest = rest.strip()
            if request == "so" and not lines_out:
                return "", ""
            if request in ("de", "am", "ig"):
                skipping_macro = True
                continue
            if request == "TH":
                args = _args(rest)
                name, section = (args + ["", ""])[:2]
                continue
            if request in ("SH", "SS"):
                heading = _inline(" ".join(_args(rest))).strip()
                in_name = heading.upper() in ("NAME", "名称", "名字", "名稱", "名 称")
                lines_out += ["", ("## " if request == "SH" else "### ") + heading, ""]
                continue
            if request in _FONT_MACROS:
                # .B/.I set their words in one font; .BR/.IR... alternate fonts between words written together
                text = _inline((" " if request in ("B", "I", "SM", "SB") else "").join(_args(rest)))
                if text:
                    lines_out.append(text)
                continue
            if request == "IP":
                args = _args(rest)
                lines_out.append("")
                if args and args[0] not in ("", "\\(bu", "*", "-"):
                    lines_out.append(_inline(args[0]))
                continue
            if request in _BREAKS or len(request) <= 3:  # unknown short requests: layout, not words
                if request not in ("br",):
                    lines_out.append("")
                continue
        text = _inline(line)
        if in_name and not summary and text.strip():
            summary = text.strip()
        lines_out.append(text)
    body = re.sub(r"\n{3,}", "\n\n", "\n".join(lines_out)).strip()
    if not body:
        return "", ""
    label = f"{name.lower()}({section})" if name else ""
    title = summary or label
    if label and summary and not summary.lower().startswith(name.lower()):
        title = f"{label}: {summary}"
    return title, body


def man_page_markdown(source: str) -> str:
    """A man page as a Markdown file with a front-matter title (what the corpus loader reads)."""
    title, body = troff_to_markdown(source)
    if not body:
        return ""
    title = title.replace("\n", " ").replace('"', "'")
    return f"---\ntitle: \"{title}\"\n---\n\n{body}\n"


# --- slicing ---


def mixed_order(pools: dict[str, list[tuple[str, int]]], seed: int = SEED) -> list[tuple[str, int]]:
    """One fixed order of all (document, chunks) of several pools: each pool shuffled with the seed, then merged so
    that every prefix keeps each pool's share of the chunks (the pool furthest behind its share goes next)."""
    rng = random.Random(seed)
    queues = {}
    for name in sorted(pools):
        items = sorted(pools[name])
        rng.shuffle(items)
        queues[name] = items
    totals = {name: sum(c for _, c in items) or 1 for name, items in queues.items()}
    taken = {name: 0 for name in queues}
    order: list[tuple[str, int]] = []
    while any(queues.values()):
        name = min((n for n in queues if queues[n]), key=lambda n: (taken[n] / totals[n], n))
        doc, chunks = queues[name].pop(0)
        taken[name] += chunks
        order.append((doc, chunks))
    return order


def plan_slice(order: list[tuple[str, int]], base_chunks: int, size: int) -> list[str]:
    """The distractor documents a slice of ``size`` chunks takes, in order, on top of the base corpus: the shortest
    prefix of the order reaching the size. Raises ScaleCorpusError when the whole pool is too small."""
    total, chosen = base_chunks, []
    for doc, chunks in order:
        if total >= size:
            break
        chosen.append(doc)
        total += chunks
    if total < size:
        raise ScaleCorpusError(f"the scale corpus holds {total} chunks, fewer than the {size} asked for")
    return chosen


# --- building ---


def _run(cmd: list[str], cwd: Path) -> None:
    try:
        subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True, timeout=600)
    except FileNotFoundError:
        raise ScaleCorpusError(f"'{cmd[0]}' is not installed (Debian's apt is needed to fetch the scale corpus)") \
            from None
    except subprocess.CalledProcessError as exc:
        last = (exc.stderr or exc.stdout or "").strip().splitlines()[-1:] or ["no output"]
        raise ScaleCorpusError(f"'{' '.join(cmd[:2])}' failed: {last[0]}") from None


def fetch(cache: Path) -> Path:
    """The unpacked Debian packages (downloaded and unpacked once)."""
    root = cache / "debs" / "root"
    done = cache / "debs" / ".unpacked"
    if done.exists():
        return root
    debs = cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    missing = [p for p in PACKAGES if not list(debs.glob(f"{p}_*.deb"))]
    if missing:
        _run(["apt-get", "download", *missing], cwd=debs)
    shutil.rmtree(root, ignore_errors=True)
    for deb in sorted(debs.glob("*.deb")):
        _run(["dpkg-deb", "-x", deb.name, "root"], cwd=debs)
    done.touch()
    return root


def build_pool(cache: Path) -> Path:
    """Every distractor document as a corpus file under cache/pool/ (python-docs/..., manpages-zh/...)."""
    pool = cache / "pool"
    done = pool / ".built"
    if done.exists():
        return pool
    root = fetch(cache)
    shutil.rmtree(pool, ignore_errors=True)
    html = root / PYDOC
    for part in PYDOC_PARTS:
        for src in sorted((html / part).rglob("*.html")) if (html / part).is_dir() else []:
            dest = pool / "python-docs" / src.relative_to(html)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
    for src in sorted((root / MANDIR).rglob("*.gz")):
        source = gzip.decompress(src.read_bytes()).decode("utf-8", errors="replace")
        text = man_page_markdown(source)
        if not text:
            continue  # an alias page (.so)
        stem = src.name[: -len(".gz")]  # ls.1
        dest = pool / "manpages-zh" / src.parent.name / (stem.replace(".", "_") + ".md")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(text, encoding="utf-8")
    done.touch()
    return pool


def count_chunks(folder: Path, cache_file: Path | None = None) -> dict[str, int]:
    """Chunks per document (relative path) at default settings, as the indexer would cut them; unreadable files
    count 0. Counts are cached by content hash."""
    from assistant import documents
    from assistant.chunking import chunk_document
    from assistant.errors import DocumentError
    from assistant.settings import Settings

    settings = Settings(corpus_dir=folder, index_dir=Path("unused"))
    try:
        known = json.loads(cache_file.read_text()) if cache_file and cache_file.exists() else {}
    except ValueError:
        known = {}
    counts, fresh = {}, {}
    for path in documents.discover(folder):
        rel = documents.doc_id_for(path, folder)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        key = f"{settings.chunk_chars}:{settings.chunk_overlap}:{digest}"
        if key not in known:
            try:
                doc = documents.load(path, folder, int(settings.max_file_mb * 1e6))
                known[key] = len(chunk_document(doc, settings.chunk_chars, settings.chunk_overlap)[0])
            except DocumentError:
                known[key] = 0
            fresh[key] = known[key]
        counts[rel] = known[key]
    if cache_file and fresh:
        cache_file.write_text(json.dumps(known))
    return counts


def make_slice(size: int, cache: Path = CACHE, base: Path = REPO / "corpus") -> Path:
    """A corpus folder of at least ``size`` chunks: the shipped corpus plus the first distractors of the fixed
    order. Built once (cache/slices/<size>/), reused while its list of documents is the same."""
    pool = build_pool(cache)
    counts_file = cache / "chunk-counts.json"
    pool_counts = count_chunks(pool, counts_file)
    base_counts = count_chunks(base, counts_file)
    pools: dict[str, list[tuple[str, int]]] = {}
    for doc, chunks in pool_counts.items():
        if chunks:
            pools.setdefault(doc.split("/", 1)[0], []).append((doc, chunks))
    chosen = plan_slice(mixed_order(pools), sum(base_counts.values()), size)
    folder = cache / "slices" / str(size)
    listing = folder / ".documents.json"  # hidden: not a corpus file
    wanted = {"base": sorted(base_counts), "distractors": chosen}
    if listing.exists() and json.loads(listing.read_text()) == wanted:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for rel in base_counts:
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(base / rel, folder / rel)
    for rel in chosen:
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(pool / rel, folder / rel)
    listing.write_text(json.dumps(wanted))
    return folder


def slice_chunks(folder: Path, cache: Path = CACHE) -> int:
    return sum(count_chunks(folder, cache / "chunk-counts.json").values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale_corpus", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)), help="chunk counts of the slices")
    parser.add_argument("--cache", type=Path, default=CACHE, help="cache folder (git-ignored)")
    args = parser.parse_args(argv)
    for size in (int(s) for s in args.sizes.split(",")):
        folder = make_slice(size, args.cache)
        files = sum(1 for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
        print(f"{size}: {folder} ({files} files, {slice_chunks(folder, args.cache)} chunks)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ScaleCorpusError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
