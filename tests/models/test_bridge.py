"""LatentBridge: translation properties, every method, dtypes, ensembles and the saved artifact."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hf_latent_bridge import LatentBridge
from hf_latent_bridge.core.anchor_set import AnchorSet
from hf_latent_bridge.core.options import METHODS
from hf_latent_bridge.core.projection import DEFAULT_WHITENING

F64 = torch.float64
#: IRP as the paper defines it plus the package's whitening, for the properties of IRP itself.
IRP = {"method": "irp", "whitening": DEFAULT_WHITENING}


def orthogonal(d: int, g: torch.Generator) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(d, d, dtype=F64, generator=g))
    return q * torch.sign(torch.diagonal(r))


def unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True)


def isometric_pair(g: torch.Generator, k: int = 80, d_x: int = 12, d_y: int = 16, n: int = 10):
    """Anchors and held-out samples of X and Y = 2 X Q + t (X zero-padded to d_y)."""
    x = torch.randn(k + n, d_x, dtype=F64, generator=g)
    q, t = orthogonal(d_y, g), torch.randn(d_y, dtype=F64, generator=g)
    y = 2.0 * torch.nn.functional.pad(x, (0, d_y - d_x)) @ q + t
    return x[:k], y[:k], x[k:], y[k:]


@pytest.fixture
def pair(rng):
    return isometric_pair(rng)


def test_self_translation_returns_centred_normalised_vectors_at_anchor_scale(rng):
    a = torch.randn(60, 10, dtype=F64, generator=rng)
    x = torch.randn(7, 10, dtype=F64, generator=rng)
    bridge = LatentBridge.fit(a, a, **IRP)
    mu = a.mean(0)
    expected = unit(x - mu) * (a - mu).norm(dim=1).mean() + mu
    torch.testing.assert_close(bridge.translate(x), expected, rtol=0, atol=1e-9)


def test_isometry_recovered_by_irp(pair):
    xa, ya, x, y = pair
    bridge = LatentBridge.fit(xa, ya, **IRP)
    assert bridge.config.ridge_selected == 0.0
    mu = ya.mean(0)
    torch.testing.assert_close(unit(bridge.translate(x) - mu), unit(y - mu), rtol=0, atol=1e-6)
    # The default output norm restores the target anchors' mean norm; here the map is exact, so points land.
    torch.testing.assert_close(
        (bridge.translate(x) - mu).norm(dim=1),
        torch.full((x.shape[0],), float((ya - mu).norm(dim=1).mean()), dtype=F64),
    )


def test_output_ignores_rotation_scale_and_shift_of_the_source(pair, rng):
    xa, ya, x, _ = pair
    q, t = orthogonal(xa.shape[1], rng), torch.randn(xa.shape[1], dtype=F64, generator=rng)
    moved = LatentBridge.fit(0.3 * xa @ q + t, ya).translate(0.3 * x @ q + t)
    torch.testing.assert_close(moved, LatentBridge.fit(xa, ya).translate(x), rtol=0, atol=1e-9)


def test_anchor_permutation_changes_nothing(pair, rng):
    xa, ya, x, _ = pair
    perm = torch.randperm(xa.shape[0], generator=rng)
    for method in ("irp", "procrustes", "linear"):
        a = LatentBridge.fit(xa, ya, method=method).translate(x)
        b = LatentBridge.fit(xa[perm], ya[perm], method=method).translate(x)
        torch.testing.assert_close(a, b, rtol=0, atol=1e-9)


def test_rows_translate_independently_of_the_batch(pair):
    xa, ya, x, _ = pair
    bridge = LatentBridge.fit(xa, ya)
    rows = torch.stack([bridge.translate(row) for row in x])
    torch.testing.assert_close(rows, bridge.translate(x), rtol=0, atol=1e-12)


def test_gradients_flow_through_the_translation(pair):
    """Translation is differentiable (e.g. to tune a source encoder through a frozen bridge)."""
    xa, ya, x, _ = pair
    bridge = LatentBridge.fit(xa, ya)
    sample = x[:3].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(bridge, (sample,))
    tracked = bridge(sample)
    assert tracked.requires_grad
    # without autograd the output is written in place: the same values, bit for bit
    torch.testing.assert_close(bridge(x[:3]), tracked.detach(), rtol=0, atol=0)


def test_round_trip_x_to_y_to_x_recovers_directions(pair):
    xa, ya, x, _ = pair
    there = LatentBridge.fit(xa, ya).translate(x)
    back = LatentBridge.fit(ya, xa).translate(there)
    mu = xa.mean(0)
    torch.testing.assert_close(unit(back - mu), unit(x - mu), rtol=0, atol=1e-6)


def test_anchors_land_on_target_anchors_in_the_isometric_case(pair):
    xa, ya, _, _ = pair
    out = LatentBridge.fit(xa, ya, output_norm="none", **IRP).translate(xa)
    mu = ya.mean(0)
    torch.testing.assert_close(out - mu, unit(ya - mu), rtol=0, atol=1e-6)


def test_a_generic_linear_map_is_not_recovered(rng):
    """IRP is exact only for angle-preserving relations (method notes, property 8)."""
    x = torch.randn(200, 16, dtype=F64, generator=rng)
    skew = torch.randn(16, 16, dtype=F64, generator=rng) ** 3
    y = x @ skew
    xa, ya, xt, yt = x[:150], y[:150], x[150:], y[150:]
    out = LatentBridge.fit(xa, ya, ridge=0.0, **IRP).translate(xt)
    cos = torch.nn.functional.cosine_similarity(out - ya.mean(0), yt - ya.mean(0)).mean()
    assert cos < 0.9  # whereas the isometric case gives 1 to 1e-6


def test_linear_recovers_an_affine_map(rng):
    x = torch.randn(120, 10, dtype=F64, generator=rng)
    a, b = torch.randn(10, 14, dtype=F64, generator=rng), torch.randn(14, dtype=F64, generator=rng)
    y = x @ a + b
    bridge = LatentBridge.fit(x[:100], y[:100], method="linear")
    torch.testing.assert_close(bridge.translate(x[100:]), y[100:], rtol=0, atol=1e-8)


@pytest.mark.parametrize("method", [m for m in METHODS if m != "identity"])
def test_a_target_feature_constant_on_the_anchors_is_reproduced_exactly(method, rng):
    """The issue-12 case: y = [x[:, :7], 0]; every method must write 0 (not ~3) into feature 7."""
    x = torch.randn(500, 8, dtype=F64, generator=rng)
    y = torch.cat([x[:, :7], torch.zeros(500, 1, dtype=F64)], 1)
    out = LatentBridge.fit(x, y, method=method).translate(torch.randn(50, 8, dtype=F64, generator=rng) * 3)
    assert out[:, 7].abs().max() < 1e-12


def test_show_progress_draws_a_bar_only_when_asked(pair, capsys):
    xa, ya, _, _ = pair
    LatentBridge.fit(xa, ya)
    assert "fitting" not in capsys.readouterr().err
    LatentBridge.fit(xa, ya, show_progress=True)
    assert "fitting auto" in capsys.readouterr().err


def test_orthogonal_baselines_recover_a_permutation_with_sign_flips(rng):
    # Per-feature standard scaling commutes with signed permutations, so Procrustes is exact here.
    x = torch.randn(150, 9, dtype=F64, generator=rng) * torch.linspace(0.5, 2.0, 9, dtype=F64)
    perm = torch.randperm(9, generator=rng)
    signs = torch.where(torch.rand(9, generator=rng) > 0.5, 1.0, -1.0).to(F64)
    y = x[:, perm] * signs + 1.5
    for method in ("procrustes", "l-ortho"):
        bridge = LatentBridge.fit(x[:120], y[:120], method=method)
        torch.testing.assert_close(bridge.translate(x[120:]), y[120:], rtol=0, atol=1e-8)


def test_identity_is_the_identity_and_needs_equal_dimensions(rng):
    x = torch.randn(30, 5, dtype=F64, generator=rng)
    bridge = LatentBridge.fit(x, x + 1, method="identity")
    torch.testing.assert_close(bridge.translate(x), x, rtol=0, atol=0)
    with pytest.raises(ValueError, match="equal dimensions"):
        LatentBridge.fit(x, torch.randn(30, 6, dtype=F64), method="identity")


def test_config_records_method_encoders_and_anchor_fingerprint(tmp_path, rng):
    x, y = torch.randn(40, 6, generator=rng), torch.randn(40, 9, generator=rng)
    anchors = AnchorSet(dataset="user/data", revision="abc", split="train", indices=tuple(range(40)))
    bridge = LatentBridge.fit(
        x,
        y,
        source_encoder={"name_or_path": "org/src", "revision": "v1", "pooling": "mean"},
        target_encoder="org/tgt",
        anchor_set=anchors,
        **IRP,
    )
    bridge.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "latent_bridge"
    assert (saved["source_dim"], saved["target_dim"], saved["num_anchors"]) == (6, 9, 40)
    assert saved["source_encoder"] == {"name_or_path": "org/src", "revision": "v1", "pooling": "mean"}
    assert saved["target_encoder"] == {"name_or_path": "org/tgt"}
    assert saved["anchor_fingerprint"] == anchors.fingerprint
    assert saved["anchor_set"]["indices"] == list(range(40))
    assert saved["ridge"] == "auto" and isinstance(saved["ridge_selected"], float)
    assert saved["whitening"] == DEFAULT_WHITENING  # None would be the paper's plain IRP
    assert "ridge_cv_cosine" in saved["fit_report"]


def test_anchor_fingerprint_depends_on_the_anchors(rng):
    x, y = torch.randn(20, 3, generator=rng), torch.randn(20, 3, generator=rng)
    a = LatentBridge.fit(x, y).config.anchor_fingerprint
    assert a == LatentBridge.fit(x.clone(), y.clone()).config.anchor_fingerprint
    assert a != LatentBridge.fit(x[torch.arange(19, -1, -1)], y).config.anchor_fingerprint


def test_ensemble_averages_member_translations(pair):
    xa, ya, x, _ = pair
    bridge = LatentBridge.fit(xa, ya, ensemble=3, ensemble_fraction=0.7, ridge=0.05)
    members = [
        LatentBridge.fit(xa[rows], ya[rows], ridge=0.05).translate(x) for rows in bridge.member_indices
    ]
    # Members use their own subset's statistics; the ensemble is their mean.
    torch.testing.assert_close(bridge.translate(x), torch.stack(members).mean(0), rtol=0, atol=1e-9)


def test_numpy_in_numpy_out_and_storage_dtype_follows_anchors(rng):
    x = np.random.default_rng(0).normal(size=(50, 6)).astype(np.float32)
    bridge = LatentBridge.fit(x, x[:, ::-1].copy())
    assert bridge.dtype == torch.float32
    out = bridge.translate(x[:3])
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == (3, 6)
    assert bridge.translate(x[0]).shape == (6,)
    assert LatentBridge.fit(x.astype(np.float64), x).dtype == torch.float64


@settings(max_examples=25, deadline=None)
@given(
    d_x=st.integers(2, 12),
    d_y=st.integers(2, 12),
    extra=st.integers(1, 20),
    n=st.integers(1, 6),
    dtype=st.sampled_from([torch.float16, torch.bfloat16, torch.float32, torch.float64]),
    method=st.sampled_from([m for m in METHODS if m != "identity"]),
    seed=st.integers(0, 2**16),
)
def test_shapes_and_dtypes_are_preserved(d_x, d_y, extra, n, dtype, method, seed):
    g = torch.Generator().manual_seed(seed)
    k = d_y + extra
    xa, ya = torch.randn(k, d_x, generator=g), torch.randn(k, d_y, generator=g)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bridge = LatentBridge.fit(xa, ya, method=method)
    x = torch.randn(n, d_x, generator=g).to(dtype)
    out = bridge.translate(x)
    assert out.shape == (n, d_y) and out.dtype == dtype
    assert torch.isfinite(out.float()).all()
    single = bridge.translate(x[0])
    assert single.shape == (d_y,) and single.dtype == dtype
    # The bridge computes in float32 here: batch and row may differ by float32 round-off.
    tolerance = {} if dtype in (torch.float16, torch.bfloat16) else {"rtol": 1e-5, "atol": 1e-5}
    torch.testing.assert_close(single, out[0], **tolerance)


@settings(max_examples=15, deadline=None)
@given(d=st.integers(2, 10), k_extra=st.integers(2, 30), seed=st.integers(0, 2**16))
def test_isometries_are_recovered_for_random_shapes(d, k_extra, seed):
    g = torch.Generator().manual_seed(seed)
    xa, ya, x, y = isometric_pair(g, k=d + k_extra + 1, d_x=d, d_y=d + (seed % 3), n=4)
    bridge = LatentBridge.fit(xa, ya, ridge=0.0, **IRP)
    mu = ya.mean(0)
    torch.testing.assert_close(unit(bridge.translate(x) - mu), unit(y - mu), rtol=0, atol=1e-6)


def test_module_to_moves_and_casts_the_buffers(pair):
    xa, ya, x, _ = pair
    bridge = LatentBridge.fit(xa.float(), ya.float())
    moved = bridge.to(torch.float64)
    assert moved.dtype == torch.float64 and moved.device.type == "cpu"
    torch.testing.assert_close(moved.translate(x), bridge.translate(x), rtol=1e-5, atol=1e-5)


def test_translate_drops_into_datasets_map(pair):
    import datasets

    xa, ya, x, _ = pair
    bridge = LatentBridge.fit(xa, ya)
    table = datasets.Dataset.from_dict({"embedding": x.tolist(), "id": list(range(len(x)))})
    mapped = table.map(lambda batch: {"translated": bridge.translate(batch["embedding"])}, batched=True)
    expected = bridge.translate(torch.as_tensor(x.tolist(), dtype=x.dtype))
    torch.testing.assert_close(torch.tensor(mapped["translated"], dtype=expected.dtype), expected)
    as_numpy = table.with_format("numpy").map(
        lambda batch: {"translated": bridge.translate(batch["embedding"])}, batched=True, batch_size=7
    )
    assert np.allclose(np.asarray(as_numpy["translated"]), expected.numpy())
