"""The tiny reference vision-language model: image tokens + byte tokens through a small prefix-LM transformer.

Image tokens come from a linear patch embedding (`stem: patch`) or a small CNN (`stem: conv`, stride 8, which also
keeps a stride-4 feature map for pointing); a sample may hold several images (the policy's cameras, each with a
camera embedding). Image tokens attend to each other; text tokens attend to every image token and causally to
earlier text. The language-model loss is next-byte prediction on the answer (so "where" stays a language skill).

With `pointing`, the model also points (System 2's explicit spatial output, see `PointingHead`): a text-only pass
over the prompt gives one vector per role (0: the object the text is about / to pick, 1: where it goes); each
role modulates every image's stride-4 feature map into a heatmap whose soft-argmax is the role's point in that
image, with a visibility logit and the grasp yaw relative to the tool. The per-frame 2-D labels of the episodes
supervise it (`point_loss`).

It trains on a laptop CPU and shares its interface with the Qwen2.5-VL adapter: a chat encoder (used by the
collator in data workers) and a backbone returning hidden states, a mask and the LM loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from dataengine.train.models.blocks import Attention, Block
from dataengine.train.tokenizer import IGNORE_INDEX, TinyTokenizer


@dataclass
class BackboneOutput:
    hidden: torch.Tensor  # (B, T, D) hidden states the querying transformer reads
    mask: torch.Tensor  # (B, T) bool, True on real tokens
    lm_loss: torch.Tensor | None  # mean next-token loss over supervised answer tokens
    pointing: PointingOutput | None = None
    images: torch.Tensor | None = None  # (B, N, C, h, w) the conv stem's stride-4 maps (pointing at other texts)


def square_resize(image: Image.Image, size: int) -> np.ndarray:
    """RGB uint8 (size, size, 3); bilinear, aspect ratio not kept (as the upstream VLA frames)."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    if image.size != (size, size):
        image = image.resize((size, size), Image.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


class ByteChatEncoder:
    """Turns (images, prompts, answers) into tiny-VLM tensors. Picklable; runs in data-loader workers."""

    def __init__(self, image_size: int, max_text_len: int) -> None:
        self.image_size, self.max_text_len = image_size, max_text_len
        self.tokenizer = TinyTokenizer()
        self.truncated = 0

    def prepare_image(self, image: Image.Image) -> np.ndarray:
        return square_resize(image, self.image_size)

    def _ids(self, prompts: list[str], answers: list[str | None]) -> tuple[torch.Tensor, torch.Tensor]:
        rows = [self.tokenizer.encode_chat(p, a, self.max_text_len) for p, a in zip(prompts, answers, strict=True)]
        self.truncated += sum(r[2] for r in rows)
        length = max(len(ids) for ids, _, _ in rows)
        input_ids = torch.full((len(rows), length), self.tokenizer.pad_id, dtype=torch.long)
        labels = torch.full((len(rows), length), IGNORE_INDEX, dtype=torch.long)
        for i, (ids, lab, _) in enumerate(rows):
            input_ids[i, : len(ids)] = torch.tensor(ids)
            labels[i, : len(lab)] = torch.tensor(lab)
        return input_ids, labels

    def encode(
        self,
        images: list[np.ndarray],
        prompts: list[str],
        answers: list[str | None],
        *,
        for_generation: bool = False,
        queries: list[str] | None = None,
    ) -> dict:
        """Right-padded byte sequences; generation works on right padding too (see `TinyVLM.generate`). Images are
        (H, W, 3) or, for several cameras, (N, H, W, 3) uint8. `queries`: extra texts to point at (their own
        byte sequences, `query_ids`)."""
        input_ids, labels = self._ids(prompts, answers)
        stacked = np.stack(images)  # (B, H, W, 3) or (B, N, H, W, 3)
        pixels = torch.from_numpy(stacked).movedim(-1, -3).contiguous()  # uint8 (B, [N,] 3, H, W)
        batch = {
            "pixel_values": pixels,
            "input_ids": input_ids,
            "attention_mask": input_ids != self.tokenizer.pad_id,
            "labels": labels,
        }
        if queries is not None:
            query_ids, _ = self._ids(queries, [None] * len(queries))
            batch.update(query_ids=query_ids, query_mask=query_ids != self.tokenizer.pad_id)
        return batch


@dataclass
class TinyVLMConfig:
    image_size: int = 64
    patch_size: int = 8
    dim: int = 128
    layers: int = 4
    heads: int = 4
    max_text_len: int = 256
    qformer_layer: int = -1  # which layer's hidden states the querying transformer reads
    stem: str = "patch"  # "patch": linear patch embedding; "conv": a small CNN (stride 8, plus a stride-4 map)
    max_images: int = 1  # images (cameras) per sample
    pointing: bool = False  # the pointing head (needs the conv stem)
    point_channels: int = 64
    token_pool: int = 1  # average-pool the image tokens by this factor per side (fewer tokens, faster)


@dataclass
class PointingOutput:
    points: torch.Tensor  # (B, N, R, 2) soft-argmax in [-1, 1] per image and role
    logits: torch.Tensor  # (B, N, R, h, w) heatmap logits
    visible: torch.Tensor  # (B, N, R) visibility logits
    yaw: torch.Tensor  # (B, N, R, 2) (cos, sin) of twice the grasp yaw relative to the tool
    pooled: torch.Tensor  # (B, N, C) the text-modulated map, averaged

    def features(self) -> torch.Tensor:
        """(B, N * (R * 5 + C)) what the action expert reads: points, visibility, yaw and pooled features."""
        b = self.points.shape[0]
        per_role = torch.cat([self.points, torch.sigmoid(self.visible)[..., None], self.yaw], dim=-1).flatten(2)
        return torch.cat([per_role, self.pooled], dim=-1).reshape(b, -1)


ROLES = 2  # 0: the object the text is about (the pick object), 1: where it goes (the container)


class ConvStem(nn.Module):
    """(B, 3, H, W) in [-1, 1] + coordinate channels -> a stride-4 map for pointing and a stride-8 token grid."""

    def __init__(self, dim: int, channels: int) -> None:
        super().__init__()
        self.fine = nn.Sequential(
            nn.Conv2d(5, 32, 5, stride=2, padding=2), nn.GroupNorm(8, 32), nn.GELU(),
            nn.Conv2d(32, channels, 3, stride=2, padding=1), nn.GroupNorm(8, channels), nn.GELU(),
        )  # fmt: skip
        self.coarse = nn.Sequential(nn.Conv2d(channels, dim, 3, stride=2, padding=1), nn.GroupNorm(8, dim), nn.GELU())

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(stride-4 map (B, C, H/4, W/4), stride-8 token grid (B, D, H/8, W/8))."""
        b, _, h, w = pixels.shape
        ys = torch.linspace(-1, 1, h, device=pixels.device).view(1, 1, h, 1).expand(b, 1, h, w)
        xs = torch.linspace(-1, 1, w, device=pixels.device).view(1, 1, 1, w).expand(b, 1, h, w)
        fine = self.fine(torch.cat([pixels, xs, ys], dim=1))
        return fine, self.coarse(fine)


class PointingHead(nn.Module):
    """Role vectors (B, R, D) read from a text modulate each image's stride-4 map (B, N, C, h, w) once (FiLM);
    one heatmap channel per role gives its point (soft-argmax), and the modulated map, pooled, its visibility and
    the grasp yaw (see the module docstring)."""

    def __init__(self, dim: int, channels: int) -> None:
        super().__init__()
        self.role_queries = nn.Parameter(torch.randn(ROLES, dim) * 0.02)
        self.role_attn = Attention(dim, 4)
        self.role_norm = nn.LayerNorm(dim)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.norm1 = nn.GroupNorm(8, channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.norm2 = nn.GroupNorm(8, channels)
        self.film = nn.Linear(ROLES * dim, 4 * channels)
        self.heat = nn.Conv2d(channels, ROLES, 1)
        self.visible = nn.Linear(channels, ROLES)
        self.yaw = nn.Linear(channels, 2 * ROLES)

    def roles(self, text_hidden: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        """(B, R, D) role vectors read from a text-only pass."""
        queries = self.role_queries.unsqueeze(0).expand(text_hidden.shape[0], -1, -1)
        return self.role_norm(self.role_attn(queries, context=text_hidden, mask=text_mask[:, None, :]))

    def forward(self, fine: torch.Tensor, roles: torch.Tensor) -> PointingOutput:
        b, n, c, h, w = fine.shape
        g1, b1, g2, b2 = (x.view(b, 1, c, 1, 1) for x in self.film(roles.flatten(1)).chunk(4, dim=-1))
        x = self.norm1(self.conv1(fine.flatten(0, 1))).view(b, n, c, h, w)
        x = F.gelu(x * (1 + g1) + b1)
        x = self.norm2(self.conv2(x.flatten(0, 1))).view(b, n, c, h, w)
        x = F.gelu(x * (1 + g2) + b2)
        logits = self.heat(x.flatten(0, 1)).view(b, n, ROLES, h, w)
        prob = logits.flatten(3).softmax(-1).view(b, n, ROLES, h, w)
        gx = (torch.arange(w, device=fine.device, dtype=prob.dtype) + 0.5) / w * 2 - 1
        gy = (torch.arange(h, device=fine.device, dtype=prob.dtype) + 0.5) / h * 2 - 1
        points = torch.stack([(prob.sum(3) * gx).sum(-1), (prob.sum(4) * gy).sum(-1)], dim=-1)
        pooled = x.mean(dim=(3, 4))  # (B, N, C)
        visible = self.visible(pooled)  # (B, N, R)
        yaw = self.yaw(pooled).view(b, n, ROLES, 2)
        return PointingOutput(points, logits, visible, yaw, pooled)


class TinyVLM(nn.Module):
    def __init__(self, cfg: TinyVLMConfig) -> None:
        super().__init__()
        if cfg.image_size % cfg.patch_size:
            raise ValueError(f"image_size {cfg.image_size} must be a multiple of patch_size {cfg.patch_size}")
        if cfg.pointing and cfg.stem != "conv":
            raise ValueError("the pointing head needs tiny.stem: conv (it reads the stem's stride-4 feature map)")
        self.cfg = cfg
        self.hidden_size = cfg.dim
        self.tokenizer = TinyTokenizer()
        stride = (8 if cfg.stem == "conv" else cfg.patch_size) * cfg.token_pool
        if cfg.image_size % stride:
            raise ValueError(f"image_size {cfg.image_size} must be a multiple of {stride} for stem {cfg.stem!r}")
        self.tokens_per_image = (cfg.image_size // stride) ** 2
        self.num_patches = self.tokens_per_image * cfg.max_images
        if cfg.stem == "conv":
            self.stem = ConvStem(cfg.dim, cfg.point_channels)
        else:
            self.patch_embed = nn.Conv2d(3, cfg.dim, cfg.patch_size, stride=cfg.patch_size)
        self.image_pos = nn.Parameter(torch.randn(self.tokens_per_image, cfg.dim) * 0.02)
        self.camera_embed = nn.Parameter(torch.zeros(cfg.max_images, cfg.dim)) if cfg.max_images > 1 else None
        self.pointing = PointingHead(cfg.dim, cfg.point_channels) if cfg.pointing else None
        self.token_embed = nn.Embedding(self.tokenizer.vocab_size, cfg.dim)
        self.text_pos = nn.Parameter(torch.randn(cfg.max_text_len + 64, cfg.dim) * 0.02)
        self.blocks = nn.ModuleList(Block(cfg.dim, cfg.heads) for _ in range(cfg.layers))
        self.norm = nn.LayerNorm(cfg.dim)
        self.lm_head = nn.Linear(cfg.dim, self.tokenizer.vocab_size, bias=False)
        self.lm_head.weight = self.token_embed.weight  # tied
        nn.init.normal_(self.token_embed.weight, std=0.02)

    def make_encoder(self) -> ByteChatEncoder:
        return ByteChatEncoder(self.cfg.image_size, self.cfg.max_text_len)

    def _images(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(image tokens (B, N * tokens, D), stride-4 maps (B, N, C, h, w) or None) for (B, [N,] 3, H, W) uint8."""
        if pixel_values.dim() == 4:
            pixel_values = pixel_values.unsqueeze(1)
        b, n = pixel_values.shape[:2]
        if n > self.cfg.max_images:
            raise ValueError(f"{n} images per sample, the model takes at most tiny.max_images = {self.cfg.max_images}")
        pixels = pixel_values.flatten(0, 1).float() / 127.5 - 1.0  # uint8 -> [-1, 1]
        fine = None
        if self.cfg.stem == "conv":
            fine, grid = self.stem(pixels)
            fine = fine.view(b, n, *fine.shape[1:])
        else:
            grid = self.patch_embed(pixels)
        if self.cfg.token_pool > 1:
            grid = F.avg_pool2d(grid, self.cfg.token_pool)
        tokens = grid.flatten(2).transpose(1, 2)
        tokens = (tokens + self.image_pos).view(b, n, self.tokens_per_image, -1)
        if self.camera_embed is not None:
            tokens = tokens + self.camera_embed[:n, None, :]
        return tokens.reshape(b, n * self.tokens_per_image, -1), fine

    def _embed(self, pixel_values: torch.Tensor, input_ids: torch.Tensor) -> tuple[torch.Tensor, int, torch.Tensor]:
        """(embedded sequence, number of image tokens, stride-4 maps or None)."""
        patches, fine = self._images(pixel_values)
        text = self.token_embed(input_ids) + self.text_pos[: input_ids.shape[1]]
        return torch.cat([patches, text], dim=1), patches.shape[1], fine

    def _mask(self, attention_mask: torch.Tensor, p: int) -> torch.Tensor:
        """(B, T, T) bool: queries attend to every image token and causally to real text tokens."""
        b, length = attention_mask.shape
        device = attention_mask.device
        keys_valid = torch.cat([torch.ones(b, p, dtype=torch.bool, device=device), attention_mask.bool()], dim=1)
        t = p + length
        pos = torch.arange(t, device=device)
        causal = (pos[None, :] <= pos[:, None]) | (pos[None, :] < p)  # (T, T)
        return causal[None] & keys_valid[:, None, :]

    def _run(self, batch: dict) -> tuple[torch.Tensor, list[torch.Tensor], int, torch.Tensor | None]:
        """(final normalized hidden states (B, T, D), per-layer hidden states, image tokens, stride-4 maps)."""
        x, p, fine = self._embed(batch["pixel_values"], batch["input_ids"])
        mask = self._mask(batch["attention_mask"], p)
        hiddens = []
        for block in self.blocks:
            x = block(x, mask=mask)
            hiddens.append(x)
        final = self.norm(x)
        hiddens[-1] = final
        return final, hiddens, p, fine

    def text_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Final hidden states of a text-only pass (no image tokens), causal over the real tokens."""
        x = self.token_embed(input_ids) + self.text_pos[: input_ids.shape[1]]
        mask = self._mask(attention_mask, 0)
        for block in self.blocks:
            x = block(x, mask=mask)
        return self.norm(x)

    def point(self, fine: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> PointingOutput:
        """Where the roles of a text are in each image (`fine`: the stem's stride-4 maps)."""
        if self.pointing is None:
            raise ValueError("this model has no pointing head (tiny.pointing: false)")
        roles = self.pointing.roles(self.text_states(input_ids, attention_mask), attention_mask.bool())
        return self.pointing(fine, roles)

    def forward(self, batch: dict, with_lm_loss: bool = True) -> BackboneOutput:
        final, hiddens, p, fine = self._run(batch)
        text_mask = batch["attention_mask"].bool()
        token_mask = torch.cat([text_mask.new_ones(text_mask.shape[0], p), text_mask], dim=1)
        lm_loss = None
        if with_lm_loss and "labels" in batch:
            logits = self.lm_head(final[:, p:])
            lm_loss = F.cross_entropy(
                logits[:, :-1].reshape(-1, logits.shape[-1]).float(),
                batch["labels"][:, 1:].reshape(-1),
                ignore_index=IGNORE_INDEX,
            )
        pointing = None
        if self.pointing is not None and not with_lm_loss:  # action samples: where the instruction's roles are
            pointing = self.point(fine, batch["input_ids"], batch["attention_mask"])
        return BackboneOutput(hiddens[self.cfg.qformer_layer], token_mask, lm_loss, pointing, fine)

    @torch.no_grad()
    def generate(self, batch: dict, max_new_tokens: int = 64, tasks: list[str] | None = None) -> list[str]:
        """Greedy decoding after each row's prompt (the batch is encoded with answers=None); with `tasks` (one per
        row), constrained to each task's answer grammar (`dataengine/train/constrained.py`)."""
        from dataengine.train.constrained import constrain_logits

        input_ids = batch["input_ids"].clone()
        lengths = batch["attention_mask"].sum(dim=1).long()
        rows = torch.arange(len(lengths), device=input_ids.device)
        done = torch.zeros(len(lengths), dtype=torch.bool, device=input_ids.device)
        limit = self.text_pos.shape[0]
        prompt_lengths = batch["attention_mask"].sum(dim=1).tolist()
        for step in range(max_new_tokens):
            if int(lengths.max()) >= limit:
                break
            if int(lengths.max()) >= input_ids.shape[1]:
                input_ids = F.pad(input_ids, (0, 1), value=self.tokenizer.pad_id)
            attention = torch.arange(input_ids.shape[1], device=input_ids.device)[None] < lengths[:, None]
            final, _, p, _ = self._run(
                {"pixel_values": batch["pixel_values"], "input_ids": input_ids, "attention_mask": attention}
            )
            logits = self.lm_head(final[rows, p + lengths - 1])
            if tasks is not None:
                generated = [input_ids[i, prompt_lengths[i] : int(lengths[i])].tolist() for i in range(len(tasks))]
                logits = constrain_logits(logits, tasks, generated, max_new_tokens - step)
            next_ids = logits.argmax(dim=-1)
            active = ~done
            input_ids[rows[active], lengths[active]] = next_ids[active]
            lengths = lengths + active.long()
            done |= next_ids == self.tokenizer.eos_id
            if bool(done.all()):
                break
        return [
            self.tokenizer.decode(input_ids[i, prompt_lengths[i] : int(lengths[i])].tolist())
            for i in range(len(prompt_lengths))
        ]
