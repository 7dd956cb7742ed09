"""Text that ships with Python (the standard library's help topics) and two small tokenizers."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

import torch

from ..utils import MinisslError

TEXT_SPLITS = ("train", "valid", "all")

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


def text_corpus(split: str = "all") -> str:
    """Real English text that ships with Python: the standard library's help topics.

    ``pydoc_data.topics.topics`` holds the text ``help("if")``, ``help("NUMBERS")``, ... show
    (about 80 topics, close to half a million characters of prose and code examples). The
    topics are joined in sorted order, so the corpus is the same on every run of one Python
    version (it changes a little between versions). ``"train"`` is the first ~90% of the
    characters and ``"valid"`` the rest, cut between two topics.

    Args:
        split: ``"train"`` (about 90%), ``"valid"`` (about 10%) or ``"all"``.

    Example:
        >>> text = text_corpus()
        >>> len(text) > 100_000, text == text_corpus()
        (True, True)
        >>> len(text_corpus("train")) + len(text_corpus("valid")) < len(text)
        True
    """
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

    def decode(self, ids: Sequence[int] | torch.Tensor, *, skip_special: bool = True) -> str:
        """Map ids back to text; ``skip_special`` drops pad/mask/bos/eos instead of naming them."""
        out: list[str] = []
        pending = bytearray()  # consecutive byte tokens form one UTF-8 sequence
        n_chars = len(SPECIALS) + len(self.chars)
        for i in self._ids(ids):
            if self.byte_fallback and n_chars <= i < n_chars + 256:
                pending.append(i - n_chars)
                continue
            if pending:
                out.append(pending.decode("utf-8", errors="replace"))
                pending.clear()
            if i < len(SPECIALS):
                out.append(self._special_text(i, skip_special))
            elif i < self.vocab_size:
                out.append(self.itos[i])
            else:
                raise ValueError(f"id {i} is out of range for vocab_size {self.vocab_size}")
        if pending:
            out.append(pending.decode("utf-8", errors="replace"))
        return "".join(out)


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
