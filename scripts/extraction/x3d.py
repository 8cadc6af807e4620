"""The X3D backbone of feature_extractor.py: presets, weights and the two feature layouts.

The network is pytorchvideo's `create_x3d`, built as pytorchvideo's hub builds it (hub/x3d.py), so the
official Kinetics-400 checkpoints of its model zoo (X3D_XS.pyth ... X3D_L.pyth) load strictly.

Weights, by default the official Kinetics-400 ones, as the shared UCF-Crime features were made with:
the model-zoo file in torch's hub cache (<torch.hub.get_dir()>/checkpoints/X3D_L.pyth, the file
`torch.hub.load("facebookresearch/pytorchvideo", "x3d_l", pretrained=True)` also uses), downloaded there
the first time. Offline and not cached, the error says to pass the file as `checkpoint`. A local
`checkpoint` never touches the network; `random_weights` (tests, smoke runs) must be asked for.
`torch.hub.load` is never called: no code is fetched, only the weights file.

Layouts (what one clip [B, 3, T, H, W] becomes):
    map       the trunk (stem + 4 stages, `blocks[:5]`) without the head: [B, 192, T, H/32, W/32];
              X3D-L at a 320-pixel crop gives [B, 192, 16, 10, 10], the shared UCF-Crime format.
    sequence  one vector per clip: "head" = the head's pre-projection features (conv5 + BN + ReLU,
              global average pool, the 2048-d lin5 + ReLU; before dropout and the Kinetics
              projection), [B, 2048]; "stem" = the trunk's map averaged over time and space, [B, 192].
"""
from __future__ import annotations

import hashlib
import http.client
import importlib
import shutil
import sys
import types
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from scripts.core.errors import MateError
from scripts.core.fileio import atomic_write
from scripts.models.checkpoint import safe_torch_load

MAP_CHANNELS = 192
HEAD_DIM = 2048


@dataclass(frozen=True)
class X3DPreset:
    """One X3D size: clip sampling and input size as pytorchvideo's hub uses them."""

    name: str
    num_frames: int  # frames per clip
    sampling_rate: int  # take every sampling_rate-th frame
    crop_size: int  # square crop fed to the network
    side_size: int  # the short side is scaled to this before cropping
    depth_factor: float  # create_x3d's stage depth expansion


# x3d_l is the published extractor's preprocessing, the one the shared UCF-Crime features were made
# with: short side 320, 320 x 320 centre crop (the full short side), so the trunk's map is 10 x 10
# (320 / 32): [192, 16, 10, 10]. pytorchvideo's own X3D-L transform (hub, model zoo) scales to 356 and
# crops 312, a closer view; pass side_size=356, crop_size=312 (--side_size 356 --crop_size 312) for it.
# xs/s/m, for which no features were published, keep pytorchvideo's values.
PRESETS: dict[str, X3DPreset] = {
    "x3d_xs": X3DPreset("x3d_xs", 4, 12, 160, 182, 2.2),
    "x3d_s": X3DPreset("x3d_s", 13, 6, 160, 182, 2.2),
    "x3d_m": X3DPreset("x3d_m", 16, 5, 224, 256, 2.2),
    "x3d_l": X3DPreset("x3d_l", 16, 5, 320, 320, 5.0),
}
PYTORCHVIDEO_X3D_L = {"side_size": 356, "crop_size": 312}  # pytorchvideo's X3D-L test transform
# pytorchvideo's Kinetics-400 model zoo files (the default weights, and what `--checkpoint` expects).
CHECKPOINT_FILES = {"x3d_xs": "X3D_XS.pyth", "x3d_s": "X3D_S.pyth", "x3d_m": "X3D_M.pyth",
                    "x3d_l": "X3D_L.pyth"}
MODEL_ZOO_URL = "https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo/kinetics"
DOWNLOAD_TIMEOUT_S = 30  # per connection attempt and per read: a machine without a route fails, not hangs


def _install_torchvision_shim() -> bool:
    """Let pytorchvideo's model package import without torchvision; True when the stand-in went in.

    pytorchvideo/models/head.py does `from torchvision.ops import RoIAlign` for a detection head that
    X3D never builds, and torchvision's wheel cannot be installed beside the CPU torch pinned here. So,
    only when torchvision is absent, register a stand-in `torchvision.ops` whose RoIAlign refuses to be
    built. A real torchvision, when importable, is always used and never touched.
    """
    try:
        importlib.import_module("torchvision.ops")
        return False
    except ModuleNotFoundError as exc:
        if exc.name not in ("torchvision", "torchvision.ops"):
            raise

    class RoIAlign(nn.Module):  # a placeholder that must never run
        def __init__(self, *args, **kwargs):
            raise RuntimeError("torchvision is not installed: MATE's stand-in RoIAlign cannot be used "
                               "(X3D feature extraction never needs it)")

    package = types.ModuleType("torchvision")
    package.__path__ = []  # a package, so `torchvision.ops` resolves as its submodule
    package.__mate_shim__ = True
    ops = types.ModuleType("torchvision.ops")
    ops.RoIAlign = RoIAlign
    package.ops = ops
    sys.modules["torchvision"] = package
    sys.modules["torchvision.ops"] = ops
    return True


def _remove_torchvision_shim() -> None:
    """Take the stand-in out again once pytorchvideo holds its RoIAlign, so that other code asking
    whether torchvision is installed still hears no."""
    if getattr(sys.modules.get("torchvision"), "__mate_shim__", False):
        del sys.modules["torchvision"], sys.modules["torchvision.ops"]


def _create_x3d():
    """pytorchvideo's `create_x3d`, imported with the torchvision stand-in where needed."""
    shimmed = _install_torchvision_shim()
    try:
        from pytorchvideo.models.x3d import create_x3d
    finally:
        if shimmed:
            _remove_torchvision_shim()
    return create_x3d


def create_x3d_network(name: str) -> nn.Module:
    """pytorchvideo's X3D network for a preset name, randomly initialised."""
    preset = get_preset(name)
    net = _create_x3d()(input_clip_length=preset.num_frames, input_crop_size=preset.crop_size,
                        depth_factor=preset.depth_factor)
    pool = net.blocks[5].pool
    assert isinstance(pool.pool, nn.AvgPool3d), "unexpected X3D head layout"
    # The head's AvgPool3d kernel is sized for one clip length and crop; at that size it is a global
    # average, so an adaptive global pool gives the same numbers and lets --num_frames / --crop_size vary.
    pool.pool = nn.AdaptiveAvgPool3d(1)
    return net


def get_preset(name: str) -> X3DPreset:
    if name not in PRESETS:
        raise MateError(f"--backbone: '{name}' is not an X3D preset (choose from {', '.join(PRESETS)})")
    return PRESETS[name]


# (conv, norm) attribute pairs of pytorchvideo's X3D: the stem, the bottleneck's three, the shortcut, the head
FOLDABLE = (("conv", "norm"), ("conv_a", "norm_a"), ("conv_b", "norm_b"), ("conv_c", "norm_c"),
            ("branch1_conv", "branch1_norm"), ("pre_conv", "pre_norm"), ("post_conv", "post_norm"))


def _fold(conv: nn.Conv3d, norm: nn.BatchNorm3d) -> None:
    """conv then norm (eval: running statistics) as one conv with a bias."""
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)  # [C_out]
    conv.weight.copy_(conv.weight * scale.view(-1, *([1] * (conv.weight.dim() - 1))))
    shift = norm.bias - norm.running_mean * scale
    if conv.bias is None:
        conv.bias = nn.Parameter(shift.clone())
    else:
        conv.bias.copy_(conv.bias * scale + shift)


class X3DFeatures(nn.Module):
    """An X3D network that returns features instead of Kinetics logits.

    Args:
        net (nn.Module): pytorchvideo's X3D `Net` (blocks[:5] trunk, blocks[5] head).
        layout (str): "map" or "sequence".
        sequence_feature (str): for sequence, "head" (2048-d) or "stem" (192-d trunk average).
        name (str): the preset name, recorded in the sidecar.
        weights (str): where the weights came from, recorded in the sidecar.
    """

    def __init__(self, net: nn.Module, *, layout: str = "map", sequence_feature: str = "head",
                 name: str = "x3d_l", weights: str = "random"):
        super().__init__()
        assert layout in ("map", "sequence"), f"unknown layout {layout}"
        assert sequence_feature in ("head", "stem"), f"unknown sequence feature {sequence_feature}"
        self.trunk = nn.Sequential(*net.blocks[:5])
        self.head_pool = net.blocks[5].pool  # ProjectedPool: conv5, BN, ReLU, pool, lin5, ReLU
        self.layout, self.sequence_feature = layout, sequence_feature
        self.name, self.weights = name, weights

    @property
    def feature_dim(self) -> int:
        if self.layout == "sequence" and self.sequence_feature == "head":
            return HEAD_DIM
        return MAP_CHANNELS

    def fold_batch_norms(self) -> int:
        """Fold every BatchNorm3d that follows a Conv3d into that convolution (inference only): the conv
        takes the norm's per-channel scale into its weights and its shift as a bias, the norm becomes an
        Identity. The same function of the input, rounded differently (about 1e-7 relative); one pass
        over every activation less, X3D-L 10% faster on a CPU thread (docs/extractor.md). Returns how many."""
        folded = 0
        with torch.no_grad():
            for module in self.modules():
                children = dict(module.named_children())
                for conv_name, norm_name in FOLDABLE:
                    conv, norm = children.get(conv_name), children.get(norm_name)
                    if conv_name == "conv" and conv is not None:
                        conv = getattr(conv, "conv_xy", None)  # the stem's Conv2plus1d: the norm follows conv_xy
                    inner = norm[0] if isinstance(norm, nn.Sequential) and len(norm) else norm
                    if not isinstance(conv, nn.Conv3d) or not isinstance(inner, nn.BatchNorm3d):
                        continue
                    _fold(conv, inner)
                    if inner is norm:
                        setattr(module, norm_name, nn.Identity())
                    else:
                        norm[0] = nn.Identity()
                    folded += 1
        return folded

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.dim() == 5 and x.shape[1] == 3, f"expected clips [B, 3, T, H, W], got {tuple(x.shape)}"
        fmap = self.trunk(x)  # [B, 192, T, H/32, W/32]
        if self.layout == "map":
            return fmap
        if self.sequence_feature == "stem":
            return fmap.mean(dim=(2, 3, 4))  # [B, 192]
        return self.head_pool(fmap).flatten(1)  # [B, 2048, 1, 1, 1] -> [B, 2048]


def _sha256_prefix(path: Path, n: int = 12) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:n]


def _state_dict_of(obj, source: Path) -> dict[str, torch.Tensor]:
    """The official layout {"model_state": ...}, a plain state dict, or a DDP one ("module." keys)."""
    if isinstance(obj, dict) and isinstance(obj.get("model_state"), dict):
        obj = obj["model_state"]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise MateError(f"{source}: not an X3D checkpoint (expected {{'model_state': state_dict}} "
                        "as in pytorchvideo's model zoo, or a plain state dict)")
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def load_state(net: nn.Module, state: dict[str, torch.Tensor], source: str | Path, name: str) -> None:
    """Strict load; any mismatch is a user fault that names the file and the first differences."""
    own = net.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [k for k in own if k in state and own[k].shape != state[k].shape]
    if missing or unexpected or wrong:
        parts = [f"{label} {len(keys)} (e.g. {keys[0]})" for label, keys in
                 (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)) if keys]
        raise MateError(f"{source}: weights do not match {name} ({'; '.join(parts)}); is it "
                        f"{CHECKPOINT_FILES[name]} for --backbone {name}?")
    net.load_state_dict(state, strict=True)


def read_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise MateError(f"{path}: checkpoint file not found")
    obj = safe_torch_load(path, "backbone checkpoint", "give pytorchvideo's X3D .pyth or a state dict")
    return _state_dict_of(obj, path)


def hub_cache_path(name: str) -> Path:
    """Where torch.hub keeps the model-zoo file: <torch.hub.get_dir()>/checkpoints/<file> ($TORCH_HOME/hub,
    ~/.cache/torch/hub by default), the path torch.hub.load_state_dict_from_url uses for the same URL."""
    return Path(torch.hub.get_dir()) / "checkpoints" / CHECKPOINT_FILES[name]


def _download(url: str, dest: Path) -> None:
    """Fetch url into dest atomically (a broken download leaves no file behind), with a timeout."""
    request = urllib.request.Request(url, headers={"User-Agent": "torch.hub"})
    with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S) as response:
        print(f"downloading {url} to {dest}", flush=True)

        def copy(tmp: Path) -> None:
            with open(tmp, "wb") as f:
                shutil.copyfileobj(response, f, 1 << 20)

        atomic_write(dest, copy)


def _hub_weights(name: str) -> Path:
    """The model-zoo file in torch's hub cache, downloaded once; offline and not cached: a MateError."""
    path = hub_cache_path(name)
    if path.is_file():
        return path
    url = f"{MODEL_ZOO_URL}/{CHECKPOINT_FILES[name]}"
    try:
        _download(url, path)
    except (OSError, http.client.HTTPException) as exc:  # offline: URLError, timeouts, HTTP errors
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise MateError(f"no X3D weights: {CHECKPOINT_FILES[name]} (pytorchvideo's Kinetics-400 model zoo) is not "
                        f"in torch's hub cache {path.parent} and cannot be downloaded from {url} ({reason}); "
                        "fetch it on a machine with internet access and pass --backbone_checkpoint PATH, or copy "
                        "it into that folder") from None
    return path


def load_backbone(name: str = "x3d_l", *, checkpoint: str | Path | None = None, pretrained: bool = False,
                  random_weights: bool = False, layout: str = "map",
                  sequence_feature: str = "head", random_seed: int = 0) -> X3DFeatures:
    """An X3D feature network in eval mode, on the CPU.

    With neither `checkpoint` nor `random_weights`, the official Kinetics-400 weights (the shared
    features' backbone) from torch's hub cache, downloaded there the first time.

    Args:
        name (str): preset, one of PRESETS.
        checkpoint (path): a local checkpoint ({"model_state": ...} .pyth or a plain state dict); no network.
        pretrained (bool): ask for the official weights explicitly; they are the default anyway.
        random_weights (bool): random weights (tests, smoke runs); features are meaningless.
        layout (str): "map" or "sequence".
        sequence_feature (str): "head" (2048-d) or "stem" (192-d), for the sequence layout.
        random_seed (int): torch's seed for random weights.
    """
    if sum([checkpoint is not None, pretrained, random_weights]) > 1:
        raise MateError("--backbone_checkpoint, --pretrained and --random_weights exclude each other; give one "
                        "(none: the official Kinetics-400 weights)")
    get_preset(name)
    path = None if random_weights else Path(checkpoint) if checkpoint is not None else _hub_weights(name)
    if path is None:  # seeded, so the extractor and test.py --video build the same random network
        torch.manual_seed(random_seed)
    net = create_x3d_network(name)
    if path is None:
        weights = "random"
    else:
        load_state(net, read_checkpoint(path), path, name)
        where = str(path) if checkpoint is not None else f"model_zoo:{CHECKPOINT_FILES[name]}"
        weights = f"{where} sha256:{_sha256_prefix(path)}"  # the hash, not the path, names the weights
    model = X3DFeatures(net, layout=layout, sequence_feature=sequence_feature, name=name, weights=weights).eval()
    model.fold_batch_norms()  # inference only: one pass less over every activation
    return model
