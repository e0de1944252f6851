"""Hypothesis strategies shared by all test modules.

Well-formed inputs (finite float matrices of moderate scale, binary
treatments with both groups present, positive sample weights) and
adversarial ones (NaN, infinity, huge and tiny magnitudes, duplicated rows,
constant columns) so that every family tests its invariances and its error
handling on the same footing.
"""

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

__all__ = [
    "adversarial_matrices",
    "binary_treatments",
    "comonotone_scores",
    "earlier_head_pairs",
    "finite_floats",
    "finite_matrices",
    "label_problems",
    "ordinal_data",
    "permutations",
    "positive_weights",
    "well_conditioned_matrices",
]


def finite_floats(min_value=-1e3, max_value=1e3):
    """Finite floats in a range where sums of squares cannot overflow."""
    return st.floats(min_value, max_value, allow_nan=False, allow_infinity=False, width=64)


@st.composite
def finite_matrices(draw, min_rows=2, max_rows=30, min_cols=1, max_cols=5, elements=None):
    """Finite float64 matrices of shape (rows, cols)."""
    rows = draw(st.integers(min_rows, max_rows))
    cols = draw(st.integers(min_cols, max_cols))
    return draw(
        hnp.arrays(np.float64, (rows, cols), elements=elements or finite_floats())
    )


@st.composite
def well_conditioned_matrices(draw, min_rows=4, max_rows=30, min_cols=1, max_cols=5):
    """Gaussian-like matrices from a drawn seed: no duplicate rows or constant
    columns, so estimators that need distinct points or variance are defined."""
    rows = draw(st.integers(min_rows, max_rows))
    cols = draw(st.integers(min_cols, max_cols))
    seed = draw(st.integers(0, 2**32 - 1))
    scale = draw(st.sampled_from([1e-2, 1.0, 1e2]))
    return np.random.default_rng(seed).standard_normal((rows, cols)) * scale


@st.composite
def adversarial_matrices(draw, min_rows=2, max_rows=20, min_cols=1, max_cols=4):
    """Matrices that should be rejected or handled with care.

    Returns ``(X, kind)`` where ``kind`` names the defect: ``"nan"``,
    ``"inf"`` (both must be rejected), ``"huge"``, ``"tiny"``,
    ``"duplicates"`` or ``"constant_column"`` (must not produce NaN).
    """
    kind = draw(st.sampled_from(["nan", "inf", "huge", "tiny", "duplicates", "constant_column"]))
    X = draw(well_conditioned_matrices(max(min_rows, 2), max_rows, min_cols, max_cols))
    i = draw(st.integers(0, X.shape[0] - 1))
    j = draw(st.integers(0, X.shape[1] - 1))
    if kind == "nan":
        X[i, j] = np.nan
    elif kind == "inf":
        X[i, j] = draw(st.sampled_from([np.inf, -np.inf]))
    elif kind == "huge":
        X = X * 1e150
    elif kind == "tiny":
        X = X * 1e-150
    elif kind == "duplicates":
        X[-1] = X[0]
    else:
        X[:, j] = 3.0
    return X, kind


@st.composite
def binary_treatments(draw, n, min_per_group=2):
    """0/1 treatment vectors of length n with at least ``min_per_group`` in each group."""
    assume(n >= 2 * min_per_group)
    n_treated = draw(st.integers(min_per_group, n - min_per_group))
    seed = draw(st.integers(0, 2**32 - 1))
    t = np.zeros(n, dtype=np.int64)
    t[np.random.default_rng(seed).choice(n, n_treated, replace=False)] = 1
    return t


def positive_weights(n, min_value=0.1, max_value=10.0):
    """Strictly positive sample weights of length n."""
    return hnp.arrays(np.float64, n, elements=st.floats(min_value, max_value))


@st.composite
def permutations(draw, n):
    """A permutation of range(n)."""
    seed = draw(st.integers(0, 2**32 - 1))
    return np.random.default_rng(seed).permutation(n)


@st.composite
def ordinal_data(draw, min_rows=40, max_rows=120, max_cols=4, n_classes=(3, 4)):
    """``(X, y)`` from a latent logistic model with every class present.

    ``X`` has shifted and scaled columns (so un-standardisation is exercised);
    ``y`` takes the values ``0..K-1`` with ``K`` drawn from ``n_classes``.
    """
    rows = draw(st.integers(min_rows, max_rows))
    cols = draw(st.integers(1, max_cols))
    K = draw(st.sampled_from(list(n_classes)))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, cols)) * rng.uniform(0.1, 10, cols) + rng.uniform(-5, 5, cols)
    Z = (X - X.mean(0)) / X.std(0)
    latent = Z @ rng.uniform(-1, 1, cols) + rng.logistic(size=rows)
    y = np.searchsorted(np.quantile(latent, np.linspace(0, 1, K + 1)[1:-1]), latent)
    return X, y


# Classification labels and per-class scores (class-weighted metrics).


@st.composite
def label_problems(draw):
    """Random multiclass or multilabel ``(y_true, y_pred, labels, sample_weight)``.

    Multiclass supports are skewed; ``labels`` (or None) may include a label
    that never occurs; ``sample_weight`` (or None) may contain zeros.
    """
    n = draw(st.integers(1, 30))
    n_classes = draw(st.integers(2, 5))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    multilabel = draw(st.booleans())
    if multilabel:
        y_true = rng.integers(0, 2, (n, n_classes))
        y_pred = rng.integers(0, 2, (n, n_classes))
        all_labels = np.arange(n_classes)
    else:
        # Skewed class frequencies so supports differ.
        p = rng.dirichlet(np.full(n_classes, 0.7))
        y_true = rng.choice(n_classes, n, p=p)
        y_pred = np.where(rng.random(n) < 0.6, y_true, rng.choice(n_classes, n))
        all_labels = np.arange(n_classes + 1)  # the extra label never occurs
    labels = None
    if draw(st.booleans()):
        size = draw(st.integers(1, len(all_labels)))
        labels = rng.permutation(all_labels)[:size]
    sample_weight = None
    if draw(st.booleans()):
        sample_weight = rng.choice([0.0, 0.5, 1.0, 2.0, 3.0], n)
    return y_true, y_pred, labels, sample_weight


@st.composite
def comonotone_scores(draw):
    """``(supports, scores)``: class supports in increasing order and per-class
    scores that increase or decrease with them."""
    n_classes = draw(st.integers(3, 6))
    supports = np.sort(draw(st.lists(st.integers(1, 40), min_size=n_classes,
                                     max_size=n_classes)))
    scores = np.sort(draw(st.lists(st.floats(0, 1), min_size=n_classes, max_size=n_classes)))
    increasing = draw(st.booleans())
    return supports, scores if increasing else scores[::-1]


@st.composite
def earlier_head_pairs(draw, n_layers, n_heads, max_pairs=6):
    """Distinct heads of layers 1.. each paired with a head of an earlier layer."""
    heads = [(layer, head) for layer in range(1, n_layers) for head in range(n_heads)]
    chosen = draw(st.lists(st.sampled_from(heads), min_size=0, max_size=max_pairs, unique=True))
    return [
        (head, (draw(st.integers(0, head[0] - 1)), draw(st.integers(0, n_heads - 1))))
        for head in chosen
    ]
