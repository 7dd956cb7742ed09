"""Ship a fine-tuned classifier: save it, export it, load it back somewhere else.

Three kinds of file, for three kinds of reader:

* a **state dict with its recipe** (:func:`save_state` / :func:`load_state`, ``.pt``): the
  weights plus a :class:`ModelSpec` that says how to rebuild the network (backbone name and
  arguments, number of classes, class names, image shape). Loading needs ``minissl``; the
  file holds only tensors, numbers and strings, so it is read with ``weights_only=True``
  and cannot run code;
* a **pretrained encoder** (:func:`save_encoder` / :func:`load_encoder`, ``.pt``): the
  backbone alone, as pretraining leaves it, with its name and constructor arguments, to
  fine-tune or probe later (``minissl.recipes.backbone_of(method)`` picks it out of a
  trained method);
* an **exported program** (:func:`export_program` / :func:`load_program`, ``.pt2``): the
  network traced by ``torch.export`` into a graph of ATen operations with its weights, for
  any batch size. Loading needs only PyTorch, not ``minissl`` and not the Python classes.

TorchScript (``torch.jit``) is deprecated in recent PyTorch releases in favour of
``torch.export``, so the book uses the latter.

Example:
    >>> import tempfile, torch
    >>> spec = ModelSpec("convnet", {"width": 4}, in_channels=3, image_size=8, num_classes=2)
    >>> model = Classifier.from_spec(spec).eval()
    >>> path = save_state(model, tempfile.mkdtemp() + "/clf.pt")
    >>> again = load_state(path)
    >>> x = torch.rand(3, 3, 8, 8)
    >>> torch.equal(model(x), again(x))
    True
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from minissl.evaluate import LinearClassifier
from minissl.train.checkpoint import _why_unreadable
from minissl.utils import MinisslError

FORMAT = "minissl.deploy.Classifier"  # what a state file says it is
ENCODER_FORMAT = "minissl.deploy.Encoder"  # what an encoder file says it is
VERSION = 1  # bumped when the file layout changes; older files stay readable


class DeployError(MinisslError):
    """A saved or exported model cannot be read or does not fit its description."""


@dataclass
class ModelSpec:
    """Everything needed to rebuild a :class:`Classifier` before loading its weights.

    Args:
        backbone: a name of ``minissl.nn.BACKBONES`` (``"convnet"``, ``"resnet18"``, ...).
        backbone_kwargs: the backbone's constructor arguments besides ``in_channels``
            (e.g. ``{"width": 16}``).
        in_channels: C of the input images.
        image_size: side of the square input images (used for the export's example input).
        num_classes: K, outputs of the head.
        class_names: K names, index i names class i (default ``"0"`` .. ``"K-1"``).

    Example:
        >>> ModelSpec("convnet", {"width": 8}, 3, 32, 2).class_names
        ['0', '1']
    """

    backbone: str
    backbone_kwargs: dict[str, Any] = field(default_factory=dict)
    in_channels: int = 3
    image_size: int = 32
    num_classes: int = 10
    class_names: list[str] | None = None

    def __post_init__(self) -> None:
        if self.class_names is None:
            self.class_names = [str(i) for i in range(self.num_classes)]
        self.class_names = [str(n) for n in self.class_names]
        if len(self.class_names) != self.num_classes:
            raise ValueError(
                f"class_names has {len(self.class_names)} names but num_classes is "
                f"{self.num_classes}; give one name per class"
            )


class Classifier(nn.Module):
    """An encoder and a linear head: images (B, C, H, W) in [0, 1] to logits (B, K).

    The head is a :class:`minissl.evaluate.LinearClassifier` (a linear layer with optional
    feature standardisation), so the heads of :func:`minissl.evaluate.fine_tune` (an
    ``nn.Linear``) and of :func:`minissl.evaluate.linear_probe` both fit.

    Args:
        encoder: the backbone, maps (B, C, H, W) to (B, D).
        head: an ``nn.Linear(D, K)`` or a ``LinearClassifier(D, K)``; copied into a
            ``LinearClassifier``.
        spec: how to rebuild the network (:class:`ModelSpec`).

    Example:
        >>> spec = ModelSpec("convnet", {"width": 4}, 3, 8, 2, ["cat", "dog"])
        >>> clf = Classifier.from_spec(spec)
        >>> clf(torch.rand(5, 3, 8, 8)).shape, clf.spec.class_names
        (torch.Size([5, 2]), ['cat', 'dog'])
    """

    def __init__(self, encoder: nn.Module, head: nn.Module, spec: ModelSpec) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = _as_linear_classifier(head)
        out, dim = self.head.linear.out_features, self.head.linear.in_features
        if out != spec.num_classes:
            raise ValueError(
                f"the head has {out} outputs but spec.num_classes is {spec.num_classes}"
            )
        feature_dim = getattr(encoder, "feature_dim", dim)
        if feature_dim != dim:
            raise ValueError(
                f"the head expects {dim} features but the encoder gives {feature_dim}"
            )
        self.spec = spec

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> Classifier:
        """A freshly initialised network of the shape ``spec`` describes."""
        from minissl.nn import BACKBONES, backbone

        if spec.backbone not in BACKBONES:
            raise DeployError(
                f"unknown backbone {spec.backbone!r} in the model spec; this minissl knows "
                f"{sorted(BACKBONES)}"
            )
        encoder = backbone(spec.backbone, in_channels=spec.in_channels, **spec.backbone_kwargs)
        return cls(encoder, LinearClassifier(encoder.feature_dim, spec.num_classes), spec)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))  # (B, C, H, W) -> (B, D) -> (B, K)

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        """Predicted class indices (N,) of images (N, C, H, W), in eval mode, batched."""
        was_training = self.training
        self.eval()
        try:
            device = next(self.parameters()).device
            out = [self(b.to(device)).argmax(1).cpu() for b in x.split(batch_size)]
        finally:
            self.train(was_training)
        return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


def _as_linear_classifier(head: nn.Module) -> LinearClassifier:
    if isinstance(head, LinearClassifier):
        return head
    if isinstance(head, nn.Linear):
        p = head.weight
        clf = LinearClassifier(head.in_features, head.out_features).to(p.device, p.dtype)
        with torch.no_grad():
            clf.linear.weight.copy_(head.weight)
            if head.bias is not None:
                clf.linear.bias.copy_(head.bias)
            else:
                clf.linear.bias.zero_()
        return clf
    raise TypeError(
        f"head must be an nn.Linear or a minissl.evaluate.LinearClassifier; got "
        f"{type(head).__name__}"
    )


# ----------------------------------------------------------------------------- state dict


def save_state(model: Classifier, path: str | Path) -> Path:
    """Save the weights of a :class:`Classifier` with the spec that rebuilds it.

    The file is a dict of plain types and CPU tensors (``format``, ``version``, ``spec``,
    ``state_dict``, ``torch``), readable with ``torch.load(path, weights_only=True)``.

    Args:
        model: the classifier to save (any device; the file holds CPU tensors).
        path: where to write (parent folders are created); ``.pt`` by convention.

    Returns:
        The path written.

    Example:
        >>> import tempfile
        >>> clf = Classifier.from_spec(ModelSpec("convnet", {"width": 4}, 3, 8, 2))
        >>> save_state(clf, tempfile.mkdtemp() + "/a/clf.pt").name
        'clf.pt'
    """
    if not isinstance(model, Classifier):
        raise TypeError(
            f"save_state takes a minissl.deploy.Classifier; got {type(model).__name__}. "
            "Wrap the encoder and head first: Classifier(encoder, head, spec)"
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save({"format": FORMAT, "version": VERSION, "spec": asdict(model.spec),
                "state_dict": state, "torch": str(torch.__version__)}, path)
    return path


def _read(path: Path, writer: str = "save_state", what: str = "model") -> Any:
    """The contents of a file ``deploy.<writer>`` wrote, read with ``weights_only=True``."""
    if not path.is_file():
        raise FileNotFoundError(f"no saved {what} at {path}; save one with deploy.{writer}")
    again = f"Save the {what} again with deploy.{writer}"
    if path.stat().st_size == 0:
        raise DeployError(f"cannot read {path}: the file is empty (0 bytes), e.g. left by a "
                          f"full disk or a copy that failed. {again}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, random bytes, pickled code: all unreadable
        raise DeployError(
            f"cannot read {path}: it is corrupt or not a file written by deploy.{writer} "
            f"({_why_unreadable(err)}). {again}"
        ) from err


def load_state(path: str | Path, map_location: str | torch.device = "cpu") -> Classifier:
    """Rebuild a :class:`Classifier` from a file written by :func:`save_state`.

    The network is built from the stored spec and the weights are loaded strictly: a file
    whose weights do not fit the spec (a missing or extra tensor, a wrong shape) raises
    :class:`DeployError` naming the offending tensors.

    Args:
        path: a ``.pt`` file from :func:`save_state`.
        map_location: device of the returned model.

    Returns:
        The classifier, in eval mode.

    Raises:
        FileNotFoundError: no file at ``path``.
        DeployError: the file is corrupt, of another kind, of a newer format, or its weights
            do not fit its spec.

    Example:
        >>> import tempfile
        >>> clf = Classifier.from_spec(ModelSpec("convnet", {"width": 4}, 3, 8, 2))
        >>> load_state(save_state(clf, tempfile.mkdtemp() + "/clf.pt")).training
        False
    """
    path = Path(path)
    blob = _read(path)
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        what = sorted(blob)[:8] if isinstance(blob, dict) else type(blob).__name__
        raise DeployError(
            f"{path} is not a minissl classifier (expected format {FORMAT!r}; found {what}). "
            "Only files written by deploy.save_state can be loaded here; a bare state dict "
            "loads with model.load_state_dict(torch.load(path))"
        )
    version = blob.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise DeployError(
            f"{path} has format version {version!r}, but this minissl reads versions up to "
            f"{VERSION}; upgrade minissl to load it"
        )
    try:
        spec = ModelSpec(**blob["spec"])
    except (KeyError, TypeError, ValueError) as err:
        raise DeployError(f"{path} has an unreadable model spec: {err}") from err
    model = Classifier.from_spec(spec)
    state = blob.get("state_dict")
    if not isinstance(state, dict):
        raise DeployError(f"{path} holds no state_dict; save the model again")
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
             for k in sorted(set(state) & set(expected))
             if tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or wrong:
        parts = [f"missing {missing[:5]}" if missing else "",
                 f"unexpected {unexpected[:5]}" if unexpected else "",
                 f"wrong shapes {wrong[:5]}" if wrong else ""]
        raise DeployError(
            f"the weights in {path} do not fit the {spec.backbone} {spec.backbone_kwargs} "
            f"classifier its spec describes: {'; '.join(p for p in parts if p)}. "
            "Was the file edited, or saved with a different spec?"
        )
    model.load_state_dict(state)
    return model.to(map_location).eval()


# ----------------------------------------------------------------------------- encoders


def _fit_report(state: dict, expected: dict) -> str:
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [f"{k}: {tuple(state[k].shape)} vs {tuple(expected[k].shape)}"
             for k in sorted(set(state) & set(expected))
             if tuple(state[k].shape) != tuple(expected[k].shape)]
    parts = [f"missing {missing[:5]}" if missing else "",
             f"unexpected {unexpected[:5]}" if unexpected else "",
             f"wrong shapes {wrong[:5]}" if wrong else ""]
    return "; ".join(p for p in parts if p)


def save_encoder(encoder: nn.Module, path: str | Path, backbone: str, in_channels: int = 3,
                 **backbone_kwargs: Any) -> Path:
    """Save a pretrained backbone with what rebuilds it: its name and constructor arguments.

    The arguments are the ones it was made with, ``minissl.nn.backbone(backbone,
    in_channels, **backbone_kwargs)``; they are checked here, by building that backbone
    and comparing its weights' names and shapes, so a wrong description fails now rather
    than when the file is loaded. The file holds only tensors, numbers and strings.

    Args:
        encoder: the backbone, e.g. ``minissl.recipes.backbone_of(method)`` after ``fit``.
        path: where to write (parent folders are created); ``.pt`` by convention.
        backbone: its name in ``minissl.nn.BACKBONES`` (``"convnet"``, ``"resnet18"``, ...).
        in_channels: C of the images it takes.
        **backbone_kwargs: its other constructor arguments (e.g. ``width=32``, or
            ``image_size=32`` for ``"vit_tiny"``).

    Returns:
        The path written.

    Raises:
        DeployError: the encoder's weights do not fit the backbone described.

    Example:
        >>> import tempfile
        >>> from minissl.nn import backbone
        >>> enc = backbone("convnet", in_channels=3, width=4).eval()
        >>> path = save_encoder(enc, tempfile.mkdtemp() + "/enc.pt", "convnet", width=4)
        >>> x = torch.rand(2, 3, 8, 8)
        >>> torch.equal(load_encoder(path)(x), enc(x))
        True
    """
    from minissl.nn import backbone as build

    kwargs = dict(backbone_kwargs)
    try:
        fresh = build(backbone, in_channels=in_channels, **kwargs)
    except (TypeError, ValueError, KeyError) as err:
        raise DeployError(f"cannot build backbone {backbone!r} with in_channels={in_channels}, "
                          f"{kwargs}: {err}") from err
    state = {k: v.detach().cpu() for k, v in encoder.state_dict().items()}
    problems = _fit_report(state, fresh.state_dict())
    if problems:
        raise DeployError(
            f"the encoder's weights do not fit {backbone} with in_channels={in_channels}, "
            f"{kwargs} ({problems}); give the arguments it was built with, e.g. the width")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": ENCODER_FORMAT, "version": VERSION, "backbone": backbone,
                "in_channels": int(in_channels), "backbone_kwargs": kwargs,
                "state_dict": state, "torch": str(torch.__version__)}, path)
    return path


def load_encoder(path: str | Path, map_location: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a backbone saved by :func:`save_encoder`, with its weights, in eval mode.

    Fine-tune it with :func:`minissl.evaluate.fine_tune`, probe it with
    :func:`minissl.evaluate.evaluate_encoder`, or train it further inside a method.

    Raises:
        FileNotFoundError: no file at ``path``.
        DeployError: the file is corrupt, not an encoder file, or its weights do not fit.
    """
    from minissl.nn import backbone as build

    path = Path(path)
    blob = _read(path, "save_encoder", "encoder")
    if not isinstance(blob, dict) or blob.get("format") != ENCODER_FORMAT:
        found = blob.get("format") if isinstance(blob, dict) else type(blob).__name__
        raise DeployError(f"{path} is not a saved encoder (format {found!r}); encoders are "
                          "written by deploy.save_encoder, classifiers load with load_state")
    try:
        encoder = build(blob["backbone"], in_channels=blob["in_channels"],
                        **blob["backbone_kwargs"])
        if not isinstance(blob["state_dict"], dict):
            raise TypeError(f"its state_dict is a {type(blob['state_dict']).__name__}")
    except (KeyError, TypeError, ValueError) as err:
        raise DeployError(f"{path} has an unreadable encoder description ({type(err).__name__}: "
                          f"{err}). Save the encoder again with deploy.save_encoder") from err
    problems = _fit_report(blob["state_dict"], encoder.state_dict())
    if problems:
        raise DeployError(f"the weights in {path} do not fit {blob['backbone']} "
                          f"{blob['backbone_kwargs']} ({problems})")
    encoder.load_state_dict(blob["state_dict"])
    return encoder.to(map_location).eval()


# ----------------------------------------------------------------------------- torch.export


def export_program(
    model: nn.Module, path: str | Path, example: torch.Tensor | None = None,
    dynamic_batch: bool = True,
) -> Path:
    """Export a model in eval mode with ``torch.export`` and save the program (``.pt2``).

    The program is a graph of ATen operations with the weights inside; batch norm uses its
    running statistics and dropout is off, whatever mode ``model`` is in (``model`` itself is
    left as it was). With ``dynamic_batch`` the batch size may differ from the example's.
    A :class:`Classifier`'s spec is stored next to the graph (``extra_files["spec.json"]``).

    Args:
        model: maps (B, C, H, W) to outputs; moved to the CPU copy that is exported.
        path: where to write; ``.pt2`` by convention.
        example: an example input (B, C, H, W) with B >= 2; a :class:`Classifier` makes one
            from its spec when None.
        dynamic_batch: accept any batch size (from 1) instead of only the example's.

    Returns:
        The path written.

    Example:
        >>> import tempfile
        >>> clf = Classifier.from_spec(ModelSpec("convnet", {"width": 4}, 3, 8, 2))
        >>> prog = load_program(export_program(clf, tempfile.mkdtemp() + "/clf.pt2"))
        >>> x = torch.rand(5, 3, 8, 8)
        >>> torch.allclose(prog(x), clf.eval()(x), atol=1e-5)
        True
    """
    spec = getattr(model, "spec", None)
    if example is None:
        if not isinstance(spec, ModelSpec):
            raise ValueError("export_program needs an example input (B, C, H, W) for a model "
                             "that is not a deploy.Classifier")
        example = torch.rand(2, spec.in_channels, spec.image_size, spec.image_size)
    if example.dim() < 1 or (dynamic_batch and len(example) < 2):
        raise ValueError(
            f"the example needs a batch of at least 2 for a dynamic batch size; got shape "
            f"{tuple(example.shape)}"
        )
    frozen = copy.deepcopy(model).cpu().eval()
    dims = ({0: torch.export.Dim("batch", min=1)},) if dynamic_batch else None
    program = torch.export.export(frozen, (example.cpu(),), dynamic_shapes=dims)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    extra = {"format.json": json.dumps({"format": FORMAT, "version": VERSION})}
    if isinstance(spec, ModelSpec):
        extra["spec.json"] = json.dumps(asdict(spec))
    torch.export.save(program, path, extra_files=extra)
    return path


def load_program(path: str | Path) -> nn.Module:
    """Load a program saved by :func:`export_program` as a callable module (PyTorch only).

    Args:
        path: a ``.pt2`` file.

    Returns:
        A module mapping (B, C, H, W) to the exported outputs; it always runs as exported
        (eval mode), so ``.train()``/``.eval()`` do not change it.

    Raises:
        FileNotFoundError: no file at ``path``.
        DeployError: the file is corrupt or not an exported program.

    Example:
        >>> load_program("no/such/model.pt2")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        FileNotFoundError: no exported program at no/such/model.pt2; ...
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no exported program at {path}; write one with deploy.export_program"
        )
    try:
        program = torch.export.load(path)
    except Exception as err:
        raise DeployError(
            f"cannot read {path}: it is corrupt or not a program saved by torch.export "
            f"({type(err).__name__}). Export the model again with deploy.export_program"
        ) from err
    return program.module()


def read_spec(path: str | Path) -> ModelSpec | None:
    """The :class:`ModelSpec` stored in a ``.pt`` state file or a ``.pt2`` program (or None).

    Example:
        >>> import tempfile
        >>> spec = ModelSpec("convnet", {"width": 4}, 3, 8, 2, ["no", "yes"])
        >>> p = export_program(Classifier.from_spec(spec), tempfile.mkdtemp() + "/c.pt2")
        >>> read_spec(p).class_names
        ['no', 'yes']
    """
    path = Path(path)
    if path.suffix == ".pt2":
        extra = {"spec.json": ""}
        if not path.is_file():
            raise FileNotFoundError(f"no exported program at {path}")
        try:
            torch.export.load(path, extra_files=extra)
        except Exception as err:
            raise DeployError(f"cannot read {path}: corrupt or not a .pt2 program") from err
        return ModelSpec(**json.loads(extra["spec.json"])) if extra["spec.json"] else None
    blob = _read(path)
    spec = blob.get("spec") if isinstance(blob, dict) else None
    return ModelSpec(**spec) if isinstance(spec, dict) else None
