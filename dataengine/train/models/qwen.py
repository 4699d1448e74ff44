"""Qwen2.5-VL as the backbone (System 2), on `transformers`, with the same interface as the tiny model.

Real runs load local weights (`model.qwen.weights`: a folder holding `config.json`, the safetensors, the tokenizer
files and `preprocessor_config.json`, e.g. a downloaded `Qwen/Qwen2.5-VL-3B-Instruct` or a Stage-1 checkpoint);
nothing is downloaded (`local_files_only`). Offline tests build a small random model from `random_config` and a
byte-level BPE tokenizer with Qwen's special tokens, so the same encoder, collator and training step run without
any file.

The chat follows Qwen's template: system, user (`<|vision_start|><|image_pad|>*N<|vision_end|>` + prompt), assistant
answer + `<|im_end|>`. Only the answer tokens are supervised. `<|image_pad|>` is expanded to the number of merged
patches the image processor reports, exactly as `Qwen2_5_VLProcessor` does.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch import nn

from dataengine.errors import InputError, require
from dataengine.geometry import smart_resize
from dataengine.train.models.tiny_vlm import BackboneOutput
from dataengine.train.tokenizer import IGNORE_INDEX

SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
IMAGE_PAD = "<|image_pad|>"


def byte_level_tokenizer():
    """A byte-level BPE tokenizer (256 byte tokens, no merges) with Qwen's special tokens; built offline."""
    tokenizers = require("tokenizers", "train", "The offline Qwen2.5-VL tokenizer")
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(tokenizers.pre_tokenizers.ByteLevel.alphabet())
    tok = tokenizers.Tokenizer(tokenizers.models.BPE(vocab={c: i for i, c in enumerate(alphabet)}, merges=[]))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = tokenizers.decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<|endoftext|>", eos_token="<|im_end|>")
    fast.add_special_tokens({"additional_special_tokens": list(SPECIAL_TOKENS[1:])})
    return fast


class QwenChatEncoder:
    """(images, prompts, answers) -> Qwen2.5-VL inputs: input_ids, attention_mask, labels, pixel_values,
    image_grid_thw. Right padding for training, left padding for generation."""

    def __init__(self, tokenizer, image_processor, system_prompt: str, min_pixels: int, max_pixels: int) -> None:
        self.tokenizer, self.image_processor, self.system_prompt = tokenizer, image_processor, system_prompt
        self.min_pixels, self.max_pixels = min_pixels, max_pixels
        # the pixel budget lives on the processor (transformers 5: `size`; 4.x also reads min/max_pixels)
        image_processor.size = {"shortest_edge": min_pixels, "longest_edge": max_pixels}
        for name, value in (("min_pixels", min_pixels), ("max_pixels", max_pixels)):
            if hasattr(image_processor, name):
                setattr(image_processor, name, value)
        self.merge = int(image_processor.merge_size)
        self.factor = int(image_processor.patch_size) * self.merge
        missing = [
            t for t in SPECIAL_TOKENS[1:6] if tokenizer.convert_tokens_to_ids(t) in (None, tokenizer.unk_token_id)
        ]
        if missing:
            raise InputError(f"the tokenizer lacks Qwen2.5-VL special tokens {missing}")

    def prepare_image(self, image: Image.Image) -> np.ndarray:
        """RGB uint8 at the smart-resized size the processor would use (so answer pixels match what it sees)."""
        if image.mode != "RGB":
            image = image.convert("RGB")
        h, w = smart_resize(image.height, image.width, self.factor, self.min_pixels, self.max_pixels)
        if (w, h) != image.size:
            image = image.resize((w, h), Image.BICUBIC)
        return np.asarray(image, dtype=np.uint8)

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def encode(
        self, images: list[np.ndarray], prompts: list[str], answers: list[str | None], *, for_generation: bool = False
    ) -> dict:
        vision = self.image_processor(images=images, return_tensors="pt")
        grid = vision["image_grid_thw"]
        rows = []
        for i, (prompt, answer) in enumerate(zip(prompts, answers, strict=True)):
            n_image = int(grid[i].prod()) // (self.merge**2)
            head = (
                f"<|im_start|>system\n{self.system_prompt}<|im_end|>\n<|im_start|>user\n"
                f"<|vision_start|>{IMAGE_PAD * n_image}<|vision_end|>{prompt}<|im_end|>\n<|im_start|>assistant\n"
            )
            ids = self._ids(head)
            labels = [IGNORE_INDEX] * len(ids)
            if answer is not None:
                answer_ids = self._ids(answer + "<|im_end|>")
                ids, labels = ids + answer_ids, labels + answer_ids
            rows.append((ids, labels))
        length = max(len(ids) for ids, _ in rows)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.full((len(rows), length), pad, dtype=torch.long)
        label_t = torch.full((len(rows), length), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(rows), length), dtype=torch.long)
        for i, (ids, labels) in enumerate(rows):
            sl = slice(length - len(ids), length) if for_generation else slice(0, len(ids))
            input_ids[i, sl], label_t[i, sl], mask[i, sl] = torch.tensor(ids), torch.tensor(labels), 1
        return {
            "input_ids": input_ids,
            "attention_mask": mask,
            "labels": label_t,
            "pixel_values": vision["pixel_values"],
            "image_grid_thw": grid,
        }


class QwenBackbone(nn.Module):
    """Wraps `Qwen2_5_VLForConditionalGeneration`: hidden states of one layer, the LM loss, greedy generation."""

    def __init__(self, model: nn.Module, tokenizer, qformer_layer: int = -1) -> None:
        super().__init__()
        self.model, self.tokenizer, self.qformer_layer = model, tokenizer, qformer_layer
        self.hidden_size = int(model.config.text_config.hidden_size)

    def _inputs(self, batch: dict) -> dict:
        keys = ("input_ids", "attention_mask", "pixel_values", "image_grid_thw")
        inputs = {k: batch[k] for k in keys}
        inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        return inputs

    def forward(self, batch: dict, with_lm_loss: bool = True) -> BackboneOutput:
        labels = batch.get("labels") if with_lm_loss else None
        out = self.model(**self._inputs(batch), labels=labels, output_hidden_states=True, use_cache=False)
        return BackboneOutput(out.hidden_states[self.qformer_layer], batch["attention_mask"].bool(), out.loss)

    @torch.no_grad()
    def generate(self, batch: dict, max_new_tokens: int = 48) -> list[str]:
        """Greedy answers; the batch must be left-padded (`Collator(..., for_generation=True)`)."""
        inputs = self._inputs(batch)
        out = self.model.generate(
            **inputs,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            eos_token_id=self.tokenizer.convert_tokens_to_ids("<|im_end|>"),
            pad_token_id=self.tokenizer.pad_token_id,
        )
        return self.tokenizer.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)


def _random_model(config: dict, tokenizer):
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    ids = {
        name: tokenizer.convert_tokens_to_ids(tok)
        for name, tok in (
            ("image_token_id", "<|image_pad|>"),
            ("video_token_id", "<|video_pad|>"),
            ("vision_start_token_id", "<|vision_start|>"),
            ("vision_end_token_id", "<|vision_end|>"),
        )
    }
    text = {"vocab_size": len(tokenizer), **config.get("text_config", {})}
    text.setdefault("bos_token_id", tokenizer.pad_token_id)
    text.setdefault("eos_token_id", tokenizer.convert_tokens_to_ids("<|im_end|>"))
    text.setdefault("pad_token_id", tokenizer.pad_token_id)
    cfg = Qwen2_5_VLConfig(text_config=text, vision_config=config.get("vision_config", {}), **ids)
    return Qwen2_5_VLForConditionalGeneration(cfg)


def load_qwen_backbone(cfg, qformer_layer: int = -1) -> tuple[QwenBackbone, QwenChatEncoder]:
    """Backbone and encoder from local weights (`cfg.weights`) or a random config (`cfg.random_config`)."""
    require("transformers", "train", "The Qwen2.5-VL backbone")
    try:  # transformers >= 5: the PIL processor (no torchvision needed)
        from transformers import Qwen2VLImageProcessorPil as ImageProcessor
    except ImportError:  # transformers 4.x: the slow processor is the PIL one
        from transformers import Qwen2VLImageProcessor as ImageProcessor

    if cfg.weights is not None:
        from pathlib import Path

        from transformers import AutoTokenizer, Qwen2_5_VLForConditionalGeneration

        path = Path(cfg.weights).expanduser()
        if not (path / "config.json").exists():
            raise InputError(
                f"qwen.weights={path} holds no config.json: point it at a local Qwen2.5-VL folder "
                "(config, safetensors, tokenizer and preprocessor files); nothing is downloaded"
            )
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        image_processor = ImageProcessor.from_pretrained(path, local_files_only=True)
        extra = {"attn_implementation": cfg.attn_implementation} if cfg.attn_implementation else {}
        model = Qwen2_5_VLForConditionalGeneration.from_pretrained(
            path, local_files_only=True, dtype=getattr(torch, cfg.dtype), **extra
        )
    else:
        tokenizer = byte_level_tokenizer()
        vision = cfg.random_config.get("vision_config", {})
        image_processor = ImageProcessor(
            patch_size=vision.get("patch_size", 14),
            merge_size=vision.get("spatial_merge_size", 2),
            temporal_patch_size=vision.get("temporal_patch_size", 2),
        )
        model = _random_model(cfg.random_config, tokenizer)
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.config.use_cache = False
    encoder = QwenChatEncoder(tokenizer, image_processor, cfg.system_prompt, cfg.min_pixels, cfg.max_pixels)
    return QwenBackbone(model, tokenizer, qformer_layer), encoder
