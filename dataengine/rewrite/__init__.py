"""Instruction rewriting: one interface, an offline default and an OpenAI-compatible rewriter."""
