"""Text corpora by name: Python's help topics (offline) and WikiText (downloaded)."""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from ..utils import MinisslError
from .real import ENV_VAR, default_root

TEXT_SPLITS = ("train", "valid", "all")  # splits of the embedded corpus, "pydoc"


def _topics() -> dict[str, str]:
    try:
        from pydoc_data.topics import topics
    except ImportError:  # some Linux distributions ship the standard library without it
        raise MinisslError(
            "The text corpus comes from the standard library module pydoc_data, which this "
            "Python lacks. Install your distribution's full standard library (e.g. the "
            "python3-doc or libpython3-stdlib package) or use a python.org / conda Python."
        ) from None
    return topics


@dataclass(frozen=True)
class _PublicCorpus:
    """Where a downloadable corpus lives on the web and on disk."""

    pretty: str  # the name people know it by
    archive: str  # the zip file as published
    folder: str  # the folder inside the zip that holds the split files
    urls: tuple[str, ...]  # tried in order; the first is the authors' own
    sha256: str  # of the archive
    size_mb: int  # of the archive
    about: str  # one line for text_corpora()

    def member(self, split: str) -> str:
        return f"{self.folder}/wiki.{split}.raw"


# WikiText, Merity, Xiong, Bradbury and Socher, "Pointer Sentinel Mixture Models", 2016,
# arXiv:1609.07843: Wikipedia's Good and Featured articles. The "raw" archives keep case,
# punctuation and every word (no <unk>); each holds wiki.{train,valid,test}.raw, UTF-8 text
# with one paragraph or heading per line (" = Title = ", " = = Section = = ").
PUBLIC_SPLITS = ("train", "valid", "test")
_PUBLIC: dict[str, _PublicCorpus] = {
    "wikitext2": _PublicCorpus(
        pretty="WikiText-2 (raw)",
        archive="wikitext-2-raw-v1.zip",
        folder="wikitext-2-raw",
        urls=(
            "https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-2-raw-v1.zip",
            "https://huggingface.co/datasets/ggml-org/ci/resolve/main/wikitext-2-raw-v1.zip",
        ),
        sha256="ef7edb566e3e2b2d31b29c1fdb0c89a4cc683597484c3dc2517919c615435a11",
        size_mb=5,
        about="WikiText-2 raw: 600 Wikipedia articles, about 2 million words (download, 5 MB)",
    ),
    "wikitext103": _PublicCorpus(
        pretty="WikiText-103 (raw)",
        archive="wikitext-103-raw-v1.zip",
        folder="wikitext-103-raw",
        urls=("https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-103-raw-v1.zip",),
        sha256="91c00ae287f0d699e18605c84afc9e45c192bc6b7797ff8837e5474655a33794",
        size_mb=192,
        about="WikiText-103 raw: 28,475 Wikipedia articles, about 103 million words "
        "(download, 192 MB)",
    ),
}


def text_corpora() -> dict[str, str]:
    """The corpora :func:`text_corpus` knows by name, each with a one-line description.

    Example:
        >>> list(text_corpora())
        ['pydoc', 'wikitext2', 'wikitext103']
    """
    out = {"pydoc": "Python's help topics, about half a million characters (offline)"}
    out.update({name: c.about for name, c in _PUBLIC.items()})
    return out


def text_splits(name: str) -> tuple[str, ...]:
    """The splits of text corpus ``name`` (WikiText has a test split, the embedded one not).

    Example:
        >>> text_splits("wikitext2")
        ('train', 'valid', 'test')
    """
    if name == "pydoc":
        return TEXT_SPLITS
    if name in _PUBLIC:
        return PUBLIC_SPLITS
    raise ValueError(f"unknown text corpus {name!r}; use one of {list(text_corpora())}")


def text_corpus(
    name_or_split: str | None = None,
    split: str | None = None,
    *,
    root: str | Path | None = None,
    download: bool = False,
) -> str:
    """A text corpus as one string: Python's help topics (offline) or WikiText (downloaded).

    ``text_corpus(split)`` (or ``text_corpus("pydoc", split)``) is the embedded corpus: the
    text ``help("if")``, ``help("NUMBERS")``, ... show, from ``pydoc_data.topics.topics``
    (about 80 topics, close to half a million characters of prose and code examples). The
    topics are joined in sorted order, so the corpus is the same on every run of one Python
    version (it changes a little between versions). ``"train"`` is the first ~90% of the
    characters and ``"valid"`` the rest, cut between two topics.

    ``text_corpus("wikitext2", split)`` is WikiText-2 (raw), and ``"wikitext103"`` the larger
    WikiText-103: Merity, Xiong, Bradbury and Socher, "Pointer Sentinel Mixture Models", 2016,
    arXiv:1609.07843. The file ``wiki.{split}.raw`` is returned exactly as published: one
    paragraph or heading (`` = Title = ``) per line, with the corpus's own tokenisation of
    some punctuation (``1 @,@ 000``, ``state @-@ of``). It is read from
    ``root/wikitext-2-raw/`` (the archive extracted) or straight from
    ``root/wikitext-2-raw-v1.zip``; ``download=True`` fetches the archive once (standard
    library only), checks its SHA-256 and extracts it.

    Args:
        name_or_split: a corpus name from :func:`text_corpora` (``"pydoc"``,
            ``"wikitext2"``, ``"wikitext103"``), or a split of the embedded corpus
            (``"train"``, ``"valid"``, ``"all"``); default: the embedded corpus.
        split: the split of a named corpus: ``"train"`` (about 90%), ``"valid"`` or
            ``"all"`` for ``pydoc`` (default ``"all"``); ``"train"``, ``"valid"`` or
            ``"test"`` for WikiText (default ``"train"``).
        root: folder of downloaded data (default ``$MINISSL_DATA`` or
            ``~/.cache/minissl/data``, the same as the image data sets); unused by ``pydoc``.
        download: fetch a missing WikiText archive.

    Returns:
        The text, a ``str`` (WikiText-2 train: about 11 million characters).

    Example:
        >>> text = text_corpus()
        >>> len(text) > 100_000, text == text_corpus(), text == text_corpus("pydoc", "all")
        (True, True, True)
        >>> len(text_corpus("train")) + len(text_corpus("valid")) < len(text)
        True
    """
    if name_or_split is None or name_or_split == "pydoc":
        return _pydoc_corpus("all" if split is None else split)
    if name_or_split in TEXT_SPLITS:
        if split is not None:
            raise ValueError(
                f"text_corpus({name_or_split!r}, {split!r}): the first argument is a split of "
                f"the embedded corpus, so there is no second split; for a named corpus write "
                f"text_corpus(name, split), e.g. text_corpus('pydoc', {split!r})"
            )
        return _pydoc_corpus(name_or_split)
    if name_or_split in _PUBLIC:
        return _public_corpus(name_or_split, "train" if split is None else split, root, download)
    raise ValueError(
        f"unknown text corpus or split {name_or_split!r}; use one of the corpora "
        f"{list(text_corpora())} (e.g. text_corpus('wikitext2', 'train')) or a split of the "
        f"embedded corpus {list(TEXT_SPLITS)}"
    )


def _pydoc_corpus(split: str) -> str:
    if split not in TEXT_SPLITS:
        raise ValueError(
            f"unknown split {split!r} for the text corpus; use one of {list(TEXT_SPLITS)}"
        )
    topics = _topics()
    keys = sorted(topics)
    if split != "all":
        # Cut at the topic boundary nearest to 90% of the characters (whole topics, so no
        # passage lands in both splits).
        sizes = [len(topics[k]) for k in keys]
        total, running, cut = sum(sizes), 0, 0
        for i, size in enumerate(sizes):
            if abs(running + size - 0.9 * total) < abs(running - 0.9 * total):
                cut = i + 1
            running += size
        keys = keys[:cut] if split == "train" else keys[cut:]
    return "\n\n".join(topics[k].strip() for k in keys) + "\n"


def _public_missing(name: str, root: Path) -> MinisslError:
    c = _PUBLIC[name]
    return MinisslError(
        f"{c.pretty} was not found under {root} (looked for {root / c.archive} and the "
        f"extracted folder {root / c.folder}). Get it with `python -m minissl download {name}` "
        f"or text_corpus({name!r}, download=True) (about {c.size_mb} MB, once), or download "
        f"{c.urls[0]} yourself and put the zip file (or what it extracts to) in {root}. Point "
        f"root=... or ${ENV_VAR} at another folder if the data is elsewhere."
    )


def _public_corrupt(name: str, path: Path, why: str) -> MinisslError:
    c = _PUBLIC[name]
    return MinisslError(
        f"{c.pretty} file {path} looks corrupt or truncated ({why}). Delete it and download it "
        f"again with `python -m minissl download {name}` or text_corpus({name!r}, "
        f"download=True)."
    )


def _download_public(name: str, root: Path) -> Path:
    """Fetch the archive (trying each URL in turn), check its SHA-256, keep it in ``root``."""
    c = _PUBLIC[name]
    root.mkdir(parents=True, exist_ok=True)
    target = root / c.archive
    part = target.with_name(target.name + ".part")  # never leave a half file under the name
    print(f"minissl: downloading {c.pretty} into {root} (about {c.size_mb} MB, once)")
    failures = []
    for url in c.urls:
        digest = hashlib.sha256()
        try:
            with urllib.request.urlopen(url, timeout=60) as response, open(part, "wb") as f:
                while chunk := response.read(1 << 20):
                    digest.update(chunk)
                    f.write(chunk)
        except (urllib.error.URLError, OSError) as err:  # URLError and timeouts are OSErrors
            failures.append(f"{url}: {err}")
            continue
        if digest.hexdigest() != c.sha256:
            failures.append(f"{url}: SHA-256 {digest.hexdigest()} is not the published {c.sha256}")
            continue
        part.replace(target)
        return target
    part.unlink(missing_ok=True)
    raise MinisslError(
        f"could not download {c.pretty} ({'; '.join(failures)}). Download {c.urls[0]} "
        f"yourself and put {c.archive} in {root}."
    )


def _public_corpus(name: str, split: str, root: str | Path | None, download: bool) -> str:
    c = _PUBLIC[name]
    if split not in PUBLIC_SPLITS:
        raise ValueError(f"unknown split {split!r} for {name!r}; use one of {list(PUBLIC_SPLITS)}")
    root = Path(root).expanduser() if root is not None else default_root()
    archive, extracted = root / c.archive, root / c.member(split)
    if not archive.exists() and not extracted.exists():
        if not download:
            raise _public_missing(name, root)
        _download_public(name, root)
    if archive.exists():  # read the member straight from the zip: its CRC-32 is checked
        try:
            with zipfile.ZipFile(archive) as zf:
                data = zf.read(c.member(split))
        except KeyError:
            raise _public_corrupt(name, archive, f"it has no member {c.member(split)}") from None
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as err:
            raise _public_corrupt(name, archive, f"{type(err).__name__}: {err}") from None
        path = archive
    else:
        data, path = extracted.read_bytes(), extracted
    if not data:
        raise _public_corrupt(name, path, f"wiki.{split}.raw is empty")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise _public_corrupt(name, path, f"wiki.{split}.raw is not UTF-8 text: {err}") from None
