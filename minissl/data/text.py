"""Text corpora (Python's help topics, offline; WikiText, downloaded) and tokenizers."""

from __future__ import annotations

import functools
import hashlib
import re
import urllib.error
import urllib.request
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from ..utils import MinisslError
from .real import ENV_VAR, default_root

TEXT_SPLITS = ("train", "valid", "all")  # splits of the embedded corpus, "pydoc"

# Special tokens take the first ids in every tokenizer, in this order.
SPECIALS = ("<pad>", "<unk>", "<mask>", "<bos>", "<eos>")
PAD, UNK, MASK, BOS, EOS = range(len(SPECIALS))


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


class _Tokenizer:
    """Shared parts: the special tokens and the id <-> token tables."""

    pad_id, unk_id, mask_id, bos_id, eos_id = PAD, UNK, MASK, BOS, EOS
    unk_text = "<unk>"  # what decode writes for an unknown token

    def _set_vocab(self, tokens: Iterable[str]) -> None:
        self.itos: list[str] = list(SPECIALS) + [t for t in tokens if t not in SPECIALS]
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(self.itos)}

    @property
    def vocab_size(self) -> int:
        """Number of ids, special tokens included (the size of an embedding table)."""
        return len(self.itos)

    def __len__(self) -> int:
        return self.vocab_size

    @property
    def special_ids(self) -> dict[str, int]:
        """The special tokens' ids, e.g. ``{"pad": 0, "unk": 1, "mask": 2, "bos": 3, "eos": 4}``."""
        return {name: i for i, name in enumerate(("pad", "unk", "mask", "bos", "eos"))}

    def _wrap(self, ids: list[int], add_bos: bool, add_eos: bool) -> list[int]:
        return ([self.bos_id] if add_bos else []) + ids + ([self.eos_id] if add_eos else [])

    def _special_text(self, i: int, skip_special: bool) -> str:
        if i == self.unk_id:
            return self.unk_text
        return "" if skip_special else self.itos[i]

    @staticmethod
    def _ids(ids: Sequence[int] | torch.Tensor) -> list[int]:
        return ids.flatten().tolist() if isinstance(ids, torch.Tensor) else [int(i) for i in ids]

    def decode(self, ids: Sequence[int] | torch.Tensor, *, skip_special: bool = True) -> str:
        """Map ids back to text; ``skip_special`` drops pad/mask/bos/eos instead of naming them.

        Byte tokens (ids ``byte_offset`` to ``byte_offset + 255``, where the tokenizer has
        them) are joined into one UTF-8 sequence before decoding, so a character that was
        split into bytes comes back whole.
        """
        out: list[str] = []
        pending = bytearray()  # consecutive byte tokens form one UTF-8 sequence
        lo = getattr(self, "byte_offset", None)
        for i in self._ids(ids):
            if lo is not None and lo <= i < lo + 256:
                pending.append(i - lo)
                continue
            if pending:
                out.append(pending.decode("utf-8", errors="replace"))
                pending.clear()
            if 0 <= i < len(SPECIALS):
                out.append(self._special_text(i, skip_special))
            elif 0 <= i < self.vocab_size:
                out.append(self.itos[i])
            else:
                raise ValueError(f"id {i} is out of range for vocab_size {self.vocab_size}")
        if pending:
            out.append(pending.decode("utf-8", errors="replace"))
        return "".join(out)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size})"


class CharTokenizer(_Tokenizer):
    """One id per character, with a byte fallback so that any text round-trips.

    Characters seen by :meth:`fit` get their own ids (in code-point order, after the five
    special tokens). With ``byte_fallback=True`` (the default) 256 more ids stand for the
    bytes of UTF-8: a character never seen is encoded as its bytes, so
    ``decode(encode(s)) == s`` holds for every string. With ``byte_fallback=False`` an unseen
    character becomes ``unk_id`` and decodes to U+FFFD (the replacement character).

    Args:
        chars: the characters of the vocabulary; usually left out and learnt by ``fit``.
        byte_fallback: reserve byte ids for unseen characters.

    Example:
        >>> tok = CharTokenizer.from_text("hello world")
        >>> ids = tok.encode("hello")
        >>> ids[:3], tok.decode(ids)
        ([8, 7, 9], 'hello')
        >>> tok.decode(tok.encode("héllo!"))  # unseen 'é' and '!' go through bytes
        'héllo!'
    """

    unk_text = "\ufffd"

    def __init__(self, chars: Iterable[str] = (), *, byte_fallback: bool = True) -> None:
        self.byte_fallback = byte_fallback
        self._build(sorted(set(chars)))

    def _build(self, chars: list[str]) -> None:
        if any(len(c) != 1 for c in chars):
            raise ValueError("CharTokenizer vocabulary entries must be single characters")
        self.chars = chars
        byte_tokens = [f"<0x{b:02X}>" for b in range(256)] if self.byte_fallback else []
        self._set_vocab(chars + byte_tokens)
        # Ids of the byte tokens; the byte value is id - byte_offset.
        self.byte_offset = len(SPECIALS) + len(chars) if self.byte_fallback else None

    @classmethod
    def from_text(cls, text: str, *, byte_fallback: bool = True) -> CharTokenizer:
        """A tokenizer whose vocabulary is the set of characters of ``text``."""
        return cls(byte_fallback=byte_fallback).fit(text)

    def fit(self, text: str) -> CharTokenizer:
        """Set the vocabulary to the characters of ``text``; returns ``self``."""
        self._build(sorted(set(text)))
        return self

    def encode(self, text: str, *, add_bos: bool = False, add_eos: bool = False) -> list[int]:
        """Map ``text`` to a list of ids (``torch.tensor(ids)`` makes a LongTensor)."""
        ids = []
        stoi = self.stoi
        for ch in text:
            i = stoi.get(ch)
            if i is not None:
                ids.append(i)
            elif self.byte_fallback:
                ids.extend(self.byte_offset + b for b in ch.encode("utf-8"))
            else:
                ids.append(self.unk_id)
        return self._wrap(ids, add_bos, add_eos)


# Words (letters, digits, underscore), single punctuation marks, and runs of whitespace:
# the pieces cover the text exactly, so joining them gives it back.
_PIECES = re.compile(r"\w+|[^\w\s]|\s+")


class WordTokenizer(_Tokenizer):
    """One id per word, punctuation mark or whitespace run; rare words become ``unk``.

    Text is cut into words (``\\w+``), single punctuation marks and runs of whitespace, so
    ``decode(encode(s)) == s`` whenever every word of ``s`` is in the vocabulary. A word
    that is not becomes ``unk_id`` (decoded as ``"<unk>"``); a whitespace run that is not
    falls back to its single characters, so layout survives.

    Args:
        words: the vocabulary; usually left out and learnt by ``fit``.
        lowercase: fold words to lower case before the lookup (then only the lower-cased
            text round-trips).

    Example:
        >>> tok = WordTokenizer.from_text("the cat sat on the mat.", max_vocab=100)
        >>> tok.tokenize("the cat, the hat")
        ['the', ' ', 'cat', ',', ' ', 'the', ' ', 'hat']
        >>> tok.decode(tok.encode("the cat sat."))
        'the cat sat.'
        >>> tok.decode(tok.encode("the dog sat."))
        'the <unk> sat.'
    """

    def __init__(self, words: Iterable[str] = (), *, lowercase: bool = False) -> None:
        self.lowercase = lowercase
        self._set_vocab(list(words))

    @classmethod
    def from_text(
        cls, text: str, *, max_vocab: int | None = None, min_freq: int = 1, lowercase: bool = False
    ) -> WordTokenizer:
        """A tokenizer whose vocabulary is the frequent pieces of ``text`` (see :meth:`fit`)."""
        return cls(lowercase=lowercase).fit(text, max_vocab=max_vocab, min_freq=min_freq)

    def tokenize(self, text: str) -> list[str]:
        """Cut text into the pieces that get ids (words, punctuation, whitespace runs)."""
        return _PIECES.findall(text)

    def fit(self, text: str, *, max_vocab: int | None = None, min_freq: int = 1) -> WordTokenizer:
        """Learn the vocabulary: pieces seen at least ``min_freq`` times, most frequent first.

        Args:
            text: the training text.
            max_vocab: cap on ``vocab_size``, the five special tokens included.
            min_freq: pieces seen fewer times are left out (and encode as ``unk``).
        """
        pieces = self.tokenize(text.lower() if self.lowercase else text)
        counts = Counter(pieces)
        # Single whitespace characters always get an id: unseen whitespace runs fall back on them.
        singles = sorted({ch for p in counts if p.isspace() for ch in p})
        ranked = sorted(
            (p for p, c in counts.items() if c >= min_freq and p not in singles),
            key=lambda p: (-counts[p], p),  # ties broken alphabetically: deterministic
        )
        if max_vocab is not None:
            room = max_vocab - len(SPECIALS) - len(singles)
            if room < 0:
                raise ValueError(f"max_vocab={max_vocab} is too small to hold the special tokens")
            ranked = ranked[:room]
        self._set_vocab(singles + ranked)
        return self

    def encode(self, text: str, *, add_bos: bool = False, add_eos: bool = False) -> list[int]:
        """Map ``text`` to a list of ids (``torch.tensor(ids)`` makes a LongTensor)."""
        stoi, ids = self.stoi, []
        for piece in self.tokenize(text):
            key = piece.lower() if self.lowercase else piece
            i = stoi.get(key)
            if i is not None:
                ids.append(i)
            elif piece.isspace():
                ids.extend(stoi.get(ch, self.unk_id) for ch in piece)
            else:
                ids.append(self.unk_id)
        return self._wrap(ids, add_bos, add_eos)

    def decode(self, ids: Sequence[int] | torch.Tensor, *, skip_special: bool = True) -> str:
        """Map ids back to text; ``skip_special`` drops pad/mask/bos/eos instead of naming them."""
        out = []
        for i in self._ids(ids):
            if not 0 <= i < self.vocab_size:
                raise ValueError(f"id {i} is out of range for vocab_size {self.vocab_size}")
            out.append(self._special_text(i, skip_special) if i < len(SPECIALS) else self.itos[i])
        return "".join(out)


# Pieces for byte-pair encoding, in the manner of GPT-2's pre-tokenizer: a word or a run of
# punctuation takes the one space before it, other whitespace stays apart. Merges never cross
# a piece, and the pieces cover the text exactly.
_BPE_PIECES = re.compile(r" ?\w+| ?[^\w\s]+|\s+(?!\S)|\s+")


class BPETokenizer(_Tokenizer):
    """Byte-pair encoding learnt on a text: frequent neighbours are merged into one token.

    Sennrich, Haddow and Birch, "Neural Machine Translation of Rare Words with Subword Units",
    2016, arXiv:1508.07909. Training starts from the characters of the text and repeatedly
    merges the most frequent adjacent pair (counted inside pre-tokenised pieces, as GPT-2
    does, so a token never spans two words) until the vocabulary is full. Encoding applies
    the learnt merges in the order they were learnt. Like :class:`CharTokenizer`, 256 byte
    ids stand for the UTF-8 bytes of characters never seen in training, so
    ``decode(encode(s)) == s`` for every string.

    The ids are: the five special tokens, the characters, the 256 bytes, then one id per
    merged token in the order it was learnt.

    Args:
        chars: the base characters; usually left out and learnt by :meth:`fit`.
        merges: the learnt merges ``(left, right)`` in order; usually learnt by :meth:`fit`.

    Example:
        >>> tok = BPETokenizer.from_text("low lower lowest " * 20, vocab_size=280)
        >>> tok.merges[:3]
        [('l', 'o'), ('lo', 'w'), (' ', 'low')]
        >>> [tok.itos[i] for i in tok.encode("slow lowest")]
        ['s', 'low', ' lowest']
        >>> tok.decode(tok.encode("slow π!"))  # unseen characters go through bytes
        'slow π!'
    """

    unk_text = "\ufffd"

    def __init__(self, chars: Iterable[str] = (), merges: Iterable[tuple[str, str]] = ()) -> None:
        self._build(sorted(set(chars)), [tuple(m) for m in merges])

    def _build(self, chars: list[str], merges: list[tuple[str, str]]) -> None:
        if any(len(c) != 1 for c in chars):
            raise ValueError("BPETokenizer base vocabulary entries must be single characters")
        self.chars, self.merges = chars, merges
        self.ranks: dict[tuple[str, str], int] = {m: r for r, m in enumerate(merges)}
        merged = list(dict.fromkeys(a + b for a, b in merges))  # unique, in learnt order
        self._set_vocab(chars + [f"<0x{b:02X}>" for b in range(256)] + merged)
        self.byte_offset = len(SPECIALS) + len(chars)
        self._cache: dict[str, list[int]] = {}

    @classmethod
    def from_text(cls, text: str, vocab_size: int = 1024, *, min_freq: int = 2) -> BPETokenizer:
        """A tokenizer trained on ``text`` (see :meth:`fit`)."""
        return cls().fit(text, vocab_size, min_freq=min_freq)

    def tokenize(self, text: str) -> list[str]:
        """Cut text into the pieces inside which merges happen."""
        return _BPE_PIECES.findall(text)

    def fit(self, text: str, vocab_size: int = 1024, *, min_freq: int = 2) -> BPETokenizer:
        """Learn merges on ``text`` until ``vocab_size`` ids exist (or no pair is frequent).

        Pair counts are kept up to date incrementally (only the words that contain the
        merged pair are recounted), so training on the whole corpus takes seconds.

        Args:
            text: the training text.
            vocab_size: the largest vocabulary, special tokens and 256 bytes included.
            min_freq: stop when the most frequent pair occurs fewer times than this.

        Returns:
            ``self``.
        """
        import heapq

        chars = sorted(set(text))
        room = vocab_size - len(SPECIALS) - len(chars) - 256
        if room < 0:
            raise ValueError(
                f"vocab_size={vocab_size} cannot hold the {len(SPECIALS)} special tokens, "
                f"{len(chars)} characters and 256 bytes; use at least "
                f"{len(SPECIALS) + len(chars) + 256}"
            )
        counts = Counter(self.tokenize(text))
        words = [list(w) for w in counts]  # each word as its current list of symbols
        freq = list(counts.values())
        pairs: Counter = Counter()
        where: dict[tuple[str, str], set[int]] = {}  # pair -> words that (may) contain it
        for i, syms in enumerate(words):
            for pair in zip(syms, syms[1:]):
                pairs[pair] += freq[i]
                where.setdefault(pair, set()).add(i)
        # A max-heap of (-count, pair); stale entries are skipped when popped.
        heap = [(-c, p) for p, c in pairs.items()]
        heapq.heapify(heap)
        merges: list[tuple[str, str]] = []
        made: set[str] = set()
        while heap and len(made) < room:
            neg, pair = heapq.heappop(heap)
            if pairs.get(pair, 0) != -neg:
                continue  # stale
            if -neg < min_freq:
                break
            merges.append(pair)
            made.add(pair[0] + pair[1])
            changed: set[tuple[str, str]] = set()
            for i in where.pop(pair, ()):
                syms, f = words[i], freq[i]
                if len(syms) < 2:
                    continue
                for old in zip(syms, syms[1:]):
                    pairs[old] -= f
                    changed.add(old)
                syms = _merge_pair(syms, pair)
                words[i] = syms
                for new in zip(syms, syms[1:]):
                    pairs[new] += f
                    changed.add(new)
                    where.setdefault(new, set()).add(i)
            for p in changed:
                if pairs[p] > 0:
                    heapq.heappush(heap, (-pairs[p], p))
                else:
                    del pairs[p]
        self._build(chars, merges)
        return self

    def _encode_piece(self, piece: str) -> list[int]:
        ids = self._cache.get(piece)
        if ids is not None:
            return ids
        syms, ranks = list(piece), self.ranks
        while len(syms) > 1:
            best = min(zip(syms, syms[1:]), key=lambda p: ranks.get(p, len(ranks)))
            if best not in ranks:
                break
            syms = _merge_pair(syms, best)
        ids = []
        for s in syms:
            i = self.stoi.get(s)
            if i is not None and i >= len(SPECIALS):
                ids.append(i)
            else:  # a character never seen in training: its UTF-8 bytes
                ids.extend(self.byte_offset + b for b in s.encode("utf-8"))
        if len(self._cache) < 100_000:
            self._cache[piece] = ids
        return ids

    def encode(self, text: str, *, add_bos: bool = False, add_eos: bool = False) -> list[int]:
        """Map ``text`` to a list of ids (``torch.tensor(ids)`` makes a LongTensor)."""
        ids: list[int] = []
        for piece in self.tokenize(text):
            ids.extend(self._encode_piece(piece))
        return self._wrap(ids, add_bos, add_eos)


def _merge_pair(syms: list[str], pair: tuple[str, str]) -> list[str]:
    """Replace every non-overlapping occurrence of ``pair`` in ``syms``, left to right."""
    a, b = pair
    out, i, n = [], 0, len(syms)
    while i < n:
        if i + 1 < n and syms[i] == a and syms[i + 1] == b:
            out.append(a + b)
            i += 2
        else:
            out.append(syms[i])
            i += 1
    return out


# ------------------------------------------------------------------------ masked language model


def mlm_mask(
    tokens: torch.Tensor, mask_id: int, vocab_size: int, mask_prob: float = 0.15,
    special_ids: Iterable[int] = (), generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's corruption: hide ``mask_prob`` of the tokens, keep the originals as labels.

    Devlin et al., "BERT: Pre-training of Deep Bidirectional Transformers for Language
    Understanding", 2019, arXiv:1810.04805, Sec. 3.1. In every sequence,
    ``round(mask_prob * n)`` of its ``n`` non-special positions are chosen (at least one when
    ``n > 0``), uniformly without replacement. Of the chosen positions 80% become
    ``mask_id``, 10% a random non-special token, and 10% stay as they are (so the model must
    predict every input, not only the masked ones). Special tokens (padding, BOS, ...) are
    never chosen and never drawn as random replacements.

    Args:
        tokens: (B, T) or (T,) integer token ids.
        mask_id: the id of ``<mask>``.
        vocab_size: V; random replacements are drawn from ``range(V)`` minus ``special_ids``.
        mask_prob: fraction of each sequence's non-special positions that is chosen.
        special_ids: ids that are never chosen (e.g. ``tokenizer.special_ids.values()``).
        generator: a ``torch.Generator`` for reproducible draws (any device).

    Returns:
        ``(inputs, labels)``, both shaped like ``tokens``: the corrupted ids, and the
        original id at every chosen position with -100 (ignored by ``F.cross_entropy``)
        everywhere else.

    Example:
        >>> x = torch.arange(5, 25).reshape(2, 10)
        >>> inputs, labels = mlm_mask(x, mask_id=2, vocab_size=30, mask_prob=0.2,
        ...                           generator=torch.Generator().manual_seed(0))
        >>> (labels != -100).sum(1).tolist()  # 20% of 10 positions in each row
        [2, 2]
        >>> bool(((labels == -100) | (labels == x)).all())
        True
    """
    from minissl.utils import draw

    if tokens.dtype.is_floating_point or tokens.dtype == torch.bool:
        raise ValueError(f"tokens must be integer ids; got dtype {tokens.dtype}")
    if tokens.dim() not in (1, 2):
        raise ValueError(f"tokens must have shape (B, T) or (T,); got {tuple(tokens.shape)}")
    if not 0.0 <= mask_prob <= 1.0:
        raise ValueError(f"mask_prob must lie in [0, 1]; got {mask_prob}")
    if not 0 <= mask_id < vocab_size:
        raise ValueError(f"mask_id={mask_id} is not an id of a vocabulary of size {vocab_size}")
    squeeze = tokens.dim() == 1
    x = tokens[None] if squeeze else tokens  # (B, T)
    dev = x.device
    specials = torch.tensor(sorted({int(i) for i in special_ids}), dtype=x.dtype, device=dev)
    eligible = ~torch.isin(x, specials)  # (B, T)
    # Exactly k_b positions per row: the k_b smallest of uniform noise, specials pushed last.
    noise = draw(torch.rand, x.shape, generator, dev).masked_fill(~eligible, 2.0)  # (B, T)
    rank = noise.argsort(dim=1).argsort(dim=1)  # (B, T) rank of each position's noise
    n = eligible.sum(dim=1, keepdim=True)  # (B, 1)
    k = (n * mask_prob).round().long()
    if mask_prob > 0:
        k = torch.where(n > 0, k.clamp(min=1), k)
    chosen = rank < k  # (B, T)
    action = draw(torch.rand, x.shape, generator, dev)  # (B, T): 80% mask, 10% random
    allowed = torch.tensor([i for i in range(vocab_size) if i not in set(specials.tolist())],
                           dtype=x.dtype, device=dev)
    if len(allowed) == 0:
        raise ValueError("every id of the vocabulary is special: nothing to draw replacements from")
    pick = draw(functools.partial(torch.randint, len(allowed)), x.shape, generator, dev)
    random_tokens = allowed[pick]  # (B, T)
    inputs = torch.where(chosen & (action < 0.8), torch.full_like(x, mask_id), x)
    inputs = torch.where(chosen & (action >= 0.8) & (action < 0.9), random_tokens, inputs)
    labels = torch.where(chosen, x, torch.full_like(x, -100))
    return (inputs[0], labels[0]) if squeeze else (inputs, labels)


def token_windows(ids: Sequence[int] | torch.Tensor, length: int,
                  stride: int | None = None) -> torch.Tensor:
    """Cut a token stream into windows of ``length`` ids (the last partial one is dropped).

    Args:
        ids: a 1-D sequence of token ids (list or tensor).
        length: ids per window.
        stride: step between window starts (default ``length``: no overlap).

    Returns:
        (N, length) int64 tensor.

    Example:
        >>> token_windows(list(range(10)), 4).tolist()
        [[0, 1, 2, 3], [4, 5, 6, 7]]
        >>> token_windows(list(range(10)), 4, stride=3).shape
        torch.Size([3, 4])
    """
    t = torch.as_tensor(ids, dtype=torch.long).flatten()
    stride = length if stride is None else stride
    if length < 1 or stride < 1:
        raise ValueError(f"length and stride must be positive; got {length} and {stride}")
    if len(t) < length:
        raise ValueError(f"the stream has {len(t)} ids, fewer than one window of {length}")
    return t.unfold(0, length, stride).contiguous()


# ----------------------------------------------------------------- a labelled text data set

# Where each help topic of pydoc_data comes from in the Python documentation (the source
# file of the reST label the topic is generated from), grouped into four classes: the
# Language Reference's chapters 2 and 6, 3 and 4, 7 and 8, and the Library Reference.
DOC_CLASSES = ("lexical analysis & expressions", "data & execution model", "statements",
               "library reference")
_DOC_SOURCES = {
    "reference/lexical_analysis": "floating id-classes identifiers imaginary integers numbers "
                                  "strings",
    "reference/expressions": "atom-identifiers atom-literals attribute-references await binary "
                             "bitwise booleans calls comparisons conversions dict exprlists in "
                             "lambda lists operator-summary power shifting slicings subscriptions "
                             "unary",
    "reference/datamodel": "attribute-access callable-types context-managers customization "
                           "numeric-types objects sequence-types specialnames types",
    "reference/executionmodel": "dynamic-features exceptions execmodel naming",
    "reference/simple_stmts": "assert assignment augassign break continue del global import "
                              "nonlocal pass raise return yield",
    "reference/compound_stmts": "async class compound else for function if try while with",
    "library/stdtypes": "bltin-code-objects bltin-ellipsis-object bltin-null-object "
                        "bltin-type-objects specialattrs string-methods truth typesfunctions "
                        "typesmapping typesmethods typesmodules typesseq typesseq-mutable",
    "library/string": "formatstrings",
    "library/pdb": "debugger",
}
_SOURCE_CLASS = {
    "reference/lexical_analysis": 0, "reference/expressions": 0,
    "reference/datamodel": 1, "reference/executionmodel": 1,
    "reference/simple_stmts": 2, "reference/compound_stmts": 2,
    "library/stdtypes": 3, "library/string": 3, "library/pdb": 3,
}
TOPIC_SOURCE: dict[str, str] = {
    topic: source for source, names in _DOC_SOURCES.items() for topic in names.split()
}


class DocPassages:
    """Passages of the help topics, each labelled by the part of the documentation it is from.

    A real labelled text data set with no invented sentences: every help topic in
    :func:`text_corpus` is generated from one source file of the Python documentation
    (``TOPIC_SOURCE``, e.g. ``"if"`` comes from ``reference/compound_stmts``), and the files
    are grouped into the four classes of ``DOC_CLASSES``. A topic's text is cut at blank
    lines into paragraphs; a paragraph already seen (umbrella topics such as ``compound``
    repeat the text of ``if``, ``for``, ...) is dropped, and consecutive paragraphs are joined
    until a passage has at least ``min_chars`` characters. Topics a newer Python adds, and
    that are not in ``TOPIC_SOURCE``, are left out.

    Args:
        min_chars: the shortest passage (shorter leftovers at a topic's end are dropped).
        max_chars: passages are cut to at most this many characters.

    Attributes:
        texts: list of N passages; ``labels`` (N,) int64 class ids; ``topics`` the N help
        topic names; ``classes`` the class names (``DOC_CLASSES``).

    Example:
        >>> ds = DocPassages()
        >>> len(ds) > 300, ds.classes[ds.labels[0]], ds.topics[0]
        (True, 'statements', 'assert')
    """

    classes = list(DOC_CLASSES)

    def __init__(self, min_chars: int = 200, max_chars: int = 1000) -> None:
        if not 0 < min_chars <= max_chars:
            raise ValueError(f"need 0 < min_chars <= max_chars; got {min_chars}, {max_chars}")
        topics = _topics()
        seen: set[str] = set()
        self.texts: list[str] = []
        self.topics: list[str] = []
        labels: list[int] = []
        for topic in sorted(topics):
            if topic not in TOPIC_SOURCE:
                continue
            label = _SOURCE_CLASS[TOPIC_SOURCE[topic]]
            current: list[str] = []
            for para in re.split(r"\n\s*\n", topics[topic].strip()):
                para = para.strip("\n")
                key = " ".join(para.split())
                if not key or key in seen:
                    continue
                seen.add(key)
                current.append(para)
                passage = "\n\n".join(current)
                if len(passage) >= min_chars:
                    self.texts.append(passage[:max_chars])
                    self.topics.append(topic)
                    labels.append(label)
                    current = []
        self.labels = torch.tensor(labels, dtype=torch.long)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, i: int) -> tuple[str, int]:
        return self.texts[i], int(self.labels[i])

    def encode(self, tokenizer, length: int, *, add_bos: bool = True) -> torch.Tensor:
        """Token ids of every passage, cut or padded (with ``pad_id``) to ``length``.

        Returns:
            (N, length) int64 tensor, padding at the end of short passages.
        """
        out = torch.full((len(self), length), tokenizer.pad_id, dtype=torch.long)
        for i, text in enumerate(self.texts):
            ids = tokenizer.encode(text, add_bos=add_bos)[:length]
            out[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        return out

    def __repr__(self) -> str:
        counts = torch.bincount(self.labels, minlength=self.num_classes).tolist()
        return f"DocPassages({len(self)} passages; per class {dict(zip(self.classes, counts))})"
