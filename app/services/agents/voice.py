"""Turn a chat answer (markdown) into what a phone agent can say: short plain sentences, no markup, bounded length."""

from __future__ import annotations

import re

WORDS_PER_MINUTE = 150  # a calm speaking rate for a phone agent
MAX_SENTENCE_WORDS = 22

_REPLACEMENTS = [
    (re.compile(r"```.*?```", re.S), " "),  # code blocks are never spoken
    (re.compile(r"!\[[^\]]*\]\([^)]*\)"), " "),  # images
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),  # links: keep the text
    (re.compile(r"https?://\S+"), "the link we send you"),
    (re.compile(r"`([^`]*)`"), r"\1"),
    (re.compile(r"^\s{0,3}#{1,6}\s*(.+?)\s*#*\s*$", re.M), r"\1."),  # headings become sentences
    (re.compile(r"^\s*>\s?", re.M), ""),  # quotes
    (re.compile(r"^\s*(?:[-*+•]|\d+[.)])\s+", re.M), ""),  # list markers
    (re.compile(r"^\s*\|?[\s:|-]+\|[\s:|-]*$", re.M), ""),  # table rules
    (re.compile(r"^\s*\|(.*)\|\s*$", re.M), lambda m: ", ".join(c.strip() for c in m.group(1).split("|")) + "."),
    (re.compile(r"\s*\|\s*"), ", "),
    (re.compile(r"(\*\*|__|\*|_|~~)(?=\S)(.+?)(?<=\S)\1"), r"\2"),  # emphasis
    (re.compile(r"[*_#~]+"), " "),
    (re.compile(r"\be\.g\.,?", re.I), "for example"),
    (re.compile(r"\bi\.e\.,?", re.I), "that is"),
    (re.compile(r"\betc\."), "and so on."),
    (re.compile(r"\s*&\s*"), " and "),
    (re.compile(r"(\d)\s*%"), r"\1 percent"),
    (re.compile(r"\s*/\s*(?=[A-Za-z])"), " or "),
    (re.compile(r"\s*\(([^)]*)\)"), r", \1,"),  # parentheses become a spoken aside
]


def _plain(text: str) -> str:
    for pattern, replacement in _REPLACEMENTS:
        text = pattern.sub(replacement, text)
    lines = []
    for line in text.splitlines():
        line = line.strip()
        if line:
            lines.append(line if line[-1] in ".!?:;," else line + ".")
    text = " ".join(lines)
    text = re.sub(r"\s*,\s*([,.!?;:])", r"\1", text)
    text = re.sub(r"([,.!?;:])(?=[^\s\d])", r"\1 ", text)
    return re.sub(r"\s+", " ", text).strip()


def _sentences(text: str) -> list[str]:
    out = []
    for sentence in re.split(r"(?<=[.!?])\s+(?=[A-Z0-9\"'])", text):
        words = sentence.split()
        while len(words) > MAX_SENTENCE_WORDS:
            # Cut a long sentence at a comma or semicolon near the middle, else at the limit.
            cut = next(
                (i for i in range(MAX_SENTENCE_WORDS - 1, 5, -1) if words[i - 1][-1] in ",;:"), MAX_SENTENCE_WORDS
            )
            head = " ".join(words[:cut]).rstrip(",;:") + "."
            out.append(head)
            words = words[cut:]
            if words:
                words[0] = words[0][:1].upper() + words[0][1:]
        if words:
            tail = " ".join(words).rstrip(",;:")
            out.append(tail if tail[-1] in ".!?" else tail + ".")
    return [s for s in out if re.search(r"[A-Za-z0-9]", s)]


def adapt_for_voice(answer: str, max_seconds: float = 30) -> str:
    """Short spoken sentences with no markdown, at most `max_seconds` long at WORDS_PER_MINUTE (whole sentences;
    at least the first one, shortened if it alone is too long)."""
    budget = max(1, int(max_seconds * WORDS_PER_MINUTE / 60))
    spoken: list[str] = []
    used = 0
    for sentence in _sentences(_plain(answer)):
        n = len(sentence.split())
        if used + n > budget:
            if not spoken:
                spoken.append(" ".join(sentence.split()[:budget]).rstrip(",;:.") + ".")
            break
        spoken.append(sentence)
        used += n
    return " ".join(spoken)


def spoken_seconds(text: str) -> float:
    return len(text.split()) * 60 / WORDS_PER_MINUTE
