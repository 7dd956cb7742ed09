"""The on-disk run cache: a run is reused only when everything that decides it is the same."""

from __future__ import annotations

import torch

from minissl import cache, data, recipes


def _data():
    train = data.load("shapes", "train", n=64, size=16)
    test = data.load("shapes", "test", n=32, size=16)
    return train, test


def _run(train, test, **kw):
    options = {"seed": 0, "labels_per_class": 2, "epochs": 1, "width": 4, "batch_size": 32}
    return recipes.pretrain_and_score("simclr", train, test, **{**options, **kw})


def test_a_second_identical_run_is_reused(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.ENV_VAR, str(tmp_path))
    train, test = _data()
    first, h1, s1 = _run(train, test)
    second, h2, s2 = _run(train, test)
    assert not s1["cached"] and s2["cached"]
    assert s1["knn"] == s2["knn"] and s1["linear"] == s2["linear"]
    assert h1["loss"] == h2["loss"]
    for (k, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items()):
        assert torch.equal(a, b), k
    assert len(list(tmp_path.glob("*.pt"))) == 1


def test_anything_that_decides_the_run_changes_the_key(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.ENV_VAR, str(tmp_path))
    train, test = _data()
    _run(train, test)
    assert not _run(train, test, epochs=2)[2]["cached"]  # the budget
    assert not _run(train, test, seed=1)[2]["cached"]  # the seed
    assert not _run(train, test, temperature=0.5)[2]["cached"]  # a method argument
    other = data.load("shapes", "train", n=64, size=16, seed=1)
    assert not _run(other, test)[2]["cached"]  # the images
    assert not _run(train, test, labels_per_class=3)[2]["cached"]  # how it is scored
    # what is shown does not decide what is learnt
    assert _run(train, test, fit_overrides={"progress": False, "desc": "x"})[2]["cached"]
    # a changed training option does, and such a run is not stored either
    assert not _run(train, test, fit_overrides={"grad_clip": 1.0})[2]["cached"]
    assert not _run(train, test, fit_overrides={"grad_clip": 1.0})[2]["cached"]


def test_off_damaged_and_unwritable_caches_never_stop_a_run(tmp_path, monkeypatch):
    train, test = _data()
    monkeypatch.setenv(cache.ENV_VAR, "off")
    assert cache.directory() is None
    assert not _run(train, test)[2]["cached"]
    monkeypatch.setenv(cache.ENV_VAR, str(tmp_path))
    _run(train, test)
    (entry,) = tmp_path.glob("*.pt")
    entry.write_bytes(b"not a checkpoint")
    assert not _run(train, test)[2]["cached"]  # made again, and stored afresh
    assert _run(train, test)[2]["cached"]
    blocked = tmp_path / "file"
    blocked.write_text("")
    monkeypatch.setenv(cache.ENV_VAR, str(blocked / "sub"))  # a folder that cannot exist
    assert not _run(train, test)[2]["cached"]


def test_fingerprint_ignores_key_order_and_sees_values():
    assert cache.fingerprint({"a": 1, "b": 2}) == cache.fingerprint({"b": 2, "a": 1})
    assert cache.fingerprint({"a": 1}) != cache.fingerprint({"a": 2})
    assert cache.environment()["source"] == cache.source_digest()


def test_the_same_run_asked_for_in_two_ways_has_one_key(tmp_path, monkeypatch):
    from minissl import profiles

    monkeypatch.setenv(cache.ENV_VAR, str(tmp_path))
    train, test = _data()
    # SimCLR's recipe takes half the profile's batch (recipes.batch_size_of): 32 here
    P = profiles.current().replace(ssl_epochs=1, width=4, batch_size=64)
    _, _, first = recipes.pretrain_and_score("simclr", train, test, seed=0,
                                             labels_per_class=2, profile=P)
    _, _, second = _run(train, test)  # the same budget, spelt out instead of from P
    assert not first["cached"] and second["cached"]


def test_the_device_is_part_of_the_key(monkeypatch):
    assert cache.environment("cpu")["device"] == "cpu"
    cpu = cache.fingerprint(cache.environment("cpu"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla T4")
    gpu = cache.environment("auto")
    assert gpu["device"] == "cuda:Tesla T4"
    assert cache.fingerprint(gpu) != cpu
