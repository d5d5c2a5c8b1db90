"""What the words feel: valence (VADER, loaded lazily once), stated feelings and sarcasm cues.

``words_emotion(text)`` gives an emotion label from the seven the voice model uses, a
confidence and a valence in [-1, 1]. Explicit feeling words win ("I feel so humiliated" is
sad); reliable sarcasm cues ("oh great, another Monday", "I just love sitting in traffic")
turn literal praise into annoyance; otherwise VADER's compound score decides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

FEELINGS: dict[str, tuple[str, ...]] = {
    "sad": ("sad", "humiliated", "ashamed", "embarrassed", "lonely", "empty", "hopeless", "down",
            "miserable", "heartbroken", "depressed", "low", "numb", "nothing", "worthless", "hurt",
            "devastated", "gutted", "grieving", "guilty", "disappointed"),
    "angry": ("angry", "furious", "annoyed", "irritated", "frustrated", "livid", "mad", "fed up",
              "pissed off", "resentful"),
    "fearful": ("scared", "afraid", "anxious", "worried", "nervous", "terrified", "panicky",
                "stressed", "overwhelmed", "uneasy", "on edge"),
    "disgust": ("disgusted", "sick of", "grossed out", "revolted", "repulsed"),
    "happy": ("happy", "glad", "great", "good", "excited", "proud", "relieved", "thrilled",
              "grateful", "content", "joyful", "delighted", "calm", "peaceful"),
    "surprised": ("surprised", "shocked", "amazed", "stunned", "astonished"),
}
_FEEL = re.compile(r"\b(?:i|i'm|im|i am)\s+(?:feel|felt|feeling|am|'m|was|get|got)?\s*"
                   r"(?:so |really |very |a bit |kind of |pretty |quite |just |totally )*"
                   r"(?P<word>fed up|pissed off|sick of|grossed out|on edge|[a-z]+)", re.I)
_NEGATED = re.compile(r"\b(?:not|never|don't|do not|didn't)\s+(?:feel\s+|feeling\s+)?"
                      r"(?:so |very |really )?(?P<word>[a-z]+)", re.I)
SARCASM = re.compile(
    r"^\s*(?:oh|ah|wow)?,?\s*(?:great|fantastic|wonderful|perfect|brilliant|lovely|just what i needed)"
    r"[,.!]*\s+(?:another|more|now|just|exactly|what|the|my)\b"
    r"|\b(?:yeah|sure),?\s+(?:i\s+)?(?:just\s+|really\s+|totally\s+)?love\s+(?:it when|sitting|waiting|being|"
    r"getting|having|when|how)\b"
    r"|\bthanks a lot\b|\bjust what i needed\b|\bcould (?:this|it|today) get any better\b", re.I)


# News whose feeling VADER misses (no sentiment word in it).
GOOD_NEWS = re.compile(r"\b(got the (job|place|flat|house)|got (promoted|engaged|married|in)|"
                       r"passed (my|the)|we won|i won|had (a|the) baby|it'?s a (boy|girl))\b", re.I)
BAD_NEWS = re.compile(r"\b(lost my|got fired|was fired|laid off|broke up|dumped me|"
                      r"(died|passed away))\b", re.I)


@dataclass(frozen=True)
class WordsEmotion:
    label: str
    confidence: float
    valence: float
    why: str
    """'feeling', 'sarcasm', 'valence' or 'none'."""


@lru_cache(maxsize=1)
def _vader():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def valence(text: str) -> float:
    """VADER compound score in [-1, 1] (negation, intensifiers, 'but' handled)."""
    return float(_vader().polarity_scores(text or "")["compound"]) if (text or "").strip() else 0.0


def _feeling(word: str) -> str | None:
    word = word.lower()
    for label, words in FEELINGS.items():
        if word in words:
            return label
    return None


def words_emotion(text: str) -> WordsEmotion:
    """The emotion the words carry, from stated feelings, sarcasm cues or valence."""
    text = text or ""
    val = valence(text)
    if SARCASM.search(text):
        return WordsEmotion("angry", 0.6, min(val, -0.3), "sarcasm")
    negated = {m.group("word").lower() for m in _NEGATED.finditer(text)}
    for m in _FEEL.finditer(text):
        label = _feeling(m.group("word"))
        if label and m.group("word").lower() not in negated:
            if label == "happy" and val < -0.3:
                continue
            return WordsEmotion(label, 0.7, val, "feeling")
    if negated and any(_feeling(w) == "happy" for w in negated):
        return WordsEmotion("sad", 0.55, min(val, -0.2), "feeling")
    if -0.4 < val < 0.4 and GOOD_NEWS.search(text) and not BAD_NEWS.search(text):
        return WordsEmotion("happy", 0.6, max(val, 0.4), "news")
    if -0.4 < val < 0.4 and BAD_NEWS.search(text):
        return WordsEmotion("sad", 0.6, min(val, -0.4), "news")
    if val >= 0.4:
        return WordsEmotion("happy", 0.5 + val / 4, val, "valence")
    if val <= -0.4:
        return WordsEmotion("sad", 0.5 + abs(val) / 4, val, "valence")
    return WordsEmotion("neutral", 0.3, val, "none")
