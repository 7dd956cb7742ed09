"""Tokenizers (characters, words, byte-pair encoding) and the special tokens they share."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

import torch

# Special tokens take the first ids in every tokenizer, in this order.
SPECIALS = ("<pad>", "<unk>", "<mask>", "<bos>", "<eos>")
PAD, UNK, MASK, BOS, EOS = range(len(SPECIALS))


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
