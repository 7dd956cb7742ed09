"""Language pretext tasks: BERT masking, a causal GPT, BPE, generation, fine-tuning on text."""

import math

import pytest
import torch

from minissl import evaluate as ev
from minissl import methods
from minissl.data import (
    DOC_CLASSES,
    BPETokenizer,
    CharTokenizer,
    DocPassages,
    mlm_mask,
    text_corpus,
    token_windows,
)
from minissl.data.corpora import _topics
from minissl.data.passages import TOPIC_SOURCE
from minissl.methods.gpt import unigram_perplexity
from minissl.nn.transformer import TextEncoder, TokenTransformer
from minissl.train import TrainConfig, fit

SPECIAL = (0, 1, 2, 3, 4)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def tiny(cls, vocab_size=40, max_len=16, **kw):
    return cls(vocab_size=vocab_size, dim=16, depth=2, heads=2, max_len=max_len, **kw)


# ------------------------------------------------------------------------------------ masking


def test_mlm_mask_chooses_the_right_share_and_splits_it_80_10_10():
    V = 1000
    x = torch.randint(5, V, (400, 128), generator=gen(1))
    x[:, 0], x[:, -7:] = 3, 0  # a <bos> and some padding in every row: never chosen
    inputs, labels = mlm_mask(x, mask_id=2, vocab_size=V, mask_prob=0.15,
                              special_ids=SPECIAL, generator=gen(2))
    chosen = labels != -100
    n = (~torch.isin(x, torch.tensor(SPECIAL))).sum(1)  # 120 eligible per row
    assert chosen.sum(1).tolist() == (n * 0.15).round().long().tolist()  # exactly 15% per row
    assert not chosen[:, 0].any() and not chosen[:, -7:].any()  # specials never chosen
    assert torch.equal(inputs[~chosen], x[~chosen])  # nothing else touched
    assert torch.equal(labels[chosen], x[chosen])  # labels are the originals, only there
    total = chosen.sum().item()  # 7,200 chosen positions
    as_mask = (inputs[chosen] == 2).sum().item() / total
    kept = (inputs[chosen] == x[chosen]).sum().item() / total
    replaced = 1 - as_mask - kept
    # Standard error of a share near 0.1 over 7,200 draws is 0.0035: 0.015 is > 4 of them.
    assert abs(as_mask - 0.8) < 0.015 and abs(kept - 0.1) < 0.015 and abs(replaced - 0.1) < 0.015
    swapped = chosen & (inputs != 2) & (inputs != x)
    assert not torch.isin(inputs[swapped], torch.tensor(SPECIAL)).any()  # replacements normal
    # Chosen positions are spread over the whole row, not bunched at its start.
    col = chosen[:, 1:-7].float().mean(0)
    assert col.min() > 0.05 and col.max() < 0.25


def test_mlm_mask_is_seeded_and_checks_its_input():
    x = torch.randint(5, 50, (8, 32), generator=gen())
    a = mlm_mask(x, 2, 50, special_ids=SPECIAL, generator=gen(7))
    b = mlm_mask(x, 2, 50, special_ids=SPECIAL, generator=gen(7))
    c = mlm_mask(x, 2, 50, special_ids=SPECIAL, generator=gen(8))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])
    one_d, lab = mlm_mask(x[0], 2, 50, mask_prob=0.5, generator=gen())
    assert one_d.shape == (32,) and (lab != -100).sum() == 16
    short = torch.tensor([[3, 7, 0, 0]])  # one eligible token: 15% rounds to 0, still one chosen
    assert ((mlm_mask(short, 2, 50, special_ids=SPECIAL)[1] != -100).sum()) == 1
    with pytest.raises(ValueError, match="integer ids"):
        mlm_mask(x.float(), 2, 50)
    with pytest.raises(ValueError, match=r"mask_prob must lie in \[0, 1\]"):
        mlm_mask(x, 2, 50, mask_prob=1.5)
    with pytest.raises(ValueError, match="mask_id=60"):
        mlm_mask(x, 60, 50)


def test_token_windows():
    w = token_windows(torch.arange(10), 4, stride=2)
    assert w.tolist() == [[0, 1, 2, 3], [2, 3, 4, 5], [4, 5, 6, 7], [6, 7, 8, 9]]
    with pytest.raises(ValueError, match="fewer than one window"):
        token_windows([1, 2], 4)


# -------------------------------------------------------------------------------- tokenizer


@pytest.fixture(scope="module")
def bpe():
    return BPETokenizer.from_text(text_corpus("train")[:60_000], vocab_size=600)


def test_bpe_round_trips_any_text_and_compresses(bpe):
    train, valid = text_corpus("train")[:60_000], text_corpus("valid")[:20_000]
    for text in (train, valid, "", "naïve café — 日本語 🙂\x00\t\n  x", "<mask> <0x41>"):
        ids = bpe.encode(text)
        assert bpe.decode(ids) == text
        assert all(5 <= i < bpe.vocab_size for i in ids)  # never a special id by accident
    assert bpe.vocab_size == 600
    assert len(bpe.encode(valid)) < 0.6 * len(CharTokenizer.from_text(train).encode(valid))
    merged = [bpe.itos[i] for i in bpe.encode(" the target object")]
    assert merged == [" the", " target", " object"]  # frequent words became single tokens
    wrapped = bpe.encode("if x:", add_bos=True, add_eos=True)
    assert wrapped[0] == bpe.bos_id and wrapped[-1] == bpe.eos_id
    assert bpe.decode(wrapped) == "if x:"
    assert bpe.decode([bpe.mask_id, *bpe.encode("ab")], skip_special=False) == "<mask>ab"


def test_bpe_is_deterministic_and_rebuilds_from_its_merges(bpe):
    again = BPETokenizer.from_text(text_corpus("train")[:60_000], vocab_size=600)
    assert again.merges == bpe.merges and again.itos == bpe.itos
    rebuilt = BPETokenizer(bpe.chars, bpe.merges)
    text = text_corpus("valid")[:5_000]
    assert rebuilt.encode(text) == bpe.encode(text)
    with pytest.raises(ValueError, match="use at least"):
        BPETokenizer.from_text("abc", vocab_size=100)
    with pytest.raises(ValueError, match="out of range"):
        bpe.decode([10_000])


# ------------------------------------------------------------------------------- the models


@pytest.mark.parametrize("pad", [False, True])
def test_gpt_never_sees_the_future(pad):
    gpt = tiny(methods.GPT).eval()
    x = torch.randint(5, 40, (3, 16), generator=gen())
    if pad:
        x[0, :3] = 0  # left padding makes the model take the explicit-mask path
    base = gpt(x)
    for t in (0, 5, 14):
        y = x.clone()
        y[:, t + 1:] = torch.randint(5, 40, y[:, t + 1:].shape, generator=gen(t))
        out = gpt(y)
        torch.testing.assert_close(out[:, : t + 1], base[:, : t + 1], atol=1e-5, rtol=1e-5)
        assert not torch.allclose(out[:, t + 1:], base[:, t + 1:], atol=1e-3)
    bert = tiny(methods.BERT).eval()  # the test has teeth: a bidirectional model does see it
    y = x.clone()
    y[:, -1] = (y[:, -1] + 1 - 5) % 35 + 5
    assert not torch.allclose(bert(y)[:, 0], bert(x)[:, 0], atol=1e-4)


@pytest.mark.parametrize("cls", [methods.BERT, methods.GPT])
def test_output_layer_is_the_input_embedding(cls):
    model = tiny(cls)
    emb = model.transformer.tok_embed.weight
    vocab_by_dim = [p for p in model.parameters() if p.shape == emb.shape]
    assert len(vocab_by_dim) == 1 and vocab_by_dim[0] is emb  # one (V, D) matrix, shared
    h = torch.randn(2, 3, 16)
    torch.testing.assert_close(model.transformer.logits(h),
                               h @ emb.T + model.transformer.out_bias)
    # Gradients reach the matrix through the output side too: a token that is never an
    # input still gets a gradient when it is a target.
    x = torch.randint(5, 20, (4, 16), generator=gen())
    x[:, -1] = 39
    model.zero_grad()
    if cls is methods.GPT:
        model.training_step((x, None))["loss"].backward()
        assert emb.grad[39].abs().sum() > 0 and emb.grad[30].abs().sum() > 0
    else:
        model(x).logsumexp(-1).sum().backward()
        assert emb.grad[30].abs().sum() > 0


def test_bert_learns_to_fill_in_a_masked_token():
    # Rows that repeat one token: a masked token is the token all around it.
    windows = torch.randint(5, 25, (512, 1), generator=gen()).repeat(1, 16)
    # Seeded weights: the first loss depends on the initialisation (about 1 in 20 unseeded
    # inits starts more than 1 nat from log V), and under xdist the global RNG's state depends
    # on which tests ran before this one in the same worker.
    torch.manual_seed(0)
    bert = tiny(methods.BERT, vocab_size=25, dropout=0.0)
    bert.generator = gen()
    out = bert.training_step((windows[:8], None))
    assert 0.0 <= float(out["mlm_accuracy"]) <= 1.0
    assert abs(out["loss"].item() - math.log(25)) < 1.0  # near-uniform guesses at the start
    hist = fit(bert, windows, TrainConfig(max_steps=80, batch_size=32, lr=1e-2, progress=False))
    last_loss = sum(hist["loss"][-10:]) / 10
    assert last_loss < 0.2 * hist["loss"][0] and sum(hist["mlm_accuracy"][-10:]) / 10 > 0.95
    guesses, probs = bert.fill_mask(torch.tensor([9, 9, 9, 2, 9, 9]), k=3)
    assert guesses.shape == (1, 3) and int(guesses[0, 0]) == 9 and probs[0, 0] > probs[0, 1]
    assert bert.training  # fill_mask put the mode back


def test_gpt_learns_a_pattern_far_below_the_unigram_perplexity():
    stream = torch.arange(3000) % 20 + 5
    train, held_out = stream[:2500], stream[2500:]
    torch.manual_seed(0)  # seeded weights, as in the BERT test
    gpt = tiny(methods.GPT, vocab_size=25, dropout=0.0)
    before = gpt.perplexity(held_out)
    assert 10 < before < 60  # about V when untrained
    fit(gpt, token_windows(train, 17, stride=4),
        TrainConfig(max_steps=60, batch_size=32, lr=1e-2, progress=False))
    unigram = unigram_perplexity(train, held_out, 25)
    assert 19 < unigram < 21  # 20 equally frequent tokens
    assert gpt.perplexity(held_out) < 1.5 < unigram


def test_perplexity_of_a_stream_predicts_every_token_once():
    gpt = tiny(methods.GPT, max_len=8).eval()
    stream = torch.randint(5, 40, (30,), generator=gen())
    # By hand: windows of 9 tokens starting every 8, then the 6-token rest (30 = 1 + 8*3 + 5).
    with torch.no_grad():
        nll = sum(gpt.loss(stream[s:s + 9][None], reduction="sum") for s in (0, 8, 16))
        nll = nll + gpt.loss(stream[24:][None], reduction="sum")
    assert gpt.perplexity(stream) == pytest.approx(math.exp(float(nll) / 29), rel=1e-5)
    assert unigram_perplexity(torch.tensor([5, 5, 6]), torch.tensor([5]), 7,
                              smoothing=0.0) == pytest.approx(1.5)


def test_generate_length_seed_and_greedy():
    gpt = tiny(methods.GPT)
    prompt = torch.tensor([5, 6, 7])
    a = gpt.generate(prompt, max_new_tokens=20, seed=1)
    assert a.shape == (23,) and torch.equal(a[:3], prompt)
    assert torch.equal(a, gpt.generate(prompt, max_new_tokens=20, generator=gen(1)))
    assert not torch.equal(a, gpt.generate(prompt, max_new_tokens=20, seed=2))
    greedy = gpt.generate(prompt, 20, temperature=0)
    assert torch.equal(greedy, gpt.generate(prompt, 20, top_k=1, seed=3))
    batch = gpt.generate(torch.tensor([[5, 6], [8, 9]]), max_new_tokens=30, top_k=5, seed=0)
    assert batch.shape == (2, 32)  # longer than max_len=16: the context is cut, not refused
    assert gpt.generate(prompt, 0).tolist() == [5, 6, 7]
    assert gpt.training  # generate put the mode back
    with pytest.raises(ValueError, match="temperature"):
        gpt.generate(prompt, 3, temperature=-1)
    with pytest.raises(ValueError, match="top_k"):
        gpt.generate(prompt, 3, top_k=0)


def test_model_errors_name_the_fix():
    gpt = tiny(methods.GPT)
    with pytest.raises(ValueError, match="longer than max_len=16"):
        gpt(torch.randint(5, 40, (1, 17)))
    with pytest.raises(ValueError, match=r"token ids must have shape \(B, T\)"):
        gpt(torch.randint(5, 40, (17,)))
    with pytest.raises(ValueError, match="unknown pooling 'cls'"):
        TextEncoder(gpt.transformer, pooling="cls")
    assert "BERT" in methods.available() and "GPT" in methods.available()


# ---------------------------------------------------------------------------- fine-tuning


def test_text_encoder_ignores_padding_and_accepts_float_ids():
    enc = TextEncoder(TokenTransformer(40, dim=16, depth=1, heads=2, max_len=10)).eval()
    x = torch.tensor([[3, 7, 8, 9]])
    padded = torch.tensor([[3, 7, 8, 9, 0, 0, 0]])
    torch.testing.assert_close(enc(x), enc(padded))
    torch.testing.assert_close(enc(x.float()), enc(x))
    last = TextEncoder(enc.transformer, pooling="last")
    torch.testing.assert_close(last(padded), enc.transformer(x)[:, -1])


@pytest.mark.parametrize("freeze", [True, False])
def test_fine_tuning_text_frozen_or_not(freeze):
    # Two classes told apart by which of two tokens fills every other position; the
    # classifier sits on the pooled output.
    x = torch.randint(5, 30, (64, 12), generator=gen())
    y = torch.arange(64) % 2
    x[:, ::2] = torch.where(y == 1, 31, 32)[:, None]
    bert = tiny(methods.BERT)
    before = {k: v.clone() for k, v in bert.encoder.state_dict().items()}
    res = ev.fine_tune(bert.encoder, (x, y), (x, y), num_classes=2, epochs=40, lr=1e-2,
                       encoder_lr_scale=0.1, freeze_encoder=freeze, batch_size=32)
    assert res.accuracy > 0.9
    tuned = res.model[0].state_dict()
    changed = [k for k in before if not torch.equal(before[k], tuned[k])]
    assert (changed == []) if freeze else len(changed) > 0
    assert all(torch.equal(v, bert.encoder.state_dict()[k]) for k, v in before.items())


# ------------------------------------------------------------------------ labelled passages


def test_doc_passages_are_real_deduplicated_and_balanced_enough():
    ds = DocPassages()
    assert len(ds) > 500 and ds.classes == list(DOC_CLASSES) and ds.num_classes == 4
    counts = torch.bincount(ds.labels, minlength=4)
    assert (counts > 100).all()
    assert len(set(ds.texts)) == len(ds)  # umbrella topics do not repeat passages
    assert all(len(t) >= 200 for t in ds.texts)
    known = set(_topics()) & set(TOPIC_SOURCE)  # a newer Python may add a topic or two
    assert len(known) >= 0.95 * len(_topics())
    text, label = ds[ds.topics.index("import")]
    assert "import" in text and ds.classes[label] == "statements"
    assert "while" not in ds.topics  # its text is all in the umbrella topic "compound"
    assert ds.classes[ds.labels[ds.topics.index("string-methods")]] == "library reference"
    tok = CharTokenizer.from_text(text_corpus())
    ids = ds.encode(tok, 32)
    assert ids.shape == (len(ds), 32) and (ids[:, 0] == tok.bos_id).all()
    assert tok.decode(ids[0]) == ds.texts[0][:31]
    short = ds.encode(tok, 400)
    assert (short == tok.pad_id).any()  # short passages are padded at the end
