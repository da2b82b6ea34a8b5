"""The detector's unary and the regressor's joints as the app computes them for a photo: the
same functions, exported once to ONNX and run by ONNX Runtime, about twice as fast on a CPU as
eager PyTorch (EfficientNet-Lite's depthwise convolutions; `pose-lab bench` prints both rows).

Only those forward passes move. The spatial model, looking inside the detector (bank inputs,
features, a bank switched off), `pose-lab eval` and training stay in PyTorch, and the engine's
outputs equal PyTorch's to float round-off (tests/models/test_engine.py). An export takes a few
seconds, so it is kept in a cache folder under a key of the weights' bytes, the crop size and
the torch version. Where onnxruntime is missing or the export fails, `compile_module` says
why and returns None, and callers use the PyTorch module.
"""
from __future__ import annotations

import copy
import hashlib
import io
import os
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

CACHE = Path(os.environ.get("POSE_LAB_CACHE") or Path.home() / ".cache" / "pose-lab") / "onnx"
OPSET = 17


class OnnxModule:
    """crop (B, 3, S, S) float in [0, 1] -> the module's output (the detector's unary
    (B, K, S/4, S/4), the regressor's normalised joints (B, K, 2)), run by ONNX Runtime."""

    def __init__(self, model: bytes, threads: int):
        import onnxruntime as ort
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = max(1, threads), 1
        opts.log_severity_level = 3                                  # errors only
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.detach().float().contiguous().cpu().numpy()
        outs = [self.session.run(None, {"x": x[i:i + 1]})[0] for i in range(len(x))]   # exported for batch 1
        return torch.from_numpy(outs[0] if len(outs) == 1 else np.concatenate(outs))


class BinPool(nn.Module):
    """nn.AdaptiveAvgPool2d for one input size, as two fixed averaging matrices:
    y = P_h x P_w^T, where row i of P averages bin i = [floor(i n / m), ceil((i + 1) n / m)),
    PyTorch's adaptive bins (they overlap when m does not divide n)."""

    def __init__(self, h: int, w: int, out: tuple[int, int]):
        super().__init__()
        self.register_buffer("ph", self.bins(h, out[0]))                       # (m_h, h)
        self.register_buffer("pw", self.bins(w, out[1]))                       # (m_w, w)

    @staticmethod
    def bins(n: int, m: int) -> torch.Tensor:
        p = torch.zeros(m, n)
        for i in range(m):
            a, b = (i * n) // m, -(-((i + 1) * n) // m)
            p[i, a:b] = 1.0 / (b - a)
        return p

    def forward(self, x: torch.Tensor) -> torch.Tensor:                         # (B, C, h, w) -> (B, C, m_h, m_w)
        return self.ph @ x @ self.pw.T


def static_pools(module: nn.Module, size: int) -> nn.Module:
    """A copy of `module` whose adaptive average pools are fixed ones for an S x S crop.

    The trunk's 'same' padding reads each map's size at run time, so the exporter cannot see
    the size an nn.AdaptiveAvgPool2d (the regressor's) receives; for one crop size it is a
    `BinPool`, the same function, even where the bins overlap (a 192-px crop's 12 x 12 map
    pooled to 8 x 8)."""
    module = copy.deepcopy(module).eval()
    seen = {}
    hooks = [m.register_forward_hook(lambda m, i, o: seen.__setitem__(m, i[0].shape[-2:]))
             for m in module.modules() if isinstance(m, nn.AdaptiveAvgPool2d)]
    with torch.no_grad():
        module(torch.rand(1, 3, size, size))
    for h in hooks:
        h.remove()
    for parent in list(module.modules()):
        for name, child in parent.named_children():
            if child in seen:
                (h, w) = seen[child]
                parent._modules[name] = BinPool(h, w, nn.modules.utils._pair(child.output_size))
    return module


def export(module: nn.Module, size: int) -> bytes:
    """The module (eval mode) as an ONNX model for one crop: input "x" (1, 3, S, S), output "y".
    (A free batch axis would leave the trunk's 'same' padding symbolic; the app predicts one
    crop at a time.)"""
    buf = io.BytesIO()
    module = static_pools(module, size)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.rand(1, 3, size, size),), buf, dynamo=False, opset_version=OPSET,
                          input_names=["x"], output_names=["y"])
    return buf.getvalue()


def gist(e: Exception) -> str:
    """An exception's message in one short line (an exporter's error carries a whole graph)."""
    lines = [ln.strip() for ln in str(e).splitlines()
             if ln.strip() and not ln.lstrip().startswith(("%", "Torch IR graph"))]
    return (lines[0] if lines else "no message")[:200]


def cache_key(weights: Path, size: int) -> str:
    h = hashlib.sha256(Path(weights).read_bytes())
    h.update(f"{size}/{torch.__version__}/{OPSET}".encode())
    return h.hexdigest()[:24]


def compile_module(module: nn.Module, weights: Path | None, size: int, threads: int | None = None,
                   cache: Path = CACHE, log=print) -> OnnxModule | None:
    """The engine for `module` (the detector or the regressor, loaded from `weights`),
    exported or read from `cache` (always exported when `weights` is None: a module never
    saved, as in the benchmark); None, with one line to `log` saying why, when ONNX Runtime
    cannot run it here."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        log("pose-lab: onnxruntime is not installed; the models run in PyTorch (about 2x slower).")
        return None
    threads = threads or torch.get_num_threads()
    path = Path(cache) / f"{type(module).__name__.lower()}-{cache_key(weights, size)}.onnx" if weights else None
    if path is not None and path.is_file():
        try:
            return OnnxModule(path.read_bytes(), threads)
        except Exception:                                            # a damaged cache file: export again
            pass
    try:
        model = export(module, size)
        engine = OnnxModule(model, threads)
    except Exception as e:                                           # any export or runtime failure
        log(f"pose-lab: the ONNX export of {weights or type(module).__name__} failed ({type(e).__name__}: "
            f"{gist(e)}); it runs in PyTorch.")
        return None
    if path is None:
        return engine
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        tmp.write_bytes(model)
        tmp.replace(path)
    except OSError:                                                  # a read-only home: export again next time
        pass
    return engine
