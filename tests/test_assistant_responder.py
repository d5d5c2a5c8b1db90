"""The reply policy: every emotion x intent answers, no repeats, safety first, mixed signals, change."""

from __future__ import annotations

import itertools

import pytest

from assistant.responder import (
    EMOTIONS,
    NO_REPEAT_WINDOW,
    PHRASES,
    STRATEGY_BY_EMOTION,
    Responder,
    detect_intents,
    key_phrase,
    text_sentiment,
)

INTENT_TEXTS = {
    "greeting": "hello there",
    "farewell": "okay goodbye",
    "thanks": "thank you so much",
    "question": "what should I do now?",
    "help": "can you help me with this",
    "statement": "the bus was late this morning",
}


@pytest.mark.parametrize("intent,text", INTENT_TEXTS.items())
def test_intents_are_recognised(intent, text):
    assert intent in detect_intents(text)


@pytest.mark.parametrize("emotion,intent", list(itertools.product(EMOTIONS, INTENT_TEXTS)))
def test_every_emotion_and_intent_gets_a_reply(emotion, intent):
    r = Responder(min_confidence=0.4)
    reply = r.reply(INTENT_TEXTS[intent], emotion, 0.9)
    assert reply.text.strip()
    if intent == "farewell":
        assert reply.strategy == "farewell"
    else:
        assert reply.strategy == STRATEGY_BY_EMOTION[emotion]
    if intent == "greeting":
        assert reply.text.split()[0].rstrip(".,") in {"Hello", "Hi", "Hey"}
    if intent == "thanks":
        assert any(w in reply.text for w in ("welcome", "Any time", "Glad", "Of course"))


def test_each_strategy_has_at_least_six_phrasings():
    for name, options in PHRASES.items():
        assert len(set(options)) >= 6, name


@pytest.mark.parametrize("emotion", EMOTIONS)
def test_no_reply_repeats_within_five_turns(emotion):
    r = Responder()
    texts = [r.reply("the weather is mild", emotion, 0.9).text for _ in range(30)]
    for i in range(len(texts)):
        window = texts[max(0, i - NO_REPEAT_WINDOW + 1):i]
        assert texts[i] not in window, (i, texts[i])


def test_no_repeat_holds_when_emotions_alternate_and_safety_repeats():
    r = Responder()
    texts = []
    for i in range(24):
        text = "I want to end my life" if i % 3 == 0 else "nothing much"
        texts.append(r.reply(text, EMOTIONS[i % len(EMOTIONS)], 0.9).text)
    for i in range(len(texts)):
        assert texts[i] not in texts[max(0, i - 4):i]


SAFETY_TEXTS = ["I want to kill myself", "sometimes I think about suicide",
                "I don't want to live anymore", "I've been hurting myself again",
                "I just want to end it all"]


@pytest.mark.parametrize("emotion", EMOTIONS + (None,))
@pytest.mark.parametrize("text", SAFETY_TEXTS)
def test_safety_wins_over_every_emotion(text, emotion):
    reply = Responder().reply(text, emotion, 0.99 if emotion else None)
    assert reply.strategy == "safety"
    low = reply.text.lower()
    assert "crisis" in low or "emergency" in low
    assert "congrat" not in low and "wonderful" not in low


def test_safety_beats_farewell_and_greeting():
    reply = Responder().reply("hello, goodbye, I want to kill myself", "happy", 0.9)
    assert reply.strategy == "safety"


def test_cheerful_voice_with_bad_news_is_mixed_not_congratulations():
    reply = Responder().reply("I lost my job today", "happy", 0.92)
    assert reply.strategy == "mixed_feelings"
    low = reply.text.lower()
    for word in ("wonderful", "great", "congrat", "love hearing", "fantastic"):
        assert word not in low
    assert "you lost your job" in low  # the key phrase is reflected back


def test_sad_voice_with_good_news_is_mixed():
    reply = Responder().reply("I got the promotion, it's great", "sad", 0.85)
    assert reply.strategy == "mixed_feelings"


def test_uncertain_emotion_does_not_presume():
    r = Responder(min_confidence=0.5)
    reply = r.reply("the meeting was moved to friday", "angry", 0.3)
    assert reply.strategy == "uncertain"
    low = reply.text.lower()
    for presumption in ("angry", "frustrat", "you sound", "upset"):
        assert presumption not in low


def test_no_emotion_follows_the_words():
    reply = Responder().reply("my dog died yesterday", None, None)
    assert reply.strategy == "validate_sadness"  # the words carry the feeling
    assert reply.words_emotion["source"] == "words"
    assert any(w in reply.text.lower() for w in ("sorry", "difficult", "hard", "a lot", "not", "hear"))


def test_change_of_emotion_is_noticed():
    r = Responder()
    first = r.reply("this is so annoying", "angry", 0.9)
    assert "calmer" not in first.text.lower()
    second = r.reply("okay, I see", "neutral", 0.9)
    assert "calmer" in second.text.lower() or "settled" in second.text.lower()


def test_same_emotion_is_not_called_a_change():
    r = Responder()
    r.reply("it is raining", "neutral", 0.9)
    reply = r.reply("still raining", "neutral", 0.9)
    assert "now" not in reply.text.lower()


def test_sentiment_lexicon_and_negation():
    assert text_sentiment("I lost my job") < 0
    assert text_sentiment("I won the lottery, I'm so happy") > 0
    assert text_sentiment("I'm not happy") < 0
    assert text_sentiment("the table is brown") == 0


def test_key_phrase_swaps_pronouns():
    assert key_phrase("Well, I lost my keys at the station") == "you lost your keys at the station"
    assert key_phrase("I'm tired of waiting") == "you're tired of waiting"
    assert key_phrase("the sky") is None


def test_prosody_follows_the_state():
    r = Responder()
    sad = r.reply("hm", "sad", 0.9).tts_style
    happy = r.reply("hm", "happy", 0.9).tts_style
    angry = r.reply("hm", "angry", 0.9).tts_style
    assert sad.rate < happy.rate and sad.volume < happy.volume and sad.pitch < happy.pitch
    assert angry.rate < happy.rate and angry.pitch <= 50


def test_replies_are_deterministic():
    a, b = Responder(), Responder()
    script = [("hello", "happy", 0.9), ("I failed my exam", "sad", 0.8), ("why?", None, None)]
    assert [a.reply(*s).text for s in script] == [b.reply(*s).text for s in script]


def test_no_diagnoses():
    words = ("depression", "disorder", "diagnos", "anxiety disorder", "ptsd", "bipolar")
    for options in PHRASES.values():
        for text in options:
            assert not any(w in text.lower() for w in words), text


@pytest.mark.parametrize("text,strategy", [
    ("oh great, another Monday", "deescalate_anger"),
    ("yeah I just love sitting in traffic for two hours", "deescalate_anger"),
    ("I feel so humiliated", "validate_sadness"),
    ("I got promoted but I feel nothing", "validate_sadness"),
    ("I passed my driving test, I'm so happy", "share_joy"),
])
def test_typed_words_carry_the_feeling(text, strategy):
    reply = Responder().reply(text, None, None)
    assert reply.strategy == strategy
    assert "good" not in reply.text.lower() or strategy == "share_joy"


def test_requests_get_an_answer_on_their_topic():
    r = Responder()
    r.reply("I had a lovely lunch", None, None)
    reply = r.reply("can you help me sleep better?", None, None)
    assert "sleep" in reply.text.lower()
    assert "went well" not in reply.text.lower() and "great" not in reply.text.lower()


def test_how_are_you_gets_a_sensible_answer():
    reply = Responder().reply("how are you?", None, None)
    assert reply.strategy == "small_talk" and "how are you" in reply.text.lower()


def test_reflection_is_whole_or_none():
    assert key_phrase("I lost my wallet at my sister's house which was annoying today") is None
    reply = Responder().reply("I lost my wallet at my sister's house which was annoying", None, None)
    assert "which." not in reply.text


def test_mentions_are_remembered_and_come_back():
    r = Responder()
    r.reply("my dog is getting old", None, None)
    r.reply("hmm", None, None)
    later = r.reply("nothing much really", None, None)
    assert "your dog" in later.text.lower()

