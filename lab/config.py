"""Every knob of the lab, as dataclasses. Named presets live next to their fields.

`DetectorConfig.full()` is the configuration behind the shipped weights;
`DetectorConfig.small()` trains in minutes on two CPU cores (the browser's
Retrain page).
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from lab.data.codec import CROP_SIZE, SIGMA, STRIDE, HeatmapCodec

DEFAULT_DATA_ROOT = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets"
ENV_DATA_ROOT = "POSE_LAB_DATA"


def data_root(flag: str | os.PathLike | None = None) -> Path:
    """Dataset root: the --data flag, else $POSE_LAB_DATA, else ../shared/datasets."""
    if flag:
        return Path(flag)
    if os.environ.get(ENV_DATA_ROOT):
        return Path(os.environ[ENV_DATA_ROOT])
    return DEFAULT_DATA_ROOT


@dataclass
class DataConfig:
    """The crops and their targets. Crop size, stride and sigma are the heatmap geometry:
    their defaults are lab.data.codec's, and `codec` is the geometry these crops use."""
    crop_size: int = CROP_SIZE  # input side in pixels (square)
    margin: float = 0.3         # box side = (1 + margin) * max extent of labelled joints
    stride: int = STRIDE        # heatmap stride
    sigma: float = SIGMA        # Gaussian target sigma, in heatmap pixels
    val_fraction: float = 0.05  # carved from the training split only
    seed: int = 0
    context: float = 1.0        # the cache keeps this many crop sides of the photo around the
                                # person (1.5: a 288-px image whose centre 192 px is the crop), so
                                # rotation, zoom-out and shifts show real surroundings, not zeros

    @property
    def codec(self) -> HeatmapCodec:
        """The heatmap geometry of these crops (`lab.data.codec`)."""
        return HeatmapCodec.from_config(self)

    @property
    def heatmap_size(self) -> int:
        return self.codec.heatmap_size

    @property
    def context_pad(self) -> int:
        """Pixels the stored image extends beyond the crop on each side."""
        return int(round(self.crop_size * (self.context - 1) / 2))

    @property
    def stored_size(self) -> int:
        """Side of the image the cache stores: the crop plus `context_pad` on each side."""
        return self.crop_size + 2 * self.context_pad

    @classmethod
    def everyday(cls) -> "DataConfig":
        """The detector for everyday photos: 192-px crops (48x48 heatmaps), sigma scaled with
        the crop (1.0 at 128 px -> 1.5), half a crop of surroundings kept on every side."""
        return cls(crop_size=192, sigma=1.5, context=1.5)

    @classmethod
    def preset(cls, detector: str) -> "DataConfig":
        """The crops a detector preset (`DetectorConfig.preset`) is trained and run on."""
        return cls.everyday() if detector.startswith("everyday") else cls()


@dataclass
class AugmentConfig:
    scale: float = 0.25         # zoom factor drawn from [1 - s, 1 + s]
    rotation: float = 30.0      # degrees, uniform in [-r, r]
    translate: float = 0.08     # fraction of the crop side
    flip: float = 0.5           # probability of a horizontal flip (with L/R swap)
    color: float = 0.2          # brightness / contrast / saturation jitter
    # What everyday photos add (probabilities per image; 0 = off, as the shipped models trained):
    light: float = 0.0          # gamma in [1/(1+l), 1+l] and a colour cast of +-l/4 per channel
    blur: float = 0.0           # Gaussian blur, sigma 0.5-2 crop px (camera shake, focus)
    downscale: float = 0.0      # shrink 2-4x and back (a small person in a large photo)
    jpeg: float = 0.0           # JPEG at quality 15-60 (messaging apps, screenshots)
    occlude: float = 0.0        # 1-2 rectangles of another photo's pixels over the crop
    cut: float = 0.0            # shift up to a third of the crop, so the person is cut by its edge

    @classmethod
    def everyday(cls) -> "AugmentConfig":
        """CPM's geometric strength on LSP (rotation +-40 deg, scale 0.7-1.3, flip), plus the
        light, blur, small size, compression, occluders and cut-off people of everyday photos."""
        return cls(scale=0.3, rotation=40.0, translate=0.08, flip=0.5, color=0.3, light=0.4,
                   blur=0.15, downscale=0.2, jpeg=0.25, occlude=0.3, cut=0.15)

    @classmethod
    def preset(cls, name: str) -> "AugmentConfig":
        return {"standard": cls, "everyday": cls.everyday}[name]()


@dataclass
class DetectorConfig:
    """Multi-resolution part detector (paper section 3.1)."""
    trunk: str = "scratch"      # "scratch" (the paper: banks from random weights), "lite0" or
                                # "lite1" (EfficientNet-Lite trunks, `lab.models.trunk`)
    banks: int = 2              # 2: full + half resolution; 3 adds a quarter bank
    width: int = 64             # channels at the end of each bank
    bank_depth: int = 4         # conv layers per bank (scratch banks only)
    head_width: int = 128       # channels of the layers after the banks combine
    head_depth: int = 3         # conv layers after combining (dilated 3x3)
    combine: str = "concat"     # "concat" or "sum" of the upsampled bank features
    norm: bool = True           # BatchNorm after each conv
    freeze_blocks: int = 3      # lite0: trunk stem + first blocks kept at their ImageNet weights
    trunk_stride: int = 16      # lite0: deepest trunk features the banks use (32 adds the
                                # stride-32 blocks: context from the whole crop)
    loss: str = "mse"           # "mse" to Gaussian targets (the paper; chosen on validation)
                                # or "softmax" cross-entropy over each map's pixels
    joints: int = 14

    @classmethod
    def scratch(cls) -> "DetectorConfig":
        """As in the paper, from random weights: ~110 training images/s on two CPU cores."""
        return cls(trunk="scratch", banks=3, width=48, bank_depth=4, head_width=64, head_depth=3)

    @classmethod
    def pretrained(cls) -> "DetectorConfig":
        """Banks on the ImageNet-pretrained EfficientNet-Lite0 trunk (the shipped model)."""
        return cls(trunk="lite0", banks=2, width=48, head_width=64, head_depth=1, loss="mse")

    @classmethod
    def everyday(cls) -> "DetectorConfig":
        """The pretrained detector with the trunk's stride-32 blocks (context from the whole
        crop), for 192-px crops of everyday photos."""
        return cls(trunk="lite0", banks=2, width=48, head_width=64, head_depth=1, loss="mse",
                   trunk_stride=32)

    @classmethod
    def everyday_lite1(cls) -> "DetectorConfig":
        """The everyday detector on EfficientNet-Lite1's deeper trunk (one more block in each
        middle stage), grown from a trained Lite0 detector (`lab.models.trunk.deepen`)."""
        return cls(trunk="lite1", banks=2, width=48, head_width=64, head_depth=1, loss="mse",
                   trunk_stride=32)

    @classmethod
    def small(cls) -> "DetectorConfig":
        """The Retrain page's model: the pretrained trunk with a light head."""
        return cls(trunk="lite0", banks=2, width=32, head_width=48, head_depth=1, freeze_blocks=9)

    @classmethod
    def preset(cls, name: str) -> "DetectorConfig":
        return {"scratch": cls.scratch, "pretrained": cls.pretrained, "everyday": cls.everyday,
                "everyday-lite1": cls.everyday_lite1, "small": cls.small}[name]()


DETECTOR_PRESETS = ("pretrained", "everyday", "everyday-lite1", "scratch", "small")     # DetectorConfig.preset's names


@dataclass
class SpatialConfig:
    """Spatial model (paper section 3.2): one round of log-space message passing."""
    graph: str = "tree"         # "tree" (kinematic tree + self edges) or "full"
    belief: str = "relu"        # what a message convolves: "relu" of the unary (the paper,
                                # MSE-trained unary) or its "softmax" over pixels (softmax loss)
    heatmap_size: int = HeatmapCodec().heatmap_size   # the default crops' (32): kernels are (2*size - 1)
                                                      # wide, every displacement
    hist_blur: float = 1.0      # Gaussian blur (heatmap px) of the displacement histograms
    # Chosen on validation: a large pair bias lets a neighbour's message veto only where its
    # prior is confident (small biases let broad priors drag well-placed joints); the self
    # edge starts with almost no bias, so the marginal keeps the unary's own peak shape.
    bias_init: float = 3.0      # SoftPlus(b_{v->A}) at the start, for the edges between joints
    self_bias: float = 0.01     # SoftPlus(b_{A->A}) at the start, for the self edges
    use_fft: str = "auto"       # "auto", "fft" or "direct"
    joints: int = 14

    @property
    def kernel_size(self) -> int:
        return 2 * self.heatmap_size - 1


@dataclass
class RegressorConfig:
    """DeepPose-style direct regressor of the 28 normalised coordinates, on the same banks
    (trunk, decoders, combination) as the detector: only the head differs."""
    features: DetectorConfig = field(default_factory=DetectorConfig.pretrained)
    hidden: int = 512           # fully connected layer before the 28 outputs
    loss: str = "l1"            # "l1" or "l2" on normalised coordinates
    joints: int = 14

    @classmethod
    def pretrained(cls) -> "RegressorConfig":
        return cls()

    @classmethod
    def small(cls) -> "RegressorConfig":
        return cls(features=DetectorConfig.small(), hidden=256)


@dataclass
class TrainConfig:
    stage: str = "detector"     # detector | spatial | joint | regressor
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    unary_weight: float = 0.5   # joint stage: loss = marginal loss + w * unary loss
    marginal_loss: str = "softmax"  # loss on the marginal: "softmax" (chosen on validation), "mse",
                                    # or "" for the detector's own loss
    trunk_lr: float = 1.0       # learning-rate multiplier of the pretrained trunk
    detector_lr: float = 1.0    # joint stage: multiplier of the detector (banks, head, unary)
    prior_lr: float = 1.0       # spatial / joint: multiplier of the priors and biases
    prior_decay: float = 0.0    # spatial / joint: weight of SpatialModel.prior_penalty
    warmup: int = 100           # linear warm-up steps before the cosine decay
    precision: str = "fp32"     # "fp32" or "bf16" (autocast; on CPU needs avx512_bf16 to pay off)
    channels_last: bool = False # memory format of conv inputs
    train_limit: int = 0        # use only the first N training images (0 = all)
    seed: int = 0
    device: str = "auto"
    threads: int = 0            # torch threads on CPU (0 = torch default)
    speed_probe: int = 0        # steps of a model-only speed probe at the start (0 = none; the
                                # CLI's default 4): every epoch logs its img/s against it
    model_only_ips: float = 0.0 # or the model-only img/s `pose-lab bench` measured on a quiet
                                # machine (used instead of the probe when given)
    augment: AugmentConfig = field(default_factory=AugmentConfig)


def to_dict(cfg) -> dict:
    return asdict(cfg)


def from_dict(cls, d: dict):
    """Build a dataclass from a dict, ignoring unknown keys (forward compatible); nested
    dataclass fields are rebuilt from their dicts."""
    names = {f.name: f for f in fields(cls)}
    kw = {}
    for k, v in (d or {}).items():
        if k not in names:
            continue
        nested = NESTED.get((cls.__name__, k))
        if nested is not None and isinstance(v, dict):
            v = from_dict(nested, v)
        kw[k] = v
    return cls(**kw)


NESTED = {("TrainConfig", "augment"): AugmentConfig, ("RegressorConfig", "features"): DetectorConfig}
