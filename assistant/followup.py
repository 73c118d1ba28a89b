"""Follow-up questions ("and what about North Carolina?", "那威斯康星州呢？") resolved against earlier turns.

A question that reads as a follow-up (it opens like one, leans on a pronoun, or is too short to stand alone) is
searched together with the previous question of the conversation; one that stands alone is searched as it is.
"""

from __future__ import annotations

import re

_EN_OPENERS = re.compile(r"^\s*(and|but|also|what about|how about|and what|and how|same for|what of|then)\b", re.I)
_EN_PRONOUNS = re.compile(r"\b(it|its|they|them|their|this|that|these|those|the same|there|he|she|his|her)\b", re.I)
_ZH_OPENERS = re.compile(r"^\s*(那么|那|还有|而|并且|另外|同样|那个|那些)")
_ZH_MARKERS = re.compile(r"(呢[?？]?\s*$|它|其|该|此|这个|这些|他们|她们)")
_WORD = re.compile(r"[A-Za-z0-9]+|[\u4e00-\u9fff]")


def previous_questions(history) -> list[str]:
    """The user's earlier questions, oldest first, from Gradio-style messages, (question, answer) pairs or strings."""
    questions = []
    for turn in history or []:
        if isinstance(turn, str):
            questions.append(turn)
        elif isinstance(turn, dict):
            if turn.get("role") == "user" and isinstance(turn.get("content"), str):
                questions.append(turn["content"])
        elif isinstance(turn, (list, tuple)) and turn and isinstance(turn[0], str):
            questions.append(turn[0])
    return [q.strip() for q in questions if q and q.strip()]


def is_follow_up(question: str) -> bool:
    words = _WORD.findall(question)
    cjk = sum(1 for w in words if not w.isascii())
    if cjk > len(words) / 2:
        return bool(_ZH_OPENERS.search(question) or _ZH_MARKERS.search(question)) or cjk <= 6
    return bool(_EN_OPENERS.search(question)) or (len(words) <= 6 and bool(_EN_PRONOUNS.search(question))) or len(words) <= 3


def resolve(question: str, history) -> str:
    """The question to search: with the previous question prepended when this one is a follow-up."""
    earlier = previous_questions(history)
    if not earlier or not is_follow_up(question):
        return question
    return f"{earlier[-1]} {question}"
