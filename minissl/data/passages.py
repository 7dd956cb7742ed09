"""A labelled text data set: passages of Python's help topics, classed by documentation part."""

from __future__ import annotations

import re

import torch

from .corpora import _topics

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
