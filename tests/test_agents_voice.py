"""adapt_for_voice: what the phone agent says is plain, short sentences within the time allowed."""

from __future__ import annotations

from app.services.agents.voice import WORDS_PER_MINUTE, adapt_for_voice, spoken_seconds

ANSWER = """### Verify the caller

**HIPAA & Patient Privacy**: ask for *two identifiers* (e.g. name and date of birth). See [the HHS guide](https://hhs.gov/hipaa) or https://example.com/x.

1. Never read the date of birth out; ask the caller to state it, and if they cannot verify, offer to call back on the number in the chart, which is always the safest option.
2. Voicemails: practice name / call-back number only, 100% of the time.

| Who | May hear |
|---|---|
| Spouse | With consent |

```python
print("never spoken")
```
"""


def test_markup_links_and_code_are_gone():
    spoken = adapt_for_voice(ANSWER, max_seconds=120)
    for mark in ("#", "*", "[", "](", "|", "```", "http", "print("):
        assert mark not in spoken, mark
    assert spoken.startswith("Verify the caller. HIPAA and Patient Privacy: ask for two identifiers, for example name")
    assert "See the HHS guide or the link we send you." in spoken
    assert "100 percent" in spoken and "practice name or call-back number" in spoken
    assert "Spouse, With consent." in spoken


def test_sentences_are_short():
    spoken = adapt_for_voice(ANSWER, max_seconds=120)
    sentences = [s for s in spoken.replace("?", ".").split(". ") if s]
    assert all(len(s.split()) <= 22 for s in sentences), sentences


def test_the_length_fits_the_time_at_the_speaking_rate():
    long_answer = " ".join(f"Sentence number {i} explains one more detail to the caller." for i in range(60))
    for seconds in (5, 15, 30):
        spoken = adapt_for_voice(long_answer, max_seconds=seconds)
        assert spoken_seconds(spoken) <= seconds
        assert len(spoken.split()) > seconds * WORDS_PER_MINUTE / 60 - 12  # it uses the time it has
        assert spoken.endswith(".")


def test_a_single_long_sentence_is_cut_to_fit():
    spoken = adapt_for_voice("word " * 300, max_seconds=4)
    assert len(spoken.split()) <= 10 and spoken.endswith(".")
