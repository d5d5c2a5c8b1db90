"""Scripted multi-turn conversations: strategy, reference to what was said, no repeats, no cuts."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from conversations import CONVERSATIONS, run

from assistant.responder import NO_REPEAT_WINDOW


def _replies(name):
    return run(CONVERSATIONS[name])


def test_no_reply_repeats_within_the_window_and_no_cut_phrases():
    for name in CONVERSATIONS:
        texts = [r.text for _, r in _replies(name)]
        for i, t in enumerate(texts):
            assert t not in texts[max(0, i - NO_REPEAT_WINDOW + 1):i], (name, t)
            for cut in ("which.", " the.", " a.", " my.", " your.", " to."):
                assert cut not in t, (name, t)


def test_bad_day_is_met_with_care_not_cheer():
    out = _replies("bad day")
    assert out[1][1].strategy == "validate_sadness"
    assert out[3][1].strategy == "validate_sadness"  # "I feel so humiliated" is a feeling
    for _, r in out[1:5]:
        assert "great" not in r.text.lower() and "wonderful" not in r.text.lower()


def test_grief_gets_sympathy():
    out = _replies("grief")
    assert out[0][1].strategy == "validate_sadness"


def test_good_news_is_shared():
    out = _replies("good news")
    assert out[1][1].strategy == "share_joy"
    assert out[-1][1].strategy == "farewell"


def test_question_gets_its_topic():
    out = _replies("a question")
    assert "sleep" in out[0][1].text.lower()
    assert out[2][1].strategy == "small_talk"
    assert "breath" in out[3][1].text.lower()


def test_small_talk_returns_to_what_was_mentioned():
    out = _replies("small talk")
    assert any("your dog" in r.text.lower() for _, r in out[4:6])


def test_sarcasm_is_not_read_literally():
    out = _replies("sarcasm")
    for _, r in out[:2]:
        assert r.strategy == "deescalate_anger"
        assert "sounds good" not in r.text.lower() and "positive" not in r.text.lower()


def test_repeated_i_dont_know_varies():
    texts = [r.text for _, r in _replies("repeated I don't know")]
    assert len(set(texts)) >= 5


def test_risk_disclosure_mid_conversation_stays_with_help():
    out = _replies("risk disclosure mid-conversation")
    strategies = [r.strategy for _, r in out]
    assert strategies[2] == "safety"
    assert strategies[3:5] == ["safety_followup", "safety_followup"]
    assert strategies[5] == "farewell"  # the goodbye ends the session and still points to help
    assert "crisis" in out[5][1].text.lower() or "emergency" in out[5][1].text.lower()


def test_transcripts_in_docs_are_current():
    from conversations import markdown

    doc = Path(__file__).resolve().parent.parent / "docs" / "conversations.md"
    assert doc.read_text() == markdown()
