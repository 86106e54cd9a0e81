"""Offline training: supervised teachers/students and distillation (LIX, PFS, MKAT, KD, DKD, CWD, AT)."""
