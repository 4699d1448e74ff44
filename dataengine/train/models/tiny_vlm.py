"""The tiny reference vision-language model: image patch tokens + byte tokens through a small prefix-LM transformer.

Image patches attend to each other; text tokens attend to every patch and causally to earlier text. The
language-model loss is next-byte prediction on the answer (so "where" stays a language skill). It trains on a
laptop CPU and shares its interface with the Qwen2.5-VL adapter: a chat encoder (used by the collator in data
workers) and a backbone returning hidden states, a mask and the LM loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from dataengine.train.models.blocks import Block
from dataengine.train.tokenizer import IGNORE_INDEX, ByteTokenizer


@dataclass
class BackboneOutput:
    hidden: torch.Tensor  # (B, T, D) hidden states the querying transformer reads
    mask: torch.Tensor  # (B, T) bool, True on real tokens
    lm_loss: torch.Tensor | None  # mean next-token loss over supervised answer tokens


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
        self.tokenizer = ByteTokenizer()
        self.truncated = 0

    def prepare_image(self, image: Image.Image) -> np.ndarray:
        return square_resize(image, self.image_size)

    def encode(
        self, images: list[np.ndarray], prompts: list[str], answers: list[str | None], *, for_generation: bool = False
    ) -> dict:
        """Right-padded byte sequences; generation works on right padding too (see `TinyVLM.generate`)."""
        rows = [self.tokenizer.encode_chat(p, a, self.max_text_len) for p, a in zip(prompts, answers, strict=True)]
        self.truncated += sum(r[2] for r in rows)
        length = max(len(ids) for ids, _, _ in rows)
        input_ids = torch.full((len(rows), length), self.tokenizer.pad_id, dtype=torch.long)
        labels = torch.full((len(rows), length), IGNORE_INDEX, dtype=torch.long)
        for i, (ids, lab, _) in enumerate(rows):
            input_ids[i, : len(ids)] = torch.tensor(ids)
            labels[i, : len(lab)] = torch.tensor(lab)
        pixels = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()  # uint8 (B, 3, H, W)
        return {
            "pixel_values": pixels,
            "input_ids": input_ids,
            "attention_mask": input_ids != self.tokenizer.pad_id,
            "labels": labels,
        }


@dataclass
class TinyVLMConfig:
    image_size: int = 64
    patch_size: int = 8
    dim: int = 128
    layers: int = 4
    heads: int = 4
    max_text_len: int = 256
    qformer_layer: int = -1  # which layer's hidden states the querying transformer reads


class TinyVLM(nn.Module):
    def __init__(self, cfg: TinyVLMConfig) -> None:
        super().__init__()
        if cfg.image_size % cfg.patch_size:
            raise ValueError(f"image_size {cfg.image_size} must be a multiple of patch_size {cfg.patch_size}")
        self.cfg = cfg
        self.hidden_size = cfg.dim
        self.tokenizer = ByteTokenizer()
        self.num_patches = (cfg.image_size // cfg.patch_size) ** 2
        self.patch_embed = nn.Conv2d(3, cfg.dim, cfg.patch_size, stride=cfg.patch_size)
        self.image_pos = nn.Parameter(torch.randn(self.num_patches, cfg.dim) * 0.02)
        self.token_embed = nn.Embedding(self.tokenizer.vocab_size, cfg.dim)
        self.text_pos = nn.Parameter(torch.randn(cfg.max_text_len + 64, cfg.dim) * 0.02)
        self.blocks = nn.ModuleList(Block(cfg.dim, cfg.heads) for _ in range(cfg.layers))
        self.norm = nn.LayerNorm(cfg.dim)
        self.lm_head = nn.Linear(cfg.dim, self.tokenizer.vocab_size, bias=False)
        self.lm_head.weight = self.token_embed.weight  # tied
        nn.init.normal_(self.token_embed.weight, std=0.02)

    def make_encoder(self) -> ByteChatEncoder:
        return ByteChatEncoder(self.cfg.image_size, self.cfg.max_text_len)

    def _embed(self, pixel_values: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
        pixels = pixel_values.float() / 127.5 - 1.0  # uint8 -> [-1, 1]
        patches = self.patch_embed(pixels).flatten(2).transpose(1, 2) + self.image_pos
        text = self.token_embed(input_ids) + self.text_pos[: input_ids.shape[1]]
        return torch.cat([patches, text], dim=1)

    def _mask(self, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, T, T) bool: queries attend to every patch and causally to real text tokens."""
        b, length = attention_mask.shape
        p, device = self.num_patches, attention_mask.device
        keys_valid = torch.cat([torch.ones(b, p, dtype=torch.bool, device=device), attention_mask.bool()], dim=1)
        t = p + length
        pos = torch.arange(t, device=device)
        causal = (pos[None, :] <= pos[:, None]) | (pos[None, :] < p)  # (T, T)
        return causal[None] & keys_valid[:, None, :]

    def _run(self, batch: dict) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(final normalized hidden states (B, T, D), per-layer hidden states)."""
        x = self._embed(batch["pixel_values"], batch["input_ids"])
        mask = self._mask(batch["attention_mask"])
        hiddens = []
        for block in self.blocks:
            x = block(x, mask=mask)
            hiddens.append(x)
        final = self.norm(x)
        hiddens[-1] = final
        return final, hiddens

    def forward(self, batch: dict, with_lm_loss: bool = True) -> BackboneOutput:
        final, hiddens = self._run(batch)
        text_mask = batch["attention_mask"].bool()
        token_mask = torch.cat([text_mask.new_ones(text_mask.shape[0], self.num_patches), text_mask], dim=1)
        lm_loss = None
        if with_lm_loss and "labels" in batch:
            logits = self.lm_head(final[:, self.num_patches :])
            lm_loss = F.cross_entropy(
                logits[:, :-1].reshape(-1, logits.shape[-1]).float(),
                batch["labels"][:, 1:].reshape(-1),
                ignore_index=IGNORE_INDEX,
            )
        return BackboneOutput(hiddens[self.cfg.qformer_layer], token_mask, lm_loss)

    @torch.no_grad()
    def generate(self, batch: dict, max_new_tokens: int = 64) -> list[str]:
        """Greedy decoding after each row's prompt (the batch is encoded with answers=None)."""
        input_ids = batch["input_ids"].clone()
        lengths = batch["attention_mask"].sum(dim=1).long()
        rows = torch.arange(len(lengths), device=input_ids.device)
        done = torch.zeros(len(lengths), dtype=torch.bool, device=input_ids.device)
        limit = self.text_pos.shape[0]
        for _ in range(max_new_tokens):
            if int(lengths.max()) >= limit:
                break
            if int(lengths.max()) >= input_ids.shape[1]:
                input_ids = F.pad(input_ids, (0, 1), value=self.tokenizer.pad_id)
            attention = torch.arange(input_ids.shape[1], device=input_ids.device)[None] < lengths[:, None]
            final, _ = self._run(
                {"pixel_values": batch["pixel_values"], "input_ids": input_ids, "attention_mask": attention}
            )
            next_ids = self.lm_head(final[rows, self.num_patches + lengths - 1]).argmax(dim=-1)
            active = ~done
            input_ids[rows[active], lengths[active]] = next_ids[active]
            lengths = lengths + active.long()
            done |= next_ids == self.tokenizer.eos_id
            if bool(done.all()):
                break
        prompt_lengths = batch["attention_mask"].sum(dim=1).tolist()
        return [
            self.tokenizer.decode(input_ids[i, prompt_lengths[i] : int(lengths[i])].tolist())
            for i in range(len(prompt_lengths))
        ]
