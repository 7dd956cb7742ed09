"""Synthetic tones, the simulated pendulum and the WAV loader of minissl.data.signals."""

import math
import wave

import pytest
import torch

from minissl.data import signals


def test_tones_are_seeded_shaped_and_carry_their_factors():
    a = signals.make_tones(64, length=512, seed=3)
    b = signals.make_tones(64, length=512, seed=3)
    assert torch.equal(a.signals, b.signals) and a.signals.shape == (64, 1, 512)
    assert not torch.equal(a.signals, signals.make_tones(64, length=512, seed=4).signals)
    assert torch.equal(a.labels, a.factors["pitch"]) and a.num_classes == 8
    timbre = signals.make_tones(64, length=512, seed=3, label="timbre")
    assert timbre.classes == list(signals.TIMBRES) and torch.equal(
        timbre.labels, a.factors["timbre"])
    with pytest.raises(ValueError, match="pitch"):
        signals.make_tones(4, label="loudness")


def test_the_pitch_is_where_the_spectrum_peaks():
    # A pure, noiseless, flat (tremolo) tone: its spectral peak is its frequency.
    ds = signals.make_tones(200, length=4000, noise=0.0, seed=0)
    f = ds.factors
    rows = ((f["timbre"] == 0) & (f["envelope"] == 2)).nonzero().flatten()
    assert len(rows) > 5
    spectrum = torch.fft.rfft(ds.signals[rows, 0]).abs()  # 1 Hz bins (T = sample rate)
    peak_hz = spectrum.argmax(1).float()
    assert torch.allclose(peak_hz, f["frequency"][rows], atol=1.0)


def test_pendulum_conserves_energy_without_damping_and_loses_it_with():
    p = signals.simulate_pendulum(8, 300, seed=0)
    e = signals.pendulum_energy(p.theta, p.omega)  # (8, 300)
    assert (e - e[:, :1]).abs().max() < 1e-3 * e.mean()  # leapfrog: a tiny oscillation
    assert p.theta.abs().max() < math.pi  # it swings, never goes over the top
    damped = signals.simulate_pendulum(8, 300, damping=0.5, seed=0)
    ed = signals.pendulum_energy(damped.theta, damped.omega)
    assert (ed[:, -1] < 0.5 * ed[:, 0]).all()


def test_pendulum_velocity_is_the_derivative_of_the_angle():
    p = signals.simulate_pendulum(4, 100, seed=1)
    finite = (p.theta[:, 2:] - p.theta[:, :-2]) / (2 * p.dt)  # central difference
    err = (finite - p.omega[:, 1:-1]).abs().max()
    assert err < 0.05 * p.omega.abs().max()


def test_pendulum_sensors_and_windows():
    p = signals.simulate_pendulum(3, 40, seed=0, noise=0.0)
    q = signals.simulate_pendulum(3, 40, seed=1, noise=0.0)
    assert torch.equal(p.mixing, q.mixing)  # same sensors for a training and a test set
    assert p.sensors.shape == (3, 8, 40)
    w, s = p.windows(10, stride=5)
    assert w.shape == (3 * 7, 8, 10) and s.shape == (21, 2)
    # window 8 of the list is trajectory 1's second window: samples 5..14, state at 14
    assert torch.equal(w[8], p.sensors[1, :, 5:15])
    assert torch.equal(s[8], torch.stack([p.theta[1, 14], p.omega[1, 14]]))
    with pytest.raises(ValueError, match="width"):
        p.windows(41)
    with pytest.raises(ValueError, match="max_angle"):
        signals.simulate_pendulum(2, 10, max_angle=4.0)


def _write(path, frames, rate=8000, width=2, channels=1):
    with wave.open(str(path), "wb") as f:
        f.setnchannels(channels)
        f.setsampwidth(width)
        f.setframerate(rate)
        f.writeframes(frames)


def test_wav_fixture_reads_back_exactly(tmp_path):
    values = torch.tensor([0, 1, -1, 32767, -32768, 1234, -4321], dtype=torch.int16)
    (tmp_path / "yes").mkdir()
    (tmp_path / "no").mkdir()
    _write(tmp_path / "yes" / "a.wav", values.numpy().tobytes())
    _write(tmp_path / "no" / "b.wav", values.flip(0).numpy().tobytes())
    x, rate = signals.read_wav(tmp_path / "yes" / "a.wav")
    assert rate == 8000 and torch.equal(x, values.float()[None] / 32768)
    ds = signals.load_wav_folder(tmp_path)
    assert ds.classes == ["no", "yes"] and ds.labels.tolist() == [0, 1]
    assert torch.equal(ds.signals[1, 0], values.float() / 32768)
    assert ds.sample_rate == 8000 and ds.files[1].endswith("a.wav")
    # write_wav -> read_wav is exact on 16-bit levels, and stereo is averaged to mono
    stereo = torch.stack([values.float(), values.flip(0).float()]) / 32768
    signals.write_wav(tmp_path / "s.wav", stereo, 16000)
    back, rate = signals.read_wav(tmp_path / "s.wav")
    assert rate == 16000 and torch.equal(back, stereo)
    # 8-bit WAV is unsigned
    _write(tmp_path / "u8.wav", bytes([0, 128, 255]), width=1)
    assert signals.read_wav(tmp_path / "u8.wav")[0].tolist() == [[-1.0, 0.0, 127 / 128]]


def test_wav_loader_errors_say_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="no folder"):
        signals.load_wav_folder(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="no .wav files"):
        signals.load_wav_folder(tmp_path)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "bad.wav").write_bytes(b"RIFF not really a wav file")
    with pytest.raises(ValueError, match="bad.wav"):
        signals.load_wav_folder(tmp_path)
    good = tmp_path / "c" / "good.wav"
    _write(good, bytes(200))
    (tmp_path / "c" / "bad.wav").write_bytes(good.read_bytes()[:100])  # truncated
    with pytest.raises(ValueError, match="truncated"):
        signals.read_wav(tmp_path / "c" / "bad.wav")
    (tmp_path / "c" / "bad.wav").unlink()
    _write(tmp_path / "c" / "other.wav", bytes(200), rate=16000)
    with pytest.raises(ValueError, match="sample rates"):
        signals.load_wav_folder(tmp_path)


def test_signal_dataset_checks_and_fast_path():
    ds = signals.make_tones(8, length=64)
    assert ds.images is ds.signals and len(ds.subset([1, 2])) == 2
    with pytest.raises(ValueError, match=r"\(N, C, T\)"):
        signals.SignalDataset(torch.zeros(3, 10), torch.zeros(3, dtype=torch.long), ["a"], "x")
