"""Pretext tasks: the network invents its own labels from the images and learns to predict them.

Each task has two halves, kept apart so the book can show the first as pictures:

* a **pseudo-label generator**, a plain function ``images -> (inputs, labels)``
  (:func:`rotate_batch`, :func:`jigsaw_batch`, :func:`mask_patches`,
  :func:`relative_position_batch`);
* a **method**, an ``nn.Module`` whose ``training_step(batch)`` calls the generator, runs the
  ``encoder`` and a small head, and returns ``{"loss": ..., "acc": ...}``
  (:class:`RotationPrediction`, :class:`Jigsaw`, :class:`Inpainting`, :class:`RelativePosition`).

Only ``encoder`` is kept for downstream use; the heads exist to make the pretext task solvable.
Every random function takes a ``generator`` and creates its tensors on the images' device.
"""

from .inpainting import Inpainting, mask_patches
from .jigsaw import Jigsaw, jigsaw_batch, jigsaw_permutations, unshuffle_tiles
from .relative_position import NEIGHBOUR_OFFSETS, RelativePosition, relative_position_batch
from .rotation import RotationPrediction, rotate_batch

__all__ = [
    "rotate_batch", "RotationPrediction",
    "jigsaw_permutations", "jigsaw_batch", "unshuffle_tiles", "Jigsaw",
    "mask_patches", "Inpainting",
    "NEIGHBOUR_OFFSETS", "relative_position_batch", "RelativePosition",
]
