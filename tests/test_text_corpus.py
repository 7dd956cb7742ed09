"""Text corpora by name: the embedded help topics and WikiText read from its real archive.

The WikiText fixtures are tiny but in the published format: a zip named
``wikitext-2-raw-v1.zip`` whose members are ``wikitext-2-raw/wiki.{train,valid,test}.raw``,
UTF-8 lines with `` = Title = `` headings and the corpus's `` @,@ `` / `` @-@ `` marks.
Downloads go through ``file://`` URLs, so nothing touches the network.
"""

import dataclasses
import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from minissl import cli, data, profiles
from minissl.data import corpora as text_module
from minissl.data import text_corpora, text_corpus, text_splits
from minissl.utils import MinisslError

ARCHIVE = "wikitext-2-raw-v1.zip"
FIXTURE = {
    "train": (
        " \n = Harbour Lighthouse = \n \n"
        " The tower stands 42 @.@ 5 metres tall on a well @-@ known headland . \n"
        " It was lit in 1 @,@ 871 and rebuilt after a storm in Zürich 's shipping year . \n"
        " \n = = Design = = \n \n The lamp turns once every ten seconds . \n"
    ),
    "valid": " \n = Mill Creek = \n \n A short stream that feeds the old mill pond . \n",
    "test": " \n = Glass Bridge = \n \n The bridge opened to walkers in spring . \n",
}


def write_wikitext2(root: Path, splits=("train", "valid", "test"), *, stored=False) -> Path:
    """The archive as published (members under wikitext-2-raw/), with FIXTURE's text."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / ARCHIVE
    method = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(path, "w", compression=method) as zf:
        for split in splits:
            zf.writestr(f"wikitext-2-raw/wiki.{split}.raw", FIXTURE[split].encode("utf-8"))
    return path


@pytest.fixture
def served(tmp_path, monkeypatch):
    """A fixture archive behind file:// URLs (the first one broken) and its real SHA-256."""
    source = write_wikitext2(tmp_path / "server")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    broken = (tmp_path / "server" / "gone.zip").as_uri()
    entry = dataclasses.replace(text_module._PUBLIC["wikitext2"], sha256=digest,
                                urls=(broken, source.as_uri()))
    monkeypatch.setitem(text_module._PUBLIC, "wikitext2", entry)
    return source


def test_embedded_corpus_calls_are_unchanged():
    everything = text_corpus()
    assert text_corpus("all") == everything == text_corpus("pydoc") == text_corpus("pydoc", "all")
    assert text_corpus("train") == text_corpus("pydoc", "train")
    assert text_corpus("valid") == text_corpus("pydoc", "valid") == text_corpus(split="valid")
    assert len(text_corpus("train")) > 0.8 * len(everything)
    with pytest.raises(ValueError, match=r"use one of the corpora \['pydoc', 'wikitext2'"):
        text_corpus("wikitext")
    with pytest.raises(ValueError, match="use one of"):
        text_corpus("pydoc", "test")
    with pytest.raises(ValueError, match="no second split; .* text_corpus\\('pydoc', 'valid'\\)"):
        text_corpus("train", "valid")


def test_names_and_splits_are_listed():
    assert list(text_corpora()) == ["pydoc", "wikitext2", "wikitext103"]
    assert "WikiText-2" in text_corpora()["wikitext2"]
    assert text_splits("pydoc") == ("train", "valid", "all")
    assert text_splits("wikitext103") == ("train", "valid", "test")
    with pytest.raises(ValueError, match="unknown text corpus 'wiki'"):
        text_splits("wiki")


def test_reads_every_split_from_the_published_zip(tmp_path):
    write_wikitext2(tmp_path)
    for split in ("train", "valid", "test"):
        assert text_corpus("wikitext2", split, root=tmp_path) == FIXTURE[split]
    assert text_corpus("wikitext2", root=str(tmp_path)) == FIXTURE["train"]  # default: train
    train = text_corpus("wikitext2", "train", root=tmp_path)
    assert " = Harbour Lighthouse = " in train and "Zürich" in train and "1 @,@ 871" in train
    with pytest.raises(ValueError, match=r"unknown split 'all' for 'wikitext2'; use one of"):
        text_corpus("wikitext2", "all", root=tmp_path)


def test_reads_the_extracted_folder_and_uses_the_data_env_var(tmp_path, monkeypatch):
    with zipfile.ZipFile(write_wikitext2(tmp_path / "zip")) as zf:
        zf.extractall(tmp_path / "data")  # what `unzip wikitext-2-raw-v1.zip` leaves
    assert (tmp_path / "data" / "wikitext-2-raw" / "wiki.valid.raw").exists()
    monkeypatch.setenv("MINISSL_DATA", str(tmp_path / "data"))
    assert text_corpus("wikitext2", "valid") == FIXTURE["valid"]
    assert text_corpus("wikitext2", "test", root=tmp_path / "data") == FIXTURE["test"]


def test_missing_files_say_how_to_download(tmp_path):
    with pytest.raises(MinisslError) as err:
        text_corpus("wikitext2", "train", root=tmp_path)
    message = str(err.value)
    assert "WikiText-2 (raw) was not found under" in message
    assert "python -m minissl download wikitext2" in message and "download=True" in message
    assert "wikitext-2-raw-v1.zip" in message and "MINISSL_DATA" in message
    assert not any(tmp_path.iterdir())  # nothing was downloaded without download=True


def test_truncated_zip_is_reported_as_corrupt(tmp_path):
    path = write_wikitext2(tmp_path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # a cut-off download
    with pytest.raises(MinisslError, match=r"looks corrupt or truncated \(BadZipFile") as err:
        text_corpus("wikitext2", "train", root=tmp_path)
    assert "python -m minissl download wikitext2" in str(err.value)


def test_damaged_member_and_missing_member_are_reported(tmp_path):
    path = write_wikitext2(tmp_path, splits=("train", "valid"), stored=True)
    raw = bytearray(path.read_bytes())
    at = raw.index(b"Harbour")  # stored uncompressed: flip a byte of the text itself
    raw[at] ^= 0x20
    path.write_bytes(bytes(raw))
    with pytest.raises(MinisslError, match="corrupt or truncated.*CRC"):
        text_corpus("wikitext2", "train", root=tmp_path)
    assert text_corpus("wikitext2", "valid", root=tmp_path) == FIXTURE["valid"]  # intact
    with pytest.raises(MinisslError, match="no member wikitext-2-raw/wiki.test.raw"):
        text_corpus("wikitext2", "test", root=tmp_path)


def test_broken_extracted_files_are_reported(tmp_path):
    folder = tmp_path / "wikitext-2-raw"
    folder.mkdir()
    (folder / "wiki.train.raw").write_bytes(FIXTURE["train"].encode("utf-8")[:-60] + b"\xc3")
    (folder / "wiki.valid.raw").write_bytes(b"")
    with pytest.raises(MinisslError, match="corrupt or truncated.*not UTF-8 text"):
        text_corpus("wikitext2", "train", root=tmp_path)
    with pytest.raises(MinisslError, match="corrupt or truncated.*wiki.valid.raw is empty"):
        text_corpus("wikitext2", "valid", root=tmp_path)


def test_download_tries_the_mirrors_and_checks_the_sha256(tmp_path, served, capsys):
    root = tmp_path / "cache"
    assert text_corpus("wikitext2", "valid", root=root, download=True) == FIXTURE["valid"]
    assert "downloading WikiText-2 (raw)" in capsys.readouterr().out
    assert (root / ARCHIVE).read_bytes() == served.read_bytes()
    assert sorted(p.name for p in root.iterdir()) == [ARCHIVE]  # no .part file left
    # Present now: a second call reads the file and downloads nothing.
    assert text_corpus("wikitext2", "test", root=root, download=True) == FIXTURE["test"]
    assert "downloading" not in capsys.readouterr().out


def test_download_with_a_wrong_checksum_keeps_nothing(tmp_path, served, monkeypatch):
    entry = dataclasses.replace(text_module._PUBLIC["wikitext2"], sha256="0" * 64)
    monkeypatch.setitem(text_module._PUBLIC, "wikitext2", entry)
    root = tmp_path / "cache"
    with pytest.raises(MinisslError, match="could not download WikiText-2") as err:
        text_corpus("wikitext2", root=root, download=True)
    assert "is not the published 0000" in str(err.value)  # the served file's hash is named
    assert "gone.zip" in str(err.value)  # and the mirror that failed too
    assert not list(root.iterdir())


def test_cli_download_fetches_and_reads_a_text_corpus(tmp_path, served, capsys):
    root = tmp_path / "cache"
    assert cli.main(["download", "wikitext2", "--root", str(root),
                     "--splits", "train", "valid", "test"]) == 0
    out = capsys.readouterr().out
    words = len(FIXTURE["train"].split())
    assert f"wikitext2/train: {len(FIXTURE['train']):,} characters, {words:,} words" in out
    assert "wikitext2/valid:" in out and "wikitext2/test:" in out
    assert (root / ARCHIVE).exists()
    with pytest.raises(SystemExit, match="unknown data set 'wikitext'.*text corpora"):
        cli.main(["download", "wikitext", "--root", str(root)])


def test_profiles_name_known_corpora_and_chapter_4_loads_them():
    assert profiles.PROFILES["quick"].text_dataset == "pydoc"  # offline, as CI runs it
    assert profiles.PROFILES["full"].text_dataset == "wikitext2"
    assert all(p.text_dataset in data.text_corpora() for p in profiles.PROFILES.values())
    chapter = Path(__file__).parents[1] / "chapters" / "04_predictive_coding.ipynb"
    code = "".join("".join(c["source"]) for c in json.loads(chapter.read_text())["cells"]
                   if c["cell_type"] == "code")
    assert 'text_corpus(P.text_dataset, "train", download=True)' in code
