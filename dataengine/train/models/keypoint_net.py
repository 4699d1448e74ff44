"""The first-frame perception network of "perceive once, then act" (docs/training.md, rung 2b).

One front frame + the instruction -> what the `task` state needs that proprioception cannot give: two image points
(the pick object's grasp point and the container's place point, each projected onto the table plane), their
heights, the pick object's size and grasp height, the container's rim height and the grasp yaw.

- Image points: a small conv net with coordinate channels, FiLM-conditioned on the instruction (a GRU over hashed
  words: the instruction names the pick object among look-alike distractors), ends in two heatmaps at half the
  input resolution; a spatial soft-argmax reads sub-pixel points from them (trained on the point error and on a
  Gaussian target heatmap).
- Scalars: the features under each heatmap (attention pooling) + the instruction -> an MLP.
- Grasp yaw: classified into bins over the folded range [-pi/2, pi/2) (a symmetric object has several right
  answers, e.g. a cube every 90 degrees: a classifier picks one of them where a regression would average them).
"""

from __future__ import annotations

import math
import re
import zlib

import torch
import torch.nn.functional as F
from torch import nn

WORD_BUCKETS = 2048
_WORD = re.compile(r"[a-z0-9]+")


def word_ids(text: str, max_words: int = 16) -> list[int]:
    """Hashed lower-case words (1..WORD_BUCKETS-1; 0 pads), deterministic across processes."""
    words = _WORD.findall(text.lower())[:max_words]
    return [1 + zlib.crc32(w.encode()) % (WORD_BUCKETS - 1) for w in words]


def encode_words(texts: list[str], max_words: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, L) padded word ids and (B,) lengths."""
    ids = [word_ids(t, max_words) or [0] for t in texts]
    out = torch.zeros(len(ids), max(len(i) for i in ids), dtype=torch.long)
    for b, row in enumerate(ids):
        out[b, : len(row)] = torch.tensor(row)
    return out, torch.tensor([len(i) for i in ids])


class _Film(nn.Module):
    def __init__(self, text_dim: int, channels: int) -> None:
        super().__init__()
        self.proj = nn.Linear(text_dim, 2 * channels)

    def forward(self, x: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.proj(text)[:, :, None, None].chunk(2, dim=1)
        return x * (1 + gamma) + beta


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class _SepBlock(nn.Module):
    """Depthwise-separable residual block (cheap on a CPU), dilated for context, FiLM-conditioned on the text."""

    def __init__(self, channels: int, dilation: int, text_dim: int) -> None:
        super().__init__()
        self.dw = nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation, groups=channels, bias=False)
        self.pw = nn.Conv2d(channels, channels, 1, bias=False)
        self.norm = nn.BatchNorm2d(channels)
        self.film = _Film(text_dim, channels)

    def forward(self, x: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        return x + F.relu(self.film(self.norm(self.pw(self.dw(x))), text))


def _coords(b: int, h: int, w: int, device) -> torch.Tensor:
    ys = torch.linspace(-1, 1, h, device=device)[:, None].expand(h, w)
    xs = torch.linspace(-1, 1, w, device=device)[None, :].expand(h, w)
    return torch.stack([xs, ys])[None].expand(b, 2, h, w)


class KeypointNet(nn.Module):
    """(B, 3, H, W) images in [0, 1] + instructions -> points (B, 2, 2) in pixels of the image (u, v; OpenCV pixel
    centres), heatmap logits (B, 2, H/2, W/2), scalars (B, n_scalars) (normalized), yaw logits (B, yaw_bins)."""

    def __init__(self, n_scalars: int = 7, width: int = 48, text_dim: int = 64, yaw_bins: int = 36) -> None:
        super().__init__()
        self.yaw_bins = yaw_bins
        self.embed = nn.Embedding(WORD_BUCKETS, text_dim, padding_idx=0)
        self.gru = nn.GRU(text_dim, text_dim, batch_first=True)
        self.stem = _conv(5, 16, stride=2)  # S/2
        self.down = _conv(16 + 2, width, stride=2)  # S/4
        self.blocks = nn.ModuleList([_SepBlock(width, d, text_dim) for d in (1, 2, 4, 8, 1)])
        self.up = nn.Conv2d(width, 16, 1)
        self.fuse = nn.Sequential(
            nn.Conv2d(32, 32, 3, padding=1, groups=32, bias=False),
            nn.Conv2d(32, 16, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(16, 2, 1),
        )  # two heatmaps at S/2
        self.glimpse = nn.Sequential(  # full-resolution patch around the pick point: its orientation and size
            _conv(3 + 2, 16), _conv(16, 32, stride=2), _conv(32, 32, stride=2), nn.Flatten(),
            nn.Linear(32 * (GLIMPSE_PX // 4) ** 2, 128), nn.ReLU(inplace=True),
        )  # fmt: skip
        self.scalar_head = nn.Sequential(
            nn.Linear(2 * width + text_dim + 128, 256), nn.GELU(), nn.Linear(256, n_scalars + yaw_bins)
        )

    def encode_text(self, texts: list[str], device) -> torch.Tensor:
        ids, lengths = encode_words(texts)
        packed = nn.utils.rnn.pack_padded_sequence(
            self.embed(ids.to(device)), lengths, batch_first=True, enforce_sorted=False
        )
        return self.gru(packed)[1][0]

    def forward(
        self, images: torch.Tensor, texts: list[str], glimpse_at: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """`glimpse_at` (B, 2): where to look closely at the pick object (pixels; training passes noisy true
        points); None: at the predicted pick point."""
        b, _, height, width = images.shape
        text = self.encode_text(texts, images.device)
        x = torch.cat([images * 2 - 1, _coords(b, height, width, images.device)], dim=1)
        half = self.stem(x)
        h, w = half.shape[-2:]
        x = self.down(torch.cat([half, _coords(b, h, w, images.device)], dim=1))
        for block in self.blocks:
            x = block(x, text)
        up = F.interpolate(self.up(x), size=(h, w), mode="bilinear", align_corners=False)
        logits = self.fuse(torch.cat([up, half], dim=1))  # (B, 2, h, w)
        prob = logits.flatten(2).softmax(-1).view(b, 2, h, w)
        us = cell_centres(w, width / w, images)  # heatmap cell -> image pixels (OpenCV pixel centres)
        vs = cell_centres(h, height / h, images)
        points = torch.stack([(prob.sum(2) * us).sum(-1), (prob.sum(3) * vs).sum(-1)], dim=-1)  # (B, 2, 2)
        pooled_prob = F.adaptive_avg_pool2d(prob, x.shape[-2:]) * 4  # attention at the feature resolution
        pooled = torch.einsum("bkhw,bchw->bkc", pooled_prob, x).flatten(1)
        centre = points[:, 0].detach() if glimpse_at is None else glimpse_at
        look = self.glimpse(glimpse(images, centre))
        out = self.scalar_head(torch.cat([pooled, text, look], dim=1))
        return {
            "points": points,
            "logits": logits,
            "scalars": out[:, : -self.yaw_bins],
            "yaw": out[:, -self.yaw_bins :],
        }

    def yaw_from_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """Folded yaw (rad) of the most likely bin, refined by the circular mean of it and its two neighbours."""
        n = self.yaw_bins
        best = logits.argmax(-1)
        prob = logits.softmax(-1)
        angles = (torch.arange(n, device=logits.device) + 0.5) * (2 * math.pi / n)  # 2 * (yaw + pi / 2)
        idx = torch.stack([(best - 1) % n, best, (best + 1) % n], dim=-1)
        p, a = prob.gather(-1, idx), angles[idx]
        mean = torch.atan2((p * a.sin()).sum(-1), (p * a.cos()).sum(-1))
        return mean / 2 - math.pi / 2 + math.pi * (mean < 0)


GLIMPSE_PX = 32


def glimpse(images: torch.Tensor, centres_px: torch.Tensor, size: int = GLIMPSE_PX) -> torch.Tensor:
    """(B, 3 + 2, size, size): the size x size pixel patch of each image centred on its point (bilinear, zeros
    outside), with the patch's coordinate channels."""
    b, _, h, w = images.shape
    offsets = torch.arange(size, device=images.device, dtype=images.dtype) - (size - 1) / 2
    u = centres_px[:, 0, None] + offsets[None]  # (B, size)
    v = centres_px[:, 1, None] + offsets[None]
    gx = ((u + 0.5) / w * 2 - 1)[:, None, :].expand(b, size, size)
    gy = ((v + 0.5) / h * 2 - 1)[:, :, None].expand(b, size, size)
    patch = F.grid_sample(images * 2 - 1, torch.stack([gx, gy], dim=-1), align_corners=False)
    return torch.cat([patch, _coords(b, size, size, images.device)], dim=1)


def yaw_bin(yaw: torch.Tensor, bins: int) -> torch.Tensor:
    """Bin index of a folded yaw (rad, any value: taken modulo pi)."""
    frac = torch.remainder(yaw + math.pi / 2, math.pi) / math.pi
    return (frac * bins).long().clamp(0, bins - 1)


def cell_centres(cells: int, scale: float, like: torch.Tensor) -> torch.Tensor:
    """Image-pixel coordinates of the centres of `cells` heatmap cells, each `scale` pixels wide."""
    return (torch.arange(cells, device=like.device, dtype=like.dtype) + 0.5) * scale - 0.5


def heatmap_targets(points: torch.Tensor, image_hw: tuple[int, int], cells_hw: tuple[int, int], sigma_px: float = 2.0):
    """(B, K, 2) pixel points -> (B, K, h, w) normalized Gaussian targets at the heatmap's resolution."""
    us = cell_centres(cells_hw[1], image_hw[1] / cells_hw[1], points)
    vs = cell_centres(cells_hw[0], image_hw[0] / cells_hw[0], points)
    du = us[None, None, None, :] - points[..., 0, None, None]
    dv = vs[None, None, :, None] - points[..., 1, None, None]
    g = torch.exp(-(du**2 + dv**2) / (2 * sigma_px**2))
    return g / g.flatten(2).sum(-1)[..., None, None].clamp_min(1e-12)
