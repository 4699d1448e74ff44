"""The tiny reference model's tokenizer: UTF-8 bytes, four special tokens and one token per integer 0..9999.

Coordinates are integers in every answer style, and a byte-level model has to spell each one digit by digit: after
a few minutes on a CPU it learns the brackets but loops on digits ("[1,1,1,1,1,..."), and no answer parses. One
token per number (as PaliGemma's location tokens or Qwen's single digits with short numbers) makes an answer a
handful of tokens: "[12,40,88,97]" is 9. A digit run is one number token when it has at most 4 digits and no
leading zero (so "0.05" keeps its "05" as bytes and every string decodes back to itself). Nothing to download.
"""

from __future__ import annotations

import re

PAD, BOS, SEP, EOS = 256, 257, 258, 259
NUMBER_BASE = 260
MAX_NUMBER = 9999
VOCAB_SIZE = NUMBER_BASE + MAX_NUMBER + 1
LEGACY_BYTE_VOCAB = 260  # checkpoints of the byte-only tokenizer (before number tokens)
IGNORE_INDEX = -100
_DIGITS = re.compile(rb"[0-9]+")


def encode_text(text: str) -> list[int]:
    """Token ids of `text`: bytes, with short digit runs (no leading zero) as number tokens."""
    data, ids, last = text.encode("utf-8"), [], 0
    for m in _DIGITS.finditer(data):
        run = m.group()
        ids += data[last : m.start()]
        if len(run) <= 4 and (run == b"0" or run[:1] != b"0"):
            ids.append(NUMBER_BASE + int(run))
        else:
            ids += run
        last = m.end()
    ids += data[last:]
    return ids


class TinyTokenizer:
    """`BOS prompt SEP answer EOS`: the answer (and its EOS) is what the language-model loss supervises."""

    vocab_size = VOCAB_SIZE
    pad_id, bos_id, sep_id, eos_id = PAD, BOS, SEP, EOS

    def encode_chat(self, prompt: str, answer: str | None, max_len: int) -> tuple[list[int], list[int], bool]:
        """(input_ids, labels, truncated). Labels are IGNORE_INDEX outside the answer. With `answer=None` the
        sequence ends after SEP (an action prompt, or a generation prompt). Long prompts are cut first."""
        prompt_ids = encode_text(prompt)
        answer_ids = [] if answer is None else [*encode_text(answer), EOS]
        room = max_len - 2 - len(answer_ids)
        truncated = False
        if room < 8:  # keep a little of the prompt; cut the answer instead
            answer_ids = answer_ids[: max(0, max_len - 2 - 8)]
            room = max_len - 2 - len(answer_ids)
            truncated = True
        if len(prompt_ids) > room:
            prompt_ids, truncated = prompt_ids[:room], True
        ids = [BOS, *prompt_ids, SEP, *answer_ids]
        labels = [IGNORE_INDEX] * (len(prompt_ids) + 2) + answer_ids
        return ids, labels, truncated

    def decode(self, ids: list[int]) -> str:
        """Text up to the first EOS; special tokens are skipped; invalid UTF-8 is replaced."""
        out = bytearray()
        for i in ids:
            if i == EOS:
                break
            if 0 <= i < 256:
                out.append(i)
            elif NUMBER_BASE <= i < VOCAB_SIZE:
                out += str(i - NUMBER_BASE).encode()
        return out.decode("utf-8", errors="replace")
