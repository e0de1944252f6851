"""weightstats.nn.quantization: SignRound calibration time, QuantLinear inference, QAT overhead.

Peers:

* round-to-nearest (:func:`rtn_quantize`) on the same layer: the cost of
  calibration;
* intel/auto-round (where ``auto_round`` is installed, as with the
  ``test`` extra): its ``WrapperLinear`` with its ``SignSGD`` optimiser and the same
  ``LinearLR`` schedule, best-loss bookkeeping and full-batch MSE on the same
  layer and calibration rows (:func:`auto_round_layer`); the row also says
  whether the learned rounding is identical to ours, and how far its
  ``quant_tensor_asym`` is from :func:`signround_fake_quantize` with V = 0;
* ``nn.Linear`` for the forward pass of :class:`QuantLinear` (which unpacks
  and dequantises the weight on every call) and for one QAT training step
  with a StatsQ / LSQ parametrisation and the oscillation tracker.
"""

import copy
import importlib.util
import time

from ._timing import best_time


def auto_round_layer(layer, X, *, bits=4, group_size=128, sym=False, iters=200):
    """Calibrate one ``nn.Linear`` with auto-round's own wrapper and optimiser.

    auto-round's ``quantize_layer_outside_block`` loop, driven here with a
    full batch: ``WrapperLinear`` (its quantiser, min/max clamping),
    ``SignSGD`` with ``lr = minmax_lr = 1 / iters`` and ``LinearLR`` to 0,
    keeping the parameters of the lowest loss.

    Returns
    -------
    best : dict of str to torch.Tensor
        auto-round's best ``value`` (V), ``min_scale`` and ``max_scale``.
    best_loss : float
        The best mean squared error.
    seconds : float
        Wall time of the calibration.
    """
    import torch
    from auto_round.algorithms.quantization.sign_round.sign_sgd import SignSGD
    from auto_round.wrapper import WrapperLinear

    layer = copy.deepcopy(layer)
    settings = dict(
        bits=bits, group_size=group_size, sym=sym, data_type="int", act_bits=16,
        act_data_type="float", act_sym=True, act_group_size=-1, act_dynamic=True,
        scale_dtype=torch.float32,
    )
    for key, value in settings.items():
        setattr(layer, key, value)
    with torch.no_grad():
        reference = layer(X)
    start = time.perf_counter()
    wrapper = WrapperLinear(
        layer, enable_minmax_tuning=True, enable_torch_compile=False, device=str(X.device),
        iters=iters,
    )
    lr = 1.0 / iters
    optimizer = SignSGD(
        [{"params": [wrapper.value]}, {"params": [wrapper.min_scale, wrapper.max_scale], "lr": lr}],
        lr=lr, weight_decay=0,
    )
    schedule = torch.optim.lr_scheduler.LinearLR(
        optimizer, start_factor=1.0, end_factor=0.0, total_iters=iters
    )
    best, best_loss = None, float("inf")
    for _ in range(iters):
        loss = torch.nn.functional.mse_loss(wrapper(X).float(), reference.float())
        loss.backward()
        if loss.item() < best_loss:
            best_loss = loss.item()
            best = {key: param.detach().clone() for key, param in wrapper.params.items()}
        optimizer.step()
        optimizer.zero_grad()
        schedule.step()
    return best, best_loss, time.perf_counter() - start


def _has_auto_round():
    return importlib.util.find_spec("auto_round") is not None


def signround_calibration(quick):
    import torch

    from weightstats.nn import SignRound, rtn_quantize, signround_fake_quantize

    torch.manual_seed(0)
    sizes = [(256, 256)] if quick else [(256, 256), (1024, 1024)]
    rows = []
    for in_features, out_features in sizes:
        layer = torch.nn.Linear(in_features, out_features)
        X = torch.randn(128, in_features, generator=torch.Generator().manual_seed(1))
        case = f"Linear {in_features}x{out_features}, 4 bits, group 128, 128 rows, 200 steps"

        def signround(layer, X):
            return SignRound(bits=4, group_size=128, random_state=0).fit(layer, X).quantize(layer)

        ours_s = best_time(signround, layer, X, repeat=2)
        rtn_s = best_time(rtn_quantize, layer, bits=4, group_size=128)
        rows.append({"case": case, "ours_s": round(ours_s, 3), "peer": "rtn_quantize",
                     "peer_s": round(rtn_s, 4), "ratio": round(rtn_s / ours_s, 4)})
        if _has_auto_round():
            from auto_round.data_type.int import quant_tensor_asym

            theirs, their_loss, peer_s = auto_round_layer(layer, X, bits=4, group_size=128)
            fitted = SignRound(bits=4, group_size=128, random_state=0).fit(layer, X)
            W = layer.weight.detach()
            rtn_theirs = quant_tensor_asym(W, bits=4, group_size=128, v=0, min_scale=1.0,
                                           max_scale=1.0, scale_dtype=torch.float32,
                                           q_scale_thresh=1e-8)[0]
            rows.append({
                "case": case, "ours_s": round(fitted.fit_time_, 3),
                "peer": "auto-round WrapperLinear + SignSGD", "peer_s": round(peer_s, 3),
                "ratio": round(peer_s / fitted.fit_time_, 2),
                "same_rounding": bool(torch.equal(fitted.params_[""]["v"], theirs["value"])),
                "loss_ours": fitted.losses_[""]["signround"], "loss_peer": their_loss,
                "max_abs_diff_rtn": float((signround_fake_quantize(W, 4, 128) - rtn_theirs)
                                          .abs().max()),
            })
    return rows


def quant_linear_inference(quick):
    import torch

    from weightstats.nn import QuantLinear

    torch.manual_seed(0)
    cases = [(256, 64, 4)] if quick else [(256, 64, 4), (1024, 64, 4), (1024, 64, 3),
                                          (1024, 1, 4), (4096, 8, 4)]
    rows = []
    for width, batch, bits in cases:
        linear = torch.nn.Linear(width, width)
        qlinear = QuantLinear.from_linear(linear, bits=bits, group_size=128)
        dense = qlinear.dequantize()
        x = torch.randn(batch, width)

        def forward(module, x):
            with torch.no_grad():
                return module(x)

        ours_s = best_time(forward, qlinear, x, repeat=20)
        peer_s = best_time(forward, dense, x, repeat=20)
        rows.append({
            "case": f"{width}x{width}, batch {batch}, {bits} bits, group 128",
            "ours_s": round(ours_s, 6), "peer": "nn.Linear (dequantised)",
            "peer_s": round(peer_s, 6), "ratio": round(peer_s / ours_s, 3),
            "weight_bytes_ratio": round(
                (qlinear.qweight.numel() + qlinear.scales.numel() * 4 + qlinear.qzeros.numel())
                / (4 * linear.weight.numel()), 3
            ),
        })
    return rows


def qat_step_overhead(quick):
    import torch

    from weightstats.nn import MLP, TrackOscillation, prepare_qat

    torch.manual_seed(0)
    X, y = torch.randn(64, 64), torch.randint(0, 10, (64,))
    steps = 20 if quick else 100
    base = MLP(64, 10, hidden_units=(256, 256, 256))

    def run(model, tracker=None):
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        for _ in range(steps):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(X), y).backward()
            optimizer.step()
            if tracker is not None:
                tracker.update()

    peer_s = best_time(run, copy.deepcopy(base), repeat=3)
    rows = []
    for method, track in (("statsq", False), ("statsq", True), ("lsq", False)):
        model = prepare_qat(copy.deepcopy(base), bits=2, method=method)
        tracker = TrackOscillation().start(model) if track else None
        ours_s = best_time(run, model, tracker, repeat=3)
        rows.append({
            "case": f"{steps} Adam steps, MLP 64-256-256-256-10, 2-bit {method}"
                    + (" + TrackOscillation" if track else ""),
            "ours_s": round(ours_s, 3), "peer": "same MLP, full precision",
            "peer_s": round(peer_s, 3), "ratio": round(peer_s / ours_s, 3),
        })
    return rows


BENCHMARKS = {
    "signround_calibration": signround_calibration,
    "quant_linear_inference": quant_linear_inference,
    "qat_step_overhead": qat_step_overhead,
}
