"""A byte-level tokenizer for the tiny reference model: UTF-8 bytes plus five special tokens. Nothing to download."""

from __future__ import annotations

PAD, BOS, SEP, EOS = 256, 257, 258, 259
VOCAB_SIZE = 260
IGNORE_INDEX = -100


class ByteTokenizer:
    """`BOS prompt SEP answer EOS`: the answer (and its EOS) is what the language-model loss supervises."""

    vocab_size = VOCAB_SIZE
    pad_id, bos_id, sep_id, eos_id = PAD, BOS, SEP, EOS

    def encode_chat(self, prompt: str, answer: str | None, max_len: int) -> tuple[list[int], list[int], bool]:
        """(input_ids, labels, truncated). Labels are IGNORE_INDEX outside the answer. With `answer=None` the
        sequence ends after SEP (an action prompt, or a generation prompt). Long prompts are cut first."""
        prompt_ids = list(prompt.encode("utf-8"))
        answer_ids = [] if answer is None else [*answer.encode("utf-8"), EOS]
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
        """Bytes up to the first EOS; special tokens are skipped; invalid UTF-8 is replaced."""
        out = bytearray()
        for i in ids:
            if i == EOS:
                break
            if 0 <= i < 256:
                out.append(i)
        return out.decode("utf-8", errors="replace")
