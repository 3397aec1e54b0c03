"""DF-GAN: block shapes, the matching-aware gradient penalty (zero-centred, differentiable,
scale-invariant under 16-mixed), the discriminator's hinge loss, the text-interpolation
hooks, mixed precision and exact resume."""
import functools
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.plugins import MixedPrecision

import t2i.tasks.df_gan as df_gan
from t2i.nets.df_gan import Affine, DBlock, DFBlock, DFDiscriminator, DFGenerator, GBlock, widths
from t2i.run import build, train
from t2i.tasks.df_gan import DFGAN, matching_aware_gradient_penalty
from t2i.tasks.gan import weighted_mean
from t2i.tasks.gan_cls import GANCLS
from t2i.tasks.text_to_image import differs_from_rolled
from tests.test_text_to_image import caption_batch

D = 16  # word vector size in the unit tests
ADAM = functools.partial(torch.optim.Adam, lr=1e-4, betas=(0.0, 0.9))
TINY = ["experiment=shapes_dfgan", "data.splits=[256,64,64]", "data.embedding_dim=16", "data.word2vec.epochs=2",
        "model.ngf=4", "model.ndf=4", "model.text_dim=8", "model.ema_decay=0.9", "trainer.enable_progress_bar=false",
        "callbacks.sample_grid.every_n_steps=1000", "trainer.log_every_n_steps=1", "logger=csv",
        "evaluate_after_fit=false"]


@pytest.fixture(autouse=True)
def one_thread():
    """1 torch thread: on busy shared cores 2 threads made these small nets ~30x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_dfgan(size=32, channels=1, **kw) -> DFGAN:
    return DFGAN(channels, size, D, ngf=4, ndf=4, text_dim=8, optimizer_g=ADAM, optimizer_d=ADAM, **kw)


# ---------------------------------------------------------------------- nets
@pytest.mark.parametrize("size, channels, levels", [(32, 1, 3), (64, 3, 4)])
def test_every_block_shape(size, channels, levels):
    cond, h = torch.randn(5, 12), torch.randn(5, 8, 6, 6)
    assert Affine(12, 8)(h, cond).shape == DFBlock(12, 8)(h, cond).shape == (5, 8, 6, 6)
    assert GBlock(12, 8, 4)(h, cond).shape == (5, 4, 12, 12)  # upsampled, narrower
    assert DBlock(8, 16)(h).shape == (5, 16, 3, 3)  # downsampled, wider
    assert widths(4, size) == [4 * min(2 ** i, 8) for i in range(levels + 1)]

    batch = caption_batch(b=5, size=size, channels=channels)
    g = DFGenerator(10, D, channels, size, ngf=4, text_dim=8)
    d = DFDiscriminator(channels, D, size, ndf=4, text_dim=8)
    assert len(g.blocks) == len(d.blocks) == levels  # 4x4 <-> size in 2x steps
    fake = g(torch.randn(5, 10), batch["word_vectors"], batch["length"])
    assert fake.shape == (5, channels, size, size) and fake.abs().max() <= 1
    assert d.features(fake).shape == (5, widths(4, size)[-1], 4, 4)
    assert d(fake, batch["word_vectors"], batch["length"]).shape == (5,)
    assert not {id(p) for p in g.parameters()} & {id(p) for p in d.parameters()}  # disjoint: one optimiser each


def test_affine_starts_as_the_identity_and_then_reads_the_condition():
    affine, h = Affine(6, 3), torch.randn(4, 3, 5, 5)
    cond = torch.randn(4, 6)
    assert torch.equal(affine(h, cond), h)
    with torch.no_grad():
        affine.gamma[2].weight.normal_()
    out, out_other = affine(h, cond), affine(h, cond.flip(0))
    assert not torch.allclose(out, h) and not torch.allclose(out, out_other)


@pytest.mark.parametrize("size", [48, 2, 0])
def test_bad_image_size_names_the_setting(size):
    with pytest.raises(ValueError, match="data.image_size"):
        DFGenerator(10, D, 1, size)


@pytest.mark.parametrize("kw, message", [({"gp_weight": -1.0}, "gp_weight"), ({"gp_exponent": 0.0}, "gp_exponent"),
                                         ({"text_encoder": "cnn"}, "text_encoder")])
def test_bad_settings_fail_fast(kw, message):
    with pytest.raises(ValueError, match=message):
        tiny_dfgan(**kw)


# --------------------------------------------------------------------- MA-GP
def test_ma_gp_is_zero_centred():
    """For a linear D(x, s) = w·x + v·s the input gradient is (w, v) for every item, so
    the penalty is k·‖(w, v)‖^p: 0 at a flat D, growing with the gradient's norm."""
    x = torch.randn(3, 1, 2, 2, requires_grad=True)
    s = torch.randn(3, 5, requires_grad=True)
    w, v = torch.randn(4), torch.randn(5)
    norm = torch.cat([w, v]).norm()
    penalties = []
    for c in (0.0, 0.5, 1.0, 2.0):
        scores = x.flatten(1) @ (c * w) + s @ (c * v)
        penalty = matching_aware_gradient_penalty(scores, x, s, weight=2.0, exponent=6.0)
        assert torch.allclose(penalty, 2.0 * (c * norm) ** 6, rtol=1e-5)
        penalties.append(penalty.item())
    assert penalties[0] == 0 and penalties == sorted(penalties) and len(set(penalties)) == 4


def test_ma_gp_gradient_matches_finite_differences():
    """The penalty's gradient w.r.t. D's weights (a second-order gradient) and w.r.t. the
    inputs agrees with central finite differences on a tiny smooth net, in float64."""
    torch.manual_seed(0)
    x = torch.randn(4, 3, dtype=torch.float64)
    s = torch.randn(4, 2, dtype=torch.float64)

    def penalty(w_x, w_s, w_out, x, s):
        # the penalty differentiates by the inputs: they must require grad (they do when gradcheck varies them)
        x = x if x.requires_grad else x.detach().requires_grad_(True)
        s = s if s.requires_grad else s.detach().requires_grad_(True)
        scores = torch.tanh(x @ w_x + s @ w_s) @ w_out
        return matching_aware_gradient_penalty(scores, x, s, weight=2.0, exponent=6.0)

    weights = [torch.randn(3, 5, dtype=torch.float64, requires_grad=True),
               torch.randn(2, 5, dtype=torch.float64, requires_grad=True),
               torch.randn(5, dtype=torch.float64, requires_grad=True)]
    assert torch.autograd.gradcheck(lambda a, b, c: penalty(a, b, c, x, s), weights)
    inputs = [x.clone().requires_grad_(True), s.clone().requires_grad_(True)]
    assert torch.autograd.gradcheck(lambda xi, si: penalty(*[w.detach() for w in weights], xi, si), inputs)


def test_ma_gp_is_the_same_at_any_loss_scale():
    """16-mixed: the inner gradient is taken of scale·scores and divided back, so the
    penalty does not depend on the GradScaler's scale."""
    torch.manual_seed(0)
    d = DFDiscriminator(1, D, 32, ndf=4, text_dim=8)
    batch = caption_batch(size=32)
    images = batch["image"].requires_grad_(True)
    sentence = d.sentence(batch["word_vectors"], batch["length"])
    scores = d(images, sentence=sentence)
    plain = matching_aware_gradient_penalty(scores, images, sentence)
    scaled = matching_aware_gradient_penalty(scores, images, sentence, loss_scale=2.0 ** 16)
    assert plain > 0 and torch.allclose(plain, scaled, rtol=1e-4)


def test_penalty_by_the_image_only_and_d_gamma_init():
    """gp_sentence=false (not the paper): the penalty is the image gradient's norm alone,
    smaller than MA-GP's (image, sentence) norm. d_gamma_init sets D's residual gains."""
    torch.manual_seed(0)
    model = tiny_dfgan(gp_sentence=False, d_gamma_init=1.0)
    assert all(block.gamma.item() == 1.0 for block in model.discriminator.blocks)
    assert all(block.gamma.item() == 0.0 for block in tiny_dfgan().discriminator.blocks)  # the paper's code
    batch, fake = caption_batch(size=32), torch.rand(6, 1, 32, 32) * 2 - 1
    _, logs = model.discriminator_loss(batch, fake)
    d = model.discriminator
    images = batch["image"].clone().requires_grad_(True)
    sentence = d.sentence(batch["word_vectors"], batch["length"])
    right = d(images, sentence=sentence)
    (grad,) = torch.autograd.grad(right.sum(), images, retain_graph=True)
    expected = 2.0 * grad.flatten(1).pow(2).sum(1).pow(3).mean()
    assert torch.allclose(logs["train/ma_gp"], expected, rtol=1e-4)
    both = matching_aware_gradient_penalty(right, images, sentence)
    assert both > expected


def test_projection_term_is_the_inner_product_of_text_and_pooled_features():
    """d_projection=true (not the paper): the head's logit gains <W·sentence, mean-pooled
    4x4 features>; off, the head has no projection at all."""
    torch.manual_seed(0)
    assert tiny_dfgan().discriminator.head.project is None
    d = tiny_dfgan(d_projection=True).discriminator.eval()
    images, sentence = torch.rand(4, 1, 32, 32) * 2 - 1, torch.randn(4, 8)
    features = d.features(images)
    without = d.head.net(torch.cat([features, sentence[:, :, None, None].expand(-1, -1, 4, 4)], 1)).view(-1)
    expected = without + (d.head.project(sentence) * features.mean((2, 3))).sum(1)
    assert torch.allclose(d.score(features, sentence), expected, atol=1e-6)
    assert not torch.allclose(d.score(features, sentence), without)


def test_ma_gp_retaken_unscaled_when_the_scaled_gradient_overflows():
    torch.manual_seed(0)
    model = tiny_dfgan()
    batch = caption_batch(size=32)
    fake = torch.rand(6, 1, 32, 32) * 2 - 1
    plain, logs = model.discriminator_loss(batch, fake)
    model.loss_scale = lambda: float("inf")  # a scale whose inner gradient is inf
    overflowed, overflowed_logs = model.discriminator_loss(batch, fake)
    assert torch.isfinite(overflowed) and torch.allclose(overflowed_logs["train/ma_gp"], logs["train/ma_gp"])


# --------------------------------------------------------------- D and G loss
def test_discriminator_loss_is_hinge_plus_half_mismatch_and_fake_plus_penalty():
    torch.manual_seed(0)
    model = tiny_dfgan()
    batch, fake = caption_batch(size=32), torch.rand(6, 1, 32, 32) * 2 - 1
    batch["token_ids"][3] = batch["token_ids"][2]  # item 3's "wrong" caption is its own: left out
    loss, logs = model.discriminator_loss(batch, fake)
    d = model.discriminator
    images = batch["image"].clone().requires_grad_(True)
    sentence = d.sentence(batch["word_vectors"], batch["length"])
    right = d(images, sentence=sentence)
    wrong = d(batch["image"], sentence=sentence.roll(1, 0))
    fake_scores = d(fake, sentence=sentence)
    mask = differs_from_rolled(batch)
    assert mask.tolist() == [True, True, True, False, True, True]
    penalty = matching_aware_gradient_penalty(right, images, sentence)
    expected = (torch.relu(1 - right).mean() + 0.5 * (torch.relu(1 + fake_scores).mean()
                                                     + weighted_mean(torch.relu(1 + wrong), mask)) + penalty)
    assert torch.allclose(loss, expected, atol=1e-6) and torch.allclose(logs["train/ma_gp"], penalty)
    g_loss, _ = model.generator_loss(batch, fake)
    assert torch.allclose(g_loss, -fake_scores.mean(), atol=1e-6)
    model.gp_weight = 0.0
    assert torch.allclose(model.discriminator_loss(batch, fake)[0], expected - penalty, atol=1e-6)


def test_channels_last_gives_the_same_losses_penalty_and_gradients():
    """model.channels_last (shapes_dfgan turns it on for speed): NHWC is another memory
    order, not other maths, the double backward of MA-GP included."""
    torch.manual_seed(0)
    nchw, nhwc = tiny_dfgan(hard_negatives=True), tiny_dfgan(hard_negatives=True)
    nhwc.load_state_dict(nchw.state_dict())
    nhwc.to(memory_format=torch.channels_last)
    batch, fake = caption_batch(size=32), torch.rand(6, 1, 32, 32) * 2 - 1
    nhwc_layout = functools.partial(torch.Tensor.contiguous, memory_format=torch.channels_last)
    loss, logs = nchw.discriminator_loss(batch, fake)
    loss_cl, logs_cl = nhwc.discriminator_loss({**batch, "image": nhwc_layout(batch["image"])}, nhwc_layout(fake))
    assert logs["train/ma_gp"] > 0 and torch.allclose(logs_cl["train/ma_gp"], logs["train/ma_gp"], rtol=1e-4)
    assert torch.allclose(loss_cl, loss, rtol=1e-5)
    loss.backward()
    loss_cl.backward()
    w, w_cl = nchw.discriminator.stem.weight, nhwc.discriminator.stem.weight
    assert w_cl.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(w_cl.grad, w.grad, rtol=1e-4, atol=1e-7)


def test_lazy_penalty_every_nth_d_step_weighted_n_times():
    """gp_every=3 (lazy MA-GP, not the paper): D steps 0, 3, 6 take the penalty at 3x
    its weight, the others none; the rest of the loss is unchanged."""
    torch.manual_seed(0)
    every, lazy = tiny_dfgan(), tiny_dfgan(gp_every=3)
    lazy.load_state_dict(every.state_dict())
    batch, fake = caption_batch(size=32), torch.rand(6, 1, 32, 32) * 2 - 1
    for call in range(7):
        lazy.d_calls = call  # the clock the shared GAN step advances once per D step
        full, full_logs = every.discriminator_loss(batch, fake)
        loss, logs = lazy.discriminator_loss(batch, fake)
        penalty = full_logs["train/ma_gp"]
        assert penalty > 0
        if call % 3 == 0:
            assert torch.allclose(logs["train/ma_gp"], 3 * penalty, rtol=1e-5)
            assert torch.allclose(loss, full + 2 * penalty, rtol=1e-5)
        else:
            assert logs["train/ma_gp"] == 0 and torch.allclose(loss, full - penalty, rtol=1e-5)
    with pytest.raises(ValueError, match="gp_every"):
        tiny_dfgan(gp_every=0)


def test_lazy_clock_counts_d_steps_and_survives_a_checkpoint():
    """One clock for every model's lazy penalty: the shared step advances it once per D
    step (d_steps=2: twice per iteration), and a checkpoint carries it (older DF-GAN
    checkpoints' df_gan_d_calls is read too)."""
    torch.manual_seed(0)
    model = tiny_dfgan(d_steps=2)
    trainer = pl.Trainer(max_steps=3, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False)
    batches = [caption_batch(size=32) for _ in range(3)]
    trainer.fit(model, train_dataloaders=torch.utils.data.DataLoader(batches, batch_size=None))
    assert model.d_calls == 6
    checkpoint: dict = {}
    model.on_save_checkpoint(checkpoint)
    fresh = tiny_dfgan()
    fresh.on_load_checkpoint(checkpoint)
    assert fresh.d_calls == 6
    fresh.on_load_checkpoint({"df_gan_d_calls": 4})
    assert fresh.d_calls == 4


def test_discriminator_learns_to_match_text():
    """Images are bright on the left or the right half; the caption says which. After a
    short D-only training, D scores (real, right text) above (real, wrong text)."""
    torch.manual_seed(0)
    model = tiny_dfgan(hard_negatives=True)
    opt = torch.optim.Adam(model.discriminator.parameters(), lr=2e-3, betas=(0.0, 0.9))
    words = torch.randn(2, D)

    def batch(n=32):
        side = torch.randint(0, 2, (n,))
        images = -torch.ones(n, 1, 32, 32)
        images[side == 0, :, :, :16] = 1
        images[side == 1, :, :, 16:] = 1
        return {"image": images, "word_vectors": words[side][:, None, :], "length": torch.ones(n, dtype=torch.long),
                "token_ids": side[:, None]}, side

    for _ in range(60):
        b, _ = batch()
        loss, _ = model.discriminator_loss(b, torch.rand(32, 1, 32, 32) * 2 - 1)
        opt.zero_grad()
        loss.backward()
        opt.step()
    b, side = batch(64)
    with torch.no_grad():
        right = model.discriminator(b["image"], b["word_vectors"], b["length"])
        wrong = model.discriminator(b["image"], words[1 - side][:, None, :], b["length"])
    assert (right > wrong).float().mean() > 0.9


def tiny_gan_cls() -> GANCLS:
    return GANCLS(1, 32, D, ngf=8, ndf=8, nz=10, ema_decay=0.5, optimizer_g=ADAM, optimizer_d=ADAM)


@pytest.mark.parametrize("make", [lambda: tiny_dfgan(ema_decay=0.5), tiny_gan_cls])
def test_generate_from_embedding_draws_what_generate_draws(make):
    """The hooks of the text-interpolation picture: embed_text then generate_from_embedding
    is generate, with the drawing (EMA, eval-mode) generator; a mixture of two captions'
    vectors gives another image."""
    torch.manual_seed(0)
    model = make()
    batch = caption_batch(size=32)
    model.train()
    model.generator(torch.randn(6, model.nz), batch["word_vectors"], batch["length"])  # batch-norm statistics
    with torch.no_grad():
        for p in model.generator.parameters():
            p.add_(0.05 * torch.randn_like(p))  # as if trained (DF-GAN starts deaf to the text: identity affines)
    model.on_train_batch_end(None, batch, 0)  # the average moves most of the way: live and average differ
    model.eval()
    z = torch.randn(6, model.nz)
    with torch.no_grad():
        sentence = model.embed_text(batch["word_vectors"], batch["length"])
        drawn = model.generate_from_embedding(z, sentence)
        assert torch.allclose(drawn, model.generate(batch, z), atol=1e-6)
        live = model.generator(z, batch["word_vectors"], batch["length"])
        assert not torch.allclose(drawn, live)  # the average draws in eval mode, not the live weights
        mixed = model.generate_from_embedding(z, 0.5 * sentence + 0.5 * sentence.roll(1, 0))
    assert sentence.shape[0] == 6 and not torch.allclose(mixed, drawn)


# ------------------------------------------------ training: precision, resume
def test_bf16_mixed_trains(make_cfg):
    metrics = train(make_cfg(TINY + ["trainer.max_steps=2", "trainer.precision=bf16-mixed"]))
    assert all(torch.isfinite(torch.tensor(metrics[k])) for k in ("train/d_loss", "train/g_loss", "train/ma_gp"))


def test_fp16_penalty_uses_the_runs_grad_scaler(make_cfg, monkeypatch):
    """16-mixed with a GradScaler (forced onto CPU; on a GPU trainer.precision=16-mixed does
    the same): the inner gradient of MA-GP is taken at the scaler's current scale."""

    scales = []
    real_penalty = df_gan.matching_aware_gradient_penalty

    def recording(*args, loss_scale=1.0, **kw):
        scales.append(loss_scale)
        return real_penalty(*args, loss_scale=loss_scale, **kw)

    monkeypatch.setattr(df_gan, "matching_aware_gradient_penalty", recording)
    datamodule, model = build(make_cfg(TINY))
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 8)
    trainer = pl.Trainer(accelerator="cpu", max_steps=2, logger=False, enable_progress_bar=False,
                         enable_checkpointing=False, limit_val_batches=0,
                         plugins=[MixedPrecision("16-mixed", "cpu", scaler)])
    trainer.fit(model, datamodule=datamodule)
    assert trainer.global_step == 2 and scales[0] == 2.0 ** 8 and all(s > 1 for s in scales)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def _state(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


def test_resume_matches_uninterrupted_run(make_cfg, tmp_path):
    # 256 train images / batch 64 = 4 steps per epoch: stop mid-epoch (6), resume to 8
    train(make_cfg(TINY + ["trainer.max_steps=8"], out=tmp_path / "full"))
    train(make_cfg(TINY + ["trainer.max_steps=6"], out=tmp_path / "split"))
    train(make_cfg(TINY + ["trainer.max_steps=8", "ckpt_path=last"], out=tmp_path / "split"))
    a, b = _state(tmp_path / "full/checkpoints/last.ckpt"), _state(tmp_path / "split/checkpoints/last.ckpt")
    assert a["global_step"] == b["global_step"] == 8
    assert any(k.startswith("generator_ema.") for k in a["state_dict"])  # the average is resumed too
    for k, v in a["state_dict"].items():
        assert torch.allclose(v.float(), b["state_dict"][k].float(), atol=1e-6), k
    for oa, ob in zip(a["optimizer_states"], b["optimizer_states"]):
        for pa, pb in zip(oa["state"].values(), ob["state"].values()):
            assert torch.allclose(pa["exp_avg"], pb["exp_avg"], atol=1e-6)
