"""weightstats.nn.peft: cost of adapters and of the weight compander.

* merged adapters at inference against the plain ``nn.Linear`` they wrap
  (``overhead`` = ours / base; the goal is <= 1.02);
* unmerged Bone, Bat, LoRA and a PHM layer, forward + backward at
  d = 1024 against the base layer trained in full;
* Bone / Bat against peft's MiSS layer (same rule) when peft is installed;
* one training step of an MLP with and without the weight compander.

Inputs require gradients in the forward + backward rows, as they do inside
a network. Calls are timed alternately with their peer; ``overhead`` is the
median ratio ours / peer over neighbouring calls (``ratio`` its inverse,
above 1 when ours is faster), the times are the best of each.
"""

import copy

from ._timing import overhead_row, paired_best

WIDTH = 1024






def _layers(quick):
    import torch
    from torch import nn

    from weightstats.nn import BoneLinear, LoRALinear

    width = 256 if quick else WIDTH
    torch.manual_seed(0)
    base = nn.Linear(width, width)
    adapters = {
        "Bone r=64": BoneLinear(copy.deepcopy(base), r=64),
        "Bat r=64": BoneLinear(copy.deepcopy(base), r=64, variant="bat"),
        "LoRA r=8": LoRALinear(copy.deepcopy(base), r=8),
    }
    with torch.no_grad():
        for layer in adapters.values():
            for param in layer.parameters():
                if param.requires_grad:
                    param.normal_(std=0.01)
    return width, base, adapters


def merged_inference(quick):
    import torch

    width, _, adapters = _layers(quick)
    x = torch.randn(256, width)

    def forward(layer):
        with torch.no_grad():
            layer(x)

    rows = []
    for name, layer in adapters.items():
        layer.merge()
        # against the very layer it wraps (same weight tensor)
        timing = paired_best(lambda layer=layer: forward(layer),
                              lambda layer=layer: forward(layer.base), repeat=150)
        rows.append(overhead_row(f"{name} merged, forward, batch 256, d={width}", timing[0],
                         "nn.Linear (the base layer)", *timing[1:]))
    return rows


def _forward_backward(layer, x):
    out = layer(x)
    out.sum().backward()


def unmerged_training(quick):
    import torch

    from weightstats.nn import PHMLinear

    width, base, adapters = _layers(quick)
    x = torch.randn(256, width, requires_grad=True)
    full = copy.deepcopy(base)  # the base layer trained in full
    torch.manual_seed(0)
    layers = {**adapters, "PHMLinear n=4 rank=1 (replaces the layer)": PHMLinear(width, width)}
    rows = []
    for name, layer in layers.items():
        timing = paired_best(lambda layer=layer: _forward_backward(layer, x),
                              lambda: _forward_backward(full, x))
        trainable = sum(p.numel() for p in layer.parameters() if p.requires_grad)
        rows.append(overhead_row(f"{name}, forward + backward, batch 256, d={width} "
                         f"({trainable:,} trainable)", timing[0], "nn.Linear trained in full",
                         *timing[1:]))
    return rows


def against_peft(quick):
    import importlib.util

    if importlib.util.find_spec("peft") is None:
        return [{"case": "peft not installed: skipped"}]
    import torch
    from peft import MissConfig, inject_adapter_in_model
    from torch import nn

    width, base, adapters = _layers(quick)
    x = torch.randn(256, width, requires_grad=True)
    rows = []
    for name, init in [("Bone r=64", True), ("Bat r=64", "bat")]:
        ours = adapters[name]
        theirs = inject_adapter_in_model(
            MissConfig(r=64, init_weights=init, target_modules=["0"]),
            nn.Sequential(copy.deepcopy(base)),
        )
        with torch.no_grad():
            theirs[0].miss_block["default"].copy_(ours.block)
        timing = paired_best(lambda ours=ours: _forward_backward(ours, x),
                              lambda theirs=theirs: _forward_backward(theirs, x))
        rows.append(overhead_row(f"{name}, forward + backward, batch 256, d={width}", timing[0],
                         "peft MissLinear", *timing[1:]))
    return rows


def compander_step(quick):
    import torch

    from weightstats.nn import MLP, weight_compander

    width = 256 if quick else WIDTH
    X = torch.randn(256, 64)
    y = torch.randint(0, 10, (256,))

    def model(companded):
        torch.manual_seed(0)
        module = MLP(64, 10, hidden_units=(width, width))
        if companded:
            weight_compander(module)
        return module, torch.optim.SGD(module.parameters(), lr=0.01, momentum=0.9)

    def step(module, optimizer):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(module(X), y).backward()
        optimizer.step()

    plain, companded = model(False), model(True)
    timing = paired_best(lambda: step(*companded), lambda: step(*plain))
    return [overhead_row(f"SGD step, MLP 64-{width}-{width}-10, batch 256, compander on every layer",
                 timing[0], "the same step without compander", *timing[1:])]


BENCHMARKS = {
    "peft_merged_inference": merged_inference,
    "peft_unmerged_training": unmerged_training,
    "peft_against_peft": against_peft,
    "peft_compander_step": compander_step,
}
