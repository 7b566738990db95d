"""Make the PyTorch test models in tests/data/torch/ with both of torch's ONNX exporters (run once).

    python3.11 -m venv /tmp/torch && /tmp/torch/bin/pip install torch==2.13.0 onnx onnxscript
    /tmp/torch/bin/python scripts/make_torch_models.py [--out tests/data/torch]

The committed files were made by torch 2.13.0 (CPU build) with onnx 1.23.2 and onnxscript 0.7.2:
each model as `<name>.onnx` by the classic TorchScript exporter (`dynamo=False`, opset 17) and as
`<name>_dynamo.onnx` by the dynamo exporter (`dynamo=True`, the default in torch 2.13), with
seeded random weights. The forms are the ones people write around convolutions: 1-D heads
(`x.mean(-1)`, `AdaptiveAvgPool1d(1)`), MobileNetV3's squeeze-excite with `Hardsigmoid` and
hand-written hard swish, input normalisation `(x - mean) / std`, `PReLU`, `clamp`, `torch.maximum`
with a constant, ReLU after a concatenation, NHWC inputs permuted to NCHW (as MTCNN's), `permute`
before `flatten`, a transpose of H and W, and an input whose H and W are dynamic (`--input-shape`).
CI does not need torch: the tests read the committed files; README.md names the versions.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import onnx
import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent


class Head1d(nn.Module):
    """Conv1d, ReLU, the mean over time as `x.mean(-1)`, Linear: an audio model's ending."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(6, 16, 3)
        self.fc = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).mean(-1))


class Pool1d(nn.Module):
    """Conv1d, AdaptiveAvgPool1d(1) (Unsqueeze then ReduceMean through the dynamo exporter),
    AdaptiveMaxPool1d(1), flatten, Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(6, 16, 5, padding=2)
        self.avg, self.max = nn.AdaptiveAvgPool1d(1), nn.AdaptiveMaxPool1d(1)
        self.fc = nn.Linear(32, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return self.fc(torch.cat([self.avg(y), self.max(y)], 1).flatten(1))


class SqueezeExcite(nn.Module):
    """Input normalisation, Conv2d, hand-written hard swish, MobileNetV3's squeeze-excite with
    Hardsigmoid, PReLU, clamp, maximum with a constant, ReLU after a concatenation."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.1, -0.2, 0.3]).reshape(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.9, 1.1, 1.3]).reshape(1, 3, 1, 1))
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.squeeze, self.excite = nn.Conv2d(8, 4, 1), nn.Conv2d(4, 8, 1)
        self.prelu = nn.PReLU(8)
        self.side = nn.Conv2d(8, 4, 1)
        self.out = nn.Conv2d(12, 6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean) / self.std
        y = self.conv(x)
        y = y * torch.clamp(y + 3, 0, 6) / 6
        scale = nn.functional.hardsigmoid(self.excite(torch.relu(self.squeeze(y.mean((2, 3), keepdim=True)))))
        y = self.prelu(y * scale)
        z = torch.maximum(torch.clamp(self.side(y), -1.5, 2.0), torch.tensor(-0.5))
        return self.out(torch.relu(torch.cat([y, z], 1)))


class NhwcInput(nn.Module):
    """An NHWC input permuted to NCHW (MTCNN's rnet and onet start so), Conv2d, PReLU, MaxPool,
    then `permute` to NHWC before `flatten` and Linear, and a transpose of H and W computed."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.prelu = nn.PReLU(8)
        self.conv2 = nn.Conv2d(8, 6, 3)
        self.fc = nn.Linear(6 * 4 * 3, 5)
        self.conv3 = nn.Conv2d(6, 4, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = nn.functional.max_pool2d(self.prelu(self.conv(x.permute(0, 3, 1, 2))), 2)
        y = self.conv2(y)
        return self.fc(y.permute(0, 2, 3, 1).flatten(1)), self.conv3(y.transpose(2, 3))


class DynamicImage(nn.Module):
    """A classifier over an image whose H and W are dynamic (PP-OCR's classifier is exported so)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2)
        self.fc = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(nn.functional.adaptive_avg_pool2d(torch.relu(self.conv(x)), 1).flatten(1)).softmax(-1)


MODELS = {
    "head_1d": (Head1d, (1, 6, 64)),
    "pool_1d": (Pool1d, (1, 6, 40)),
    "squeeze_excite": (SqueezeExcite, (1, 3, 10, 12)),
    "nhwc_input": (NhwcInput, (1, 14, 12, 3)),
    "dynamic_image": (DynamicImage, (1, 3, 12, 20)),
}


def export(module: nn.Module, shape: tuple[int, ...], path: Path, dynamo: bool, dynamic: bool) -> None:
    example = (torch.randn(shape),)
    if dynamo:
        shapes = ({2: torch.export.Dim("h", min=4), 3: torch.export.Dim("w", min=4)},) if dynamic else None
        program = torch.onnx.export(module, example, dynamo=True, dynamic_shapes=shapes, input_names=["x"])
        program.save(str(path))
    else:
        axes = {"x": {2: "h", 3: "w"}} if dynamic else None
        torch.onnx.export(module, example, str(path), dynamo=False, opset_version=17, input_names=["x"],
                          dynamic_axes=axes)
    onnx.checker.check_model(onnx.load(str(path)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "tests" / "data" / "torch")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for seed, (name, (make, shape)) in enumerate(MODELS.items()):
        torch.manual_seed(seed)
        module = make().eval()
        for dynamo in (False, True):
            path = args.out / f"{name}{'_dynamo' if dynamo else ''}.onnx"
            with torch.no_grad():
                export(module, shape, path, dynamo, dynamic=name == "dynamic_image")
            print(path.name, "written")
    import onnxscript
    (args.out / "README.md").write_text(
        "PyTorch models exported to ONNX by `scripts/make_torch_models.py` (see its docstring), each "
        "by the classic exporter (`NAME.onnx`) and the dynamo exporter (`NAME_dynamo.onnx`).\n\n"
        f"Made by torch {torch.__version__}, onnx {onnx.__version__}, onnxscript {onnxscript.__version__}.\n")


if __name__ == "__main__":
    main()
