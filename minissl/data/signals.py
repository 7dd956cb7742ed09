"""One-dimensional signals: synthetic tones with known factors, a simulated pendulum seen
through noisy mixed sensors, and a loader for a folder of real WAV recordings.

Everything here is for the "beyond vision and language" chapter. The tones and the pendulum
are **synthetic**: they are made by the code below from a seed, so their hidden factors are
known exactly and can be probed. Real recordings come in through :func:`load_wav_folder`,
which reads PCM ``.wav`` files with Python's standard ``wave`` module (no extra dependency).

Shapes: a signal data set holds ``signals`` of shape (N, C, T) float32 (C channels, T
samples) and ``labels`` (N,) int64; the pendulum gives sensor traces (N, S, T) and the hidden
state (N, T) per trajectory.

Example:
    >>> ds = make_tones(8, length=256, seed=0)
    >>> ds.signals.shape, ds.labels.shape, ds.classes[:2]
    (torch.Size([8, 1, 256]), torch.Size([8]), ['A3', 'B3'])
"""

from __future__ import annotations

import math
import wave
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import Dataset


class SignalDataset(Dataset):
    """A whole split of 1-D signals in memory: ``(signal, label)`` items, plus known factors.

    ``.images`` is an alias of ``.signals``, so :func:`minissl.train.fit` and
    :mod:`minissl.evaluate` take their in-memory fast path (slices, no ``DataLoader``).

    Args:
        signals: (N, C, T) float32 tensor (C channels of T samples).
        labels: (N,) int64 tensor.
        classes: the class names; label ``k`` is ``classes[k]``.
        name: the data set's name (for display).
        sample_rate: samples per second.
        factors: optional dict of tensors whose first dimension is N (the known factors).
        files: optional list of the N source files (real recordings).

    Example:
        >>> ds = SignalDataset(torch.zeros(3, 1, 10), torch.tensor([0, 1, 0]), ["a", "b"], "toy")
        >>> len(ds), ds[1][0].shape, ds[1][1], ds.subset([0, 2]).labels.tolist()
        (3, torch.Size([1, 10]), 1, [0, 0])
    """

    def __init__(
        self, signals: torch.Tensor, labels: torch.Tensor, classes: Sequence[str], name: str,
        sample_rate: int = 4000, factors: dict[str, torch.Tensor] | None = None,
        files: list[str] | None = None,
    ) -> None:
        if not isinstance(signals, torch.Tensor) or signals.dim() != 3:
            shape = tuple(signals.shape) if isinstance(signals, torch.Tensor) else type(signals)
            raise ValueError(f"signals must be a tensor of shape (N, C, T); got {shape}")
        if signals.dtype != torch.float32:
            raise ValueError(f"signals must be float32; got {signals.dtype} (use .float())")
        if not isinstance(labels, torch.Tensor) or labels.shape != (len(signals),):
            shape = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels)
            raise ValueError(f"labels must have shape ({len(signals)},); got {shape}")
        self.signals = signals
        self.labels = labels.long()
        self.classes = list(classes)
        self.name = name
        self.sample_rate = int(sample_rate)
        self.factors = dict(factors or {})
        self.files = files

    @property
    def images(self) -> torch.Tensor:
        """The signals under the name ``fit`` and ``evaluate`` look for."""
        return self.signals

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return len(self.signals)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.signals[i], int(self.labels[i])

    def subset(self, indices) -> SignalDataset:
        """The examples at ``indices`` (factors and file names follow)."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        files = [self.files[int(i)] for i in idx] if self.files is not None else None
        return SignalDataset(self.signals[idx], self.labels[idx], self.classes, self.name,
                             self.sample_rate, {k: v[idx] for k, v in self.factors.items()},
                             files)

    def describe(self) -> str:
        """One line: what the data is, how much of it, and its classes."""
        n, c, t = self.signals.shape
        return (f"{self.name}: {n} signals of {c} channel(s) x {t} samples "
                f"({t / self.sample_rate:.2f} s at {self.sample_rate} Hz), "
                f"{self.num_classes} classes: {self.classes}")

    def __repr__(self) -> str:
        return f"SignalDataset({self.name!r}, n={len(self)}, shape={tuple(self.signals.shape[1:])})"


# ----------------------------------------------------------------------------- synthetic tones

# Eight notes of the A major scale, A3 (220 Hz) to A4 (440 Hz), equal temperament.
NOTES = ("A3", "B3", "C#4", "D4", "E4", "F#4", "G#4", "A4")
_SEMITONES = (0, 2, 4, 5, 7, 9, 11, 12)
# Relative amplitudes of harmonics 1..4: the "timbre" of an instrument, in caricature.
TIMBRES: dict[str, tuple[float, ...]] = {
    "pure": (1.0, 0.0, 0.0, 0.0),  # a sine: a flute, roughly
    "bright": (1.0, 0.5, 0.33, 0.25),  # all harmonics falling as 1/k: a sawtooth, bowed string
    "hollow": (1.0, 0.0, 0.33, 0.0),  # odd harmonics only: a square wave, a clarinet
    "nasal": (0.3, 1.0, 0.2, 0.6),  # a weak fundamental: an oboe-like, nasal sound
}
ENVELOPES = ("pluck", "swell", "tremolo")
FACTORS = ("pitch", "timbre", "envelope")


def _envelope(kind: int, t: torch.Tensor, duration: float) -> torch.Tensor:
    # t: (N, T) seconds; returns (N, T) amplitude in [0, 1].
    if kind == 0:  # pluck: 5 ms attack, exponential decay
        return torch.clamp(t / 0.005, max=1.0) * torch.exp(-t / (0.25 * duration))
    if kind == 1:  # swell: slow linear attack over most of the sound, short release
        return torch.clamp(t / (0.7 * duration), max=1.0) * torch.clamp(
            (duration - t) / 0.02, 0.0, 1.0)
    return 0.6 + 0.4 * torch.sin(2 * math.pi * 6.0 * t)  # tremolo: 6 Hz amplitude modulation


def make_tones(
    n: int, *, label: str = "pitch", length: int = 2048, sample_rate: int = 4000,
    noise: float = 0.3, detune_cents: float = 20.0, seed: int = 0,
) -> SignalDataset:
    """Synthetic musical tones whose pitch, timbre, envelope and noise level are known.

    Each signal is ``gain * envelope(t) * sum_k a_k sin(2 pi k f t + phi_k) + noise``: a note
    ``f`` of the A major scale (A3 to A4, detuned by up to ``detune_cents``), harmonics
    ``a_k`` from one of four :data:`TIMBRES`, one of three :data:`ENVELOPES`, random phases,
    a random gain in [0.5, 1] and white noise with a random standard deviation in
    [0, ``noise``]. They are made up by this function, not recorded: audio-like, not audio.

    Args:
        n: number of signals.
        label: the factor used as label: ``"pitch"`` (8 classes), ``"timbre"`` (4) or
            ``"envelope"`` (3). Every factor is in ``.factors`` whatever the label.
        length: samples per signal (T).
        sample_rate: samples per second (4000 keeps the 4th harmonic of A4 under Nyquist).
        noise: the largest noise standard deviation.
        detune_cents: the largest random detuning of a note, in cents (1/100 semitone).
        seed: generation seed; the same seed gives the same signals.

    Returns:
        A :class:`SignalDataset` with signals (n, 1, length) and factors ``pitch``,
        ``timbre``, ``envelope`` (class indices), ``frequency`` (Hz), ``noise``, ``gain``.

    Example:
        >>> ds = make_tones(4, label="timbre", length=128, seed=1)
        >>> ds.classes, ds.signals.shape
        (['pure', 'bright', 'hollow', 'nasal'], torch.Size([4, 1, 128]))
        >>> bool(torch.equal(ds.signals, make_tones(4, label="timbre", length=128, seed=1).signals))
        True
    """
    if label not in FACTORS:
        raise ValueError(f"unknown label {label!r}; use one of {list(FACTORS)}")
    if n < 1 or length < 2:
        raise ValueError(f"n must be >= 1 and length >= 2; got n={n}, length={length}")
    g = torch.Generator().manual_seed(seed)
    pitch = torch.randint(len(NOTES), (n,), generator=g)
    timbre = torch.randint(len(TIMBRES), (n,), generator=g)
    envelope = torch.randint(len(ENVELOPES), (n,), generator=g)
    cents = (torch.rand(n, generator=g) * 2 - 1) * detune_cents
    semis = torch.tensor(_SEMITONES, dtype=torch.float32)[pitch] + cents / 100
    freq = 220.0 * 2 ** (semis / 12)  # (n,) Hz
    gain = 0.5 + 0.5 * torch.rand(n, generator=g)
    sigma = noise * torch.rand(n, generator=g)
    phases = 2 * math.pi * torch.rand(n, 4, generator=g)
    amps = torch.tensor(list(TIMBRES.values()))[timbre]  # (n, 4)
    t = torch.arange(length, dtype=torch.float32) / sample_rate  # (T,)
    k = torch.arange(1, 5, dtype=torch.float32)  # harmonic numbers
    # (n, 4, T): each harmonic's sine wave
    waves = torch.sin(2 * math.pi * k[None, :, None] * freq[:, None, None] * t
                      + phases[:, :, None])
    tone = (amps[:, :, None] * waves).sum(1)  # (n, T)
    tone = tone / amps.sum(1, keepdim=True)  # peak amplitude at most 1
    duration = length / sample_rate
    env = torch.empty(n, length)
    tt = t.expand(n, length)
    for kind in range(len(ENVELOPES)):
        rows = envelope == kind
        env[rows] = _envelope(kind, tt[rows], duration)
    x = gain[:, None] * env * tone + sigma[:, None] * torch.randn(n, length, generator=g)
    factors = {"pitch": pitch, "timbre": timbre, "envelope": envelope, "frequency": freq,
               "noise": sigma, "gain": gain}
    classes = {"pitch": list(NOTES), "timbre": list(TIMBRES), "envelope": list(ENVELOPES)}
    return SignalDataset(x[:, None].float(), factors[label].clone(), classes[label],
                         f"tones ({label})", sample_rate, factors)


# ----------------------------------------------------------------------------- pendulum


def pendulum_energy(theta: torch.Tensor, omega: torch.Tensor, length: float = 1.0,
                    gravity: float = 9.81) -> torch.Tensor:
    """Mechanical energy per unit mass of a pendulum: ``L^2 w^2 / 2 + g L (1 - cos theta)``.

    Example:
        >>> float(pendulum_energy(torch.tensor(0.0), torch.tensor(0.0)))
        0.0
    """
    return 0.5 * length**2 * omega**2 + gravity * length * (1 - torch.cos(theta))


@dataclass
class Pendulum:
    """Trajectories of a simulated pendulum and what its noisy, mixed sensors read.

    ``sensors`` is what a learner sees; ``theta`` and ``omega`` are the hidden state, kept
    only to *probe* what a representation learned.
    """

    sensors: torch.Tensor  # (N, S, T) sensor readings
    theta: torch.Tensor  # (N, T) angle from the vertical, radians
    omega: torch.Tensor  # (N, T) angular velocity, radians per second
    dt: float  # seconds between samples
    sensor_angles: torch.Tensor  # (S0,) where the proximity sensors sit on the circle
    mixing: torch.Tensor  # (S0, S) the random mixing of the raw sensors into the outputs
    info: dict = field(default_factory=dict)  # the simulation's settings

    @property
    def state(self) -> torch.Tensor:
        """The hidden state, of shape (N, T, 2); the angle, then the angular velocity."""
        return torch.stack([self.theta, self.omega], dim=-1)

    def windows(self, width: int, stride: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """Every window of ``width`` samples, with the hidden state at its last sample.

        Returns:
            windows (M, S, width) and states (M, 2) (angle, angular velocity), where
            M = N * number of windows per trajectory.

        Example:
            >>> p = simulate_pendulum(2, 20, seed=0)
            >>> w, s = p.windows(8, stride=4)
            >>> w.shape, s.shape
            (torch.Size([8, 8, 8]), torch.Size([8, 2]))
        """
        n, s, t = self.sensors.shape
        if not 1 <= width <= t:
            raise ValueError(f"width must be in [1, {t}] (the trajectory length); got {width}")
        w = self.sensors.unfold(2, width, stride)  # (N, S, M', width)
        m = w.shape[2]
        w = w.permute(0, 2, 1, 3).reshape(n * m, s, width)
        ends = torch.arange(m) * stride + width - 1
        states = self.state[:, ends].reshape(n * m, 2)
        return w.contiguous(), states


def simulate_pendulum(
    n: int, steps: int, *, dt: float = 0.05, length: float = 1.0, gravity: float = 9.81,
    damping: float = 0.0, max_angle: float = 2.5, n_sensors: int = 8, width: float = 0.15,
    noise: float = 0.1, substeps: int = 20, seed: int = 0, sensor_seed: int = 0,
) -> Pendulum:
    """Simulate ``n`` pendulums and read them through noisy, mixed proximity sensors.

    The physics: ``theta'' = -(g / L) sin(theta) - damping * theta'``, integrated with the
    leapfrog (velocity Verlet) method, symplectic and second order, on ``substeps`` sub-steps
    per sample, so without damping the energy stays constant up to a tiny oscillation.
    Each trajectory starts at rest at a random angle in [-max_angle, max_angle] and is
    recorded from a random later time, so every phase of the swing appears.

    The sensors: ``n_sensors`` proximity sensors sit evenly on the circle the bob moves on;
    each reads ``exp(-d^2 / (2 width^2))`` of its distance ``d`` to the bob. A random matrix
    mixes these readings into ``n_sensors`` outputs (think of cross-talk between channels),
    and white noise of standard deviation ``noise`` is added. A toy stand-in for a robot's
    sensors: the angle is in them only non-linearly, the velocity not at all in one reading.

    Args:
        n: number of trajectories.
        steps: samples per trajectory (T).
        dt: seconds between samples.
        length, gravity: the pendulum's length (m) and the gravity (m/s^2).
        damping: the friction coefficient (1/s); 0 conserves energy.
        max_angle: the largest starting angle (radians, below pi: it swings, never rotates).
        n_sensors: number of sensors (S).
        width: the sensors' reach, in units of the length.
        noise: standard deviation of the sensor noise.
        substeps: integration steps per sample.
        seed: seed of the starting angles, the recording start and the noise.
        sensor_seed: seed of the mixing matrix: keep it fixed so that two calls (a training
            and a test set) read the same sensors.

    Returns:
        A :class:`Pendulum`: sensors (n, n_sensors, steps), theta and omega (n, steps).

    Example:
        >>> p = simulate_pendulum(3, 50, seed=0)
        >>> p.sensors.shape, p.theta.shape
        (torch.Size([3, 8, 50]), torch.Size([3, 50]))
    """
    if not 0 < max_angle < math.pi:
        raise ValueError(f"max_angle must be in (0, pi) so the pendulum swings; got {max_angle}")
    if n < 1 or steps < 1 or n_sensors < 1:
        raise ValueError(f"n, steps and n_sensors must be >= 1; got {n}, {steps}, {n_sensors}")
    g = torch.Generator().manual_seed(seed)
    theta = (torch.rand(n, generator=g, dtype=torch.float64) * 2 - 1) * max_angle
    omega = torch.zeros(n, dtype=torch.float64)
    burn_in = torch.randint(0, 200, (n,), generator=g)  # random start of the recording
    h = dt / substeps
    thetas, omegas = [], []
    for _ in range(int(burn_in.max()) + steps):
        for _sub in range(substeps):  # leapfrog: half kick, drift, half kick
            omega = omega + 0.5 * h * (-(gravity / length) * torch.sin(theta) - damping * omega)
            theta = theta + h * omega
            omega = omega + 0.5 * h * (-(gravity / length) * torch.sin(theta) - damping * omega)
        thetas.append(theta)
        omegas.append(omega)
    all_theta, all_omega = torch.stack(thetas, 1), torch.stack(omegas, 1)  # (n, burn + T)
    idx = burn_in[:, None] + torch.arange(steps)[None]  # (n, T)
    theta_t = all_theta.gather(1, idx).float()
    omega_t = all_omega.gather(1, idx).float()
    angles = torch.arange(n_sensors, dtype=torch.float32) * (2 * math.pi / n_sensors)
    bob = torch.stack([torch.sin(theta_t), -torch.cos(theta_t)], -1)  # (n, T, 2), units of L
    spots = torch.stack([torch.sin(angles), -torch.cos(angles)], -1)  # (S0, 2)
    d2 = ((bob[:, :, None, :] - spots) ** 2).sum(-1)  # (n, T, S0)
    raw = torch.exp(-d2 / (2 * width**2))
    gs = torch.Generator().manual_seed(sensor_seed)
    mixing = torch.eye(n_sensors) + 0.5 * torch.randn(n_sensors, n_sensors, generator=gs)
    mixed = raw @ mixing + noise * torch.randn(n, steps, n_sensors, generator=g)
    info = {"dt": dt, "length": length, "gravity": gravity, "damping": damping,
            "noise": noise, "width": width, "seed": seed, "sensor_seed": sensor_seed}
    return Pendulum(mixed.permute(0, 2, 1).contiguous(), theta_t, omega_t, dt, angles,
                    mixing, info)


# ----------------------------------------------------------------------------- WAV files


def read_wav(path: str | Path) -> tuple[torch.Tensor, int]:
    """Read a PCM ``.wav`` file with Python's ``wave`` module.

    Samples are scaled to [-1, 1): 16-bit by 1/32768, 32-bit by 1/2^31, and 8-bit (which
    WAV stores unsigned) by ``(v - 128) / 128``; 24-bit is read too.

    Args:
        path: the file.

    Returns:
        signal (C, T) float32 and the sample rate in Hz.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is not a PCM WAV file (corrupt, truncated or compressed).

    Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "a.wav")
        >>> write_wav(path, torch.tensor([[0.0, 0.5, -0.5]]), 8000)
        >>> read_wav(path)
        (tensor([[ 0.0000,  0.5000, -0.5000]]), 8000)
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no WAV file at {path}")
    try:
        with wave.open(str(path), "rb") as f:
            channels, width, rate = f.getnchannels(), f.getsampwidth(), f.getframerate()
            frames = f.getnframes()
            data = f.readframes(frames)
    except (wave.Error, EOFError, OSError) as err:
        raise ValueError(
            f"{path} is not a readable PCM WAV file ({err}); re-encode it as 16-bit PCM, "
            "e.g. `ffmpeg -i in.wav -c:a pcm_s16le out.wav`, or remove it"
        ) from err
    if len(data) != frames * channels * width or frames == 0:
        raise ValueError(
            f"{path} is truncated or empty: the header promises {frames} frames "
            f"({frames * channels * width} bytes) but {len(data)} bytes are there"
        )
    raw = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    if width == 1:
        x = (raw.float() - 128) / 128
    elif width == 2:
        x = raw.view(torch.int16).float() / 32768
    elif width == 3:  # little-endian 24-bit: assemble into int32
        b = raw.view(-1, 3).long()
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        x = (torch.where(v >= 2**23, v - 2**24, v)).float() / 2**23
    elif width == 4:
        x = raw.view(torch.int32).double().div(2**31).float()
    else:
        raise ValueError(f"{path} has {8 * width}-bit samples; use 8, 16, 24 or 32-bit PCM")
    return x.view(frames, channels).T.contiguous(), rate


def write_wav(path: str | Path, signal: torch.Tensor, sample_rate: int) -> None:
    """Write a (C, T) or (T,) signal in [-1, 1] as a 16-bit PCM ``.wav`` file.

    Values are clipped to [-1, 1) and rounded to the nearest 16-bit level.

    Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "tone.wav")
        >>> write_wav(path, make_tones(1, length=400).signals[0], 4000)
        >>> read_wav(path)[0].shape
        torch.Size([1, 400])
    """
    x = signal.detach().float().cpu()
    if x.dim() == 1:
        x = x[None]
    if x.dim() != 2:
        raise ValueError(f"signal must be (C, T) or (T,); got {tuple(signal.shape)}")
    ints = torch.round(x.clamp(-1, 1) * 32768).clamp(-32768, 32767).to(torch.int16)
    with wave.open(str(path), "wb") as f:
        f.setnchannels(x.shape[0])
        f.setsampwidth(2)
        f.setframerate(int(sample_rate))
        f.writeframes(ints.T.contiguous().numpy().tobytes())


def load_wav_folder(
    root: str | Path, *, length: int | None = None, labels_from: str = "folder",
    mono: bool = True,
) -> SignalDataset:
    """Load a folder of labelled recordings (PCM ``.wav``) as a :class:`SignalDataset`.

    Two layouts are understood:

    * ``labels_from="folder"``: ``root/<class name>/<any name>.wav`` (like torchvision's
      ``ImageFolder``);
    * ``labels_from="prefix"``: ``root/<class name>_<anything>.wav``, the label being the
      file name up to its first underscore (the layout of the Free Spoken Digit Dataset,
      ``7_jackson_32.wav``).

    Every file must have the same sample rate (resample them beforehand if not). Signals are
    cropped or zero-padded at the end to ``length`` samples (default: the shortest file).

    Args:
        root: the folder.
        length: samples per signal (T); None uses the shortest recording.
        labels_from: ``"folder"`` or ``"prefix"``.
        mono: average the channels into one.

    Returns:
        signals (N, C, T), labels (N,) in the sorted order of the class names; ``.files``
        lists the source files.

    Raises:
        FileNotFoundError: ``root`` is missing or holds no ``.wav`` file.
        ValueError: a file is corrupt, or the sample rates differ.

    Example:
        >>> import tempfile, os
        >>> root = tempfile.mkdtemp()
        >>> for name in ["low_0.wav", "high_0.wav", "low_1.wav"]:
        ...     write_wav(os.path.join(root, name), torch.zeros(1, 50), 8000)
        >>> ds = load_wav_folder(root, labels_from="prefix")
        >>> ds.classes, ds.labels.tolist(), ds.signals.shape
        (['high', 'low'], [0, 1, 1], torch.Size([3, 1, 50]))
    """
    root = Path(root).expanduser()
    if labels_from not in ("folder", "prefix"):
        raise ValueError(f"labels_from must be 'folder' or 'prefix'; got {labels_from!r}")
    if not root.is_dir():
        raise FileNotFoundError(
            f"no folder at {root}: point root at a folder of .wav files, laid out as "
            "root/<class>/*.wav (labels_from='folder') or root/<class>_*.wav ('prefix')"
        )
    if labels_from == "folder":
        files = sorted(p for p in root.glob("*/*") if p.suffix.lower() == ".wav")
        names = [p.parent.name for p in files]
    else:
        files = sorted(p for p in root.glob("*") if p.suffix.lower() == ".wav")
        names = [p.stem.split("_")[0] for p in files]
    if not files:
        layout = "root/<class>/*.wav" if labels_from == "folder" else "root/<class>_*.wav"
        raise FileNotFoundError(f"no .wav files in {root} with the layout {layout}")
    signals, rates = [], set()
    for p in files:
        x, rate = read_wav(p)
        rates.add(rate)
        signals.append(x.mean(0, keepdim=True) if mono else x)
    if len(rates) > 1:
        raise ValueError(f"the files in {root} have different sample rates {sorted(rates)}; "
                         "resample them to one rate first")
    channels = {x.shape[0] for x in signals}
    if len(channels) > 1:
        raise ValueError(f"the files have different channel counts {sorted(channels)}; "
                         "use mono=True")
    t = length if length is not None else min(x.shape[1] for x in signals)
    out = torch.zeros(len(signals), signals[0].shape[0], t)
    for i, x in enumerate(signals):
        out[i, :, : min(t, x.shape[1])] = x[:, :t]
    classes = sorted(set(names))
    labels = torch.tensor([classes.index(c) for c in names], dtype=torch.long)
    return SignalDataset(out, labels, classes, f"wav:{root.name}", rates.pop(),
                         files=[str(p) for p in files])
