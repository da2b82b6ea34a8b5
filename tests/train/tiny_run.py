"""The tiny training run the distributed tests share: the Retrain page's small detector without
BatchNorm (PyTorch has no SyncBatchNorm on the CPU, so per-rank statistics would differ from the
combined batch's), no augmentation, 16 crops of the bundled mini set."""
import dataclasses

from lab.config import AugmentConfig, DetectorConfig, TrainConfig
from lab.data.cache import load_mini

NO_AUGMENT = AugmentConfig(scale=0, rotation=0, translate=0, flip=0, color=0)


def tiny_setup(epochs: int, batch: int):
    mini = load_mini()
    cfg = TrainConfig(stage="detector", epochs=epochs, batch_size=batch, lr=1e-3, warmup=1,
                      train_limit=16, device="cpu", threads=1, augment=NO_AUGMENT)
    det = dataclasses.replace(DetectorConfig.small(), norm=False)
    return cfg, mini.data, mini["train"], mini["val"].subset(8), det
