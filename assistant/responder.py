"""Choosing a reply: deterministic, offline, from the voice's emotion, the words and the history.

Order of precedence:

1. safety: words about self-harm or suicide always get a caring reply that urges contact with
   local emergency services or a crisis line, whatever the voice sounds like;
2. farewell: "bye"/"goodbye" ends the conversation warmly;
3. mixed signals: a voice that sounds positive saying negative words (or the reverse) gets a
   reply to mixed feelings, never congratulations;
4. uncertain: when the emotion model is unsure (or there is none), the reply follows the words
   only and does not presume a feeling;
5. otherwise one strategy per emotion.

Greetings, thanks, questions and requests for help add an opening; a key phrase of the user's
words is reflected back; a change of emotion since the last confident turn is noticed. Each
strategy has at least six phrasings and no reply text is repeated within five turns.
The assistant gives no diagnoses: the phrasings describe how the user *sounds*, never what
they *have*.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from assistant.safety import is_risk
from assistant.types import Reply, TtsStyle

EMOTIONS = ("neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised")
INTENTS = ("greeting", "farewell", "thanks", "question", "help", "statement")
NO_REPEAT_WINDOW = 5

NEGATIVE_EMOTIONS = frozenset({"sad", "angry", "fearful", "disgust"})
POSITIVE_EMOTIONS = frozenset({"happy", "surprised"})

STRATEGY_BY_EMOTION = {
    "sad": "validate_sadness",
    "angry": "deescalate_anger",
    "fearful": "reassure_fear",
    "happy": "share_joy",
    "surprised": "curious_surprise",
    "disgust": "acknowledge_disgust",
    "neutral": "engage_neutral",
}

# Prosody per state. rate: words per minute; volume 0..1; pitch: espeak-ng 0..99 (50 normal).
STYLE_BY_STRATEGY = {
    "validate_sadness": TtsStyle(rate=145, volume=0.7, pitch=40),
    "reassure_fear": TtsStyle(rate=145, volume=0.72, pitch=42),
    "deescalate_anger": TtsStyle(rate=150, volume=0.8, pitch=45),
    "share_joy": TtsStyle(rate=185, volume=0.95, pitch=64),
    "curious_surprise": TtsStyle(rate=180, volume=0.92, pitch=60),
    "acknowledge_disgust": TtsStyle(rate=160, volume=0.82, pitch=46),
    "engage_neutral": TtsStyle(rate=170, volume=0.88, pitch=50),
    "mixed_feelings": TtsStyle(rate=150, volume=0.8, pitch=46),
    "uncertain": TtsStyle(rate=165, volume=0.85, pitch=50),
    "safety": TtsStyle(rate=140, volume=0.78, pitch=44),
    "safety_followup": TtsStyle(rate=140, volume=0.78, pitch=44),
    "small_talk": TtsStyle(rate=170, volume=0.88, pitch=52),
    "farewell": TtsStyle(rate=165, volume=0.85, pitch=52),
}

PHRASES: dict[str, tuple[str, ...]] = {
    "validate_sadness": (
        "You sound really down, and that's okay. I'm here to listen.",
        "It sounds like things feel heavy right now. Would you like to tell me more?",
        "I hear some sadness in your voice. It makes sense to feel that way sometimes.",
        "That sounds hard. You don't have to carry it alone; take your time.",
        "I'm sorry it feels this way. What has been weighing on you most?",
        "Your voice sounds low today. I'm listening, whenever you're ready.",
        "It's alright to feel sad. Is there something small that might help a little right now?",
    ),
    "deescalate_anger": (
        "I can hear you're frustrated. Let's slow down and take it one step at a time.",
        "That sounds really annoying. What part of it bothers you the most?",
        "It makes sense to be upset about that. I'm listening; tell me what happened.",
        "You sound angry, and that's understandable. Shall we take a breath together first?",
        "I hear the frustration. What would help to make this a little better?",
        "That would wind anyone up. Let's look at it calmly together.",
        "Your feelings are valid. When you're ready, tell me what you need right now.",
    ),
    "reassure_fear": (
        "You sound worried. You're not alone in this; let's take it slowly.",
        "That sounds scary. Take a slow breath with me; we can go through it together.",
        "It's understandable to feel anxious about that. What worries you the most?",
        "I hear some fear in your voice. Right now, in this moment, you're okay.",
        "That sounds unsettling. Would it help to talk through what might happen next?",
        "Feeling nervous is natural. Let's focus on one small thing you can do.",
        "I'm here with you. What would make you feel a little safer right now?",
    ),
    "share_joy": (
        "You sound happy! I love hearing that. What's making your day?",
        "That's wonderful. Your voice is full of good energy today.",
        "How lovely! Tell me more about it.",
        "You sound cheerful, and it's contagious. What happened?",
        "That's great to hear. Enjoy the moment!",
        "I can hear the smile in your voice. What's been going well?",
        "Fantastic! It's nice to share good moments like this.",
    ),
    "curious_surprise": (
        "Oh, you sound surprised! What happened?",
        "That sounds unexpected. Tell me more!",
        "Wow, I didn't see that coming either. How do you feel about it?",
        "You sound caught off guard. Was it a good surprise?",
        "Really? That's quite something. What happened next?",
        "That sounds like news! How did it come about?",
        "Surprises can be a lot to take in. What surprised you the most?",
    ),
    "acknowledge_disgust": (
        "That sounds really unpleasant. I understand why it put you off.",
        "Ugh, that doesn't sound nice at all. What happened?",
        "I can hear that didn't sit well with you. It's fair to feel that way.",
        "That sounds distasteful. Do you want to talk about it?",
        "It makes sense to be put off by that. How are you dealing with it?",
        "That sounds like something nobody would enjoy. I'm listening.",
        "I hear you. Some things just feel wrong, and it's okay to say so.",
    ),
    "engage_neutral": (
        "I'm listening. Tell me more.",
        "Okay. How has your day been so far?",
        "Got it. What's on your mind?",
        "Thanks for sharing that. What would you like to talk about next?",
        "I see. How are you feeling about it?",
        "Alright. Is there anything I can help you think through?",
        "Mm-hm. Go on, I'm here.",
    ),
    "mixed_feelings": (
        "You sound upbeat, but what you said sounds hard. Mixed feelings are normal; how are you really doing?",
        "I'm hearing two things at once: your voice sounds one way, your words another. Which feels truer right now?",
        "That sounds like a lot to process, even if you're keeping your spirits up. How is it sitting with you?",
        "It's okay to feel more than one thing about this. Would you like to talk it through?",
        "Your words and your voice are telling slightly different stories. I'm here for both.",
        "Sometimes we sound fine while dealing with something tough. How are you holding up?",
        "That sounds complicated. There's no right way to feel about it.",
    ),
    "mixed_low_voice": (
        "That sounds like good news, though your voice sounds a little heavy. How do you really feel about it?",
        "Your words sound positive, but you sound a bit low. Is something else on your mind?",
        "Good things can still come with mixed feelings. How are you, really?",
        "That sounds nice, yet I hear something else in your voice. Want to talk about it?",
        "It's okay if good news doesn't feel entirely good. What's going on for you?",
        "You say it's good, but you don't sound quite sure. I'm listening.",
    ),
    "uncertain": (
        "I'm listening. How are you feeling right now?",
        "I can't quite tell how you're feeling. Would you like to tell me?",
        "Thanks for telling me. How is that for you?",
        "I want to understand. What's on your mind?",
        "Tell me more, if you like. I'm here.",
        "I'm not sure I caught how you feel about that. How is it going?",
        "Okay. What would be most helpful to talk about?",
    ),
    "uncertain_negative": (
        "That sounds difficult. Do you want to tell me more about it?",
        "I'm sorry to hear that. How are you feeling about it?",
        "That sounds like a lot. I'm here if you want to talk it through.",
        "That doesn't sound easy. What would help right now?",
        "Thank you for telling me that. How are you holding up?",
        "I hear you. Would it help to talk about what comes next?",
    ),
    "uncertain_positive": (
        "That sounds good! Tell me more.",
        "Nice. How do you feel about it?",
        "That's good to hear. What happened?",
        "Sounds like something went well. I'd love to hear more.",
        "Great. What made it go well?",
        "That sounds positive. What's next?",
    ),
    "safety": (
        "I'm really glad you told me, and I care about your safety. Please contact your local "
        "emergency services or a crisis line now; you don't have to face this alone.",
        "What you're feeling matters, and you deserve support right now. Please reach out to a "
        "crisis line or your local emergency number, or someone you trust.",
        "Thank you for trusting me with this. I'm not able to help the way a person can, so please "
        "call a crisis line or local emergency services right away.",
        "I hear how much pain you're in. Please contact local emergency services or a suicide and "
        "crisis line now; they're there to help, any time.",
        "You matter, and you don't have to go through this alone. Please reach out to a crisis "
        "helpline or emergency services, or ask someone nearby to stay with you.",
        "I'm worried about your safety. If you might hurt yourself, please call your local emergency "
        "number or a crisis line now.",
    ),
    "safety_followup": (
        "I'm still here with you. Have you been able to reach a crisis line or someone you trust?",
        "I keep thinking about what you told me earlier. Please do contact a crisis line or "
        "local emergency services; they can help in a way I can't.",
        "Thank you for staying with me. Is there someone near you who could keep you company now?",
        "I'm listening. Whatever else is going on, your safety comes first; a crisis line can talk "
        "with you any time.",
        "I'm glad you're still talking to me. Would you be willing to call a crisis line or your "
        "local emergency number now?",
        "That matters too. And I'm still thinking of what you said before; please reach out to a "
        "crisis line or someone you trust today.",
    ),
    "farewell": (
        "Goodbye. Take good care of yourself.",
        "Bye for now. It was nice talking with you.",
        "Take care. I'm here whenever you want to talk again.",
        "Goodbye! Be kind to yourself today.",
        "See you next time. Look after yourself.",
        "Bye. Thanks for talking with me.",
    ),
}

OPENINGS = {
    "greeting": ("Hello.", "Hi there.", "Hey, good to hear from you.", "Hello again."),
    "thanks": ("You're welcome.", "Any time.", "Glad to help.", "Of course."),
    "question": ("Good question.", "Let me think about that with you.",
                 "That's worth asking.", "Hmm, good question."),
    "help": ("I'd like to help.", "I'm here to help.", "Let's work on it together.",
             "Of course I'll help where I can."),
}
# What the assistant can honestly say about questions: it is offline and not an expert.
QUESTION_NOTE = "I can't look things up, but we can think it through."

CHANGE_NOTES = {
    ("negative", "calm"): ("You sound calmer now.", "You sound a bit more settled now."),
    ("negative", "positive"): ("You sound brighter than a moment ago.",
                               "It's good to hear your voice lift a little."),
    ("positive", "negative"): ("You sound a little different from before.",
                               "Your mood seems to have shifted."),
    ("calm", "negative"): ("Something seems to have changed since a moment ago.",
                           "You sound more troubled than before."),
    ("calm", "positive"): ("You sound more cheerful now.", "There's more energy in your voice now."),
    ("positive", "calm"): ("You sound a bit more settled now.", "You sound calmer now."),
}

SAFETY_PATTERNS = re.compile(
    r"\b(suicid\w*|kill(ing)? my ?self|end(ing)? (my|it all|my own) li(fe|ves)|end it all|"
    r"take my (own )?life|want(ed)? to die|wanna die|better off dead|"
    r"hurt(ing)? my ?self|harm(ing)? my ?self|self[- ]?harm\w*|cut(ting)? my ?self|"
    r"(don'?t|do not) want to (live|be alive|be here)|no reason to live|overdose)\b",
    re.IGNORECASE,
)

GREETING = re.compile(r"^\s*(hi|hello|hey|hiya|howdy|good (morning|afternoon|evening))\b", re.I)
FAREWELL = re.compile(r"\b(good ?bye|bye|see you( later)?|farewell|good night)\b", re.I)
# Words that end a session only as the whole line ("stop" inside a sentence is no goodbye).
END_WORDS = re.compile(r"^\W*(quit|exit|stop|that'?s all|i'?m done)\W*$", re.I)
THANKS = re.compile(r"\b(thanks|thank you|thank u|cheers|appreciate it)\b", re.I)
HELP = re.compile(r"\b(help( me)?|can you|could you|would you|i need|please)\b", re.I)
QUESTION_START = re.compile(
    r"^\s*(what|why|how|when|where|who|which|is|are|do|does|did|can|could|should|would|will)\b",
    re.I)

NEGATIVE_WORDS = frozenset(
    [
        "lost",
        "lose",
        "losing",
        "died",
        "dead",
        "death",
        "funeral",
        "sick",
        "ill",
        "hurt",
        "hurts",
        "pain",
        "painful",
        "cancer",
        "fired",
        "divorce",
        "broke",
        "broken",
        "sad",
        "unhappy",
        "lonely",
        "alone",
        "afraid",
        "scared",
        "worried",
        "anxious",
        "terrible",
        "awful",
        "horrible",
        "bad",
        "worse",
        "worst",
        "hate",
        "hated",
        "angry",
        "upset",
        "cry",
        "crying",
        "cried",
        "tired",
        "exhausted",
        "stressed",
        "failed",
        "failing",
        "fail",
        "miss",
        "missing",
        "sorry",
        "problem",
        "problems",
        "trouble",
        "difficult",
        "hard",
        "ugly",
        "disgusting",
        "gross",
        "sucks",
        "injured",
        "accident",
        "crash",
        "hospital",
        "rejected",
        "dumped",
        "unemployed",
        "debt",
        "evicted",
        "homeless",
        "grief",
        "grieving",
    ]
)
POSITIVE_WORDS = frozenset(
    [
        "happy",
        "glad",
        "great",
        "good",
        "wonderful",
        "amazing",
        "awesome",
        "love",
        "loved",
        "lovely",
        "excited",
        "fantastic",
        "excellent",
        "won",
        "win",
        "winning",
        "promoted",
        "promotion",
        "married",
        "engaged",
        "pregnant",
        "born",
        "birthday",
        "holiday",
        "vacation",
        "passed",
        "success",
        "successful",
        "proud",
        "fun",
        "enjoy",
        "enjoyed",
        "beautiful",
        "nice",
        "perfect",
        "celebrate",
        "celebrating",
        "thrilled",
        "delighted",
        "grateful",
        "relieved",
        "better",
        "best",
        "yay",
    ]
)
NEGATORS = frozenset({"not", "no", "never", "don't", "dont", "didn't", "isn't", "wasn't",
                      "can't", "cannot", "hardly"})

REFLECT = re.compile(
    r"\b(i (?:just |really |have |had |got |am |'m )?"
    r"(?:lost|feel|felt|got|have|had|need|want|miss|hate|love|failed|passed|won)"
    r"|i'm|i am|my)\b\s+([a-z' ]{3,60})",
    re.I,
)


@dataclass(frozen=True)
class HistoryItem:
    """What the responder remembers of one earlier turn."""

    label: str | None
    """Emotion label of the turn, or None when there was none."""
    uncertain: bool
    """Whether that emotion was below the confidence threshold."""
    reply: str
    """The reply given."""


def detect_intents(text: str) -> tuple[str, ...]:
    """Intents in the user's words, most important first; ``("statement",)`` when none."""
    found = []
    if FAREWELL.search(text) or END_WORDS.match(text.replace("\u2019", "'")):
        found.append("farewell")
    if GREETING.search(text):
        found.append("greeting")
    if THANKS.search(text):
        found.append("thanks")
    if HELP.search(text):
        found.append("help")
    if text.strip().endswith("?") or QUESTION_START.search(text):
        found.append("question")
    return tuple(found) or ("statement",)


def is_farewell(text: str) -> bool:
    """True for words that end the conversation ("bye", "goodbye")."""
    return bool(FAREWELL.search(text))


def is_safety_concern(text: str) -> bool:
    """True when the words may signal a risk of suicide or self-harm (see assistant.safety)."""
    return is_risk(text)


def text_sentiment(text: str) -> float:
    """Lexicon sentiment of the words in [-1, 1]; 0 when neutral or empty."""
    words = re.findall(r"[a-z']+", text.lower())
    score = 0
    hits = 0
    for i, word in enumerate(words):
        polarity = 1 if word in POSITIVE_WORDS else -1 if word in NEGATIVE_WORDS else 0
        if not polarity:
            continue
        if any(w in NEGATORS for w in words[max(0, i - 2):i]):
            polarity = -polarity
        score += polarity
        hits += 1
    return 0.0 if not hits else max(-1.0, min(1.0, score / max(hits, 1)))


SWAP = {"i": "you", "i'm": "you're", "im": "you're", "am": "are", "my": "your", "me": "you",
        "myself": "yourself", "mine": "yours", "i've": "you've", "i'd": "you'd", "i'll": "you'll",
        "was": "were"}


_DANGLING = frozenset({"which", "that", "the", "a", "an", "to", "of", "at", "in", "on", "with", "for",
                       "and", "or", "my", "your", "is", "was", "who", "when", "if", "really", "just"})

# Requests the assistant can answer honestly, by topic: general, non-expert suggestions.
TOPIC_ANSWERS = (
    (re.compile(r"\b(sleep|insomnia|can'?t sleep|tired at night)\b", re.I),
     "I can't give medical advice, but for sleep many people find a regular bedtime, no screens "
     "for the last hour and a dark, cool room help."),
    (re.compile(r"\b(stress(ed)?|anxious|calm down|relax)\b", re.I),
     "I can't give medical advice, but slow breathing, in for four and out for six, helps many "
     "people settle a little."),
    (re.compile(r"\b(motivat\w*|procrastinat\w*|focus)\b", re.I),
     "One thing that often helps is picking a single small step and doing just that for ten minutes."),
)
HOW_ARE_YOU = re.compile(r"\bhow are (you|u)( doing| today)?\b|\bhow'?s it going\b", re.I)
HOW_ARE_YOU_ANSWERS = (
    "I'm a program, so I don't have good or bad days, but I'm here and glad to talk. How are you?",
    "I'm doing fine, thanks for asking. How about you?",
    "All good on my side, thank you. How are things with you?",
)
MENTION = re.compile(r"\bmy (job|work|boss|dog|cat|sister|brother|mum|mom|dad|father|mother|"
                     r"partner|wife|husband|friend|son|daughter|exam|team|kids?)\b", re.I)


def key_phrase(text: str) -> str | None:
    """A short phrase of the user's own words to reflect back, e.g. 'you lost your job'."""
    match = REFLECT.search(text)
    if not match:
        return None
    rest = re.split(r"[.,;!?]| and | but | because | so ", match.group(2).strip(), maxsplit=1)[0]
    words = rest.split()
    if not words or len(words) > 6 or words[-1].lower() in _DANGLING:
        return None  # whole phrases or none: never a phrase cut mid-way
    lead = match.group(1).lower().split()
    return " ".join(SWAP.get(w.lower(), w.lower()) for w in lead + words)


def _bucket(label: str | None) -> str | None:
    if label is None:
        return None
    if label in NEGATIVE_EMOTIONS:
        return "negative"
    if label in POSITIVE_EMOTIONS:
        return "positive"
    return "calm"


class Responder:
    """Picks replies; remembers the conversation so far (one instance per session)."""

    def __init__(self, *, min_confidence: float = 0.45) -> None:
        self.min_confidence = min_confidence
        self.history: list[HistoryItem] = []
        self.concern = False
        self.mentions: list[str] = []
        """Things the person mentioned (job, dog, sister), oldest first."""
        self._asked_about: set[str] = set()
        """Set once words signalled a risk; later turns keep pointing gently to help."""

    def reply(self, text: str, label: str | None, confidence: float | None) -> Reply:
        """Choose the reply to ``text`` said with emotion ``label`` (None: unknown)."""
        text = text or ""
        uncertain = label is None or confidence is None or confidence < self.min_confidence
        intents = detect_intents(text)
        sentiment = text_sentiment(text)
        words_info = None
        if text.strip():
            from assistant.words import words_emotion  # VADER loads lazily, once

            words = words_emotion(text)
            if words.why in ("sarcasm", "feeling"):  # stated or sarcastic: not the literal words
                sentiment = words.valence if words.label not in NEGATIVE_EMOTIONS else min(
                    words.valence, -0.3)
            request = bool({"question", "help", "thanks", "greeting"} & set(intents))
            if (uncertain and words.confidence >= self.min_confidence
                    and not (request and words.why == "valence")):  # "help me sleep better" is no joy
                # no voice emotion (typed text) or an unsure one: the words carry the feeling
                label, confidence, uncertain = words.label, words.confidence, False
                words_info = {"source": "words", "label": words.label,
                              "confidence": round(words.confidence, 3),
                              "valence": round(words.valence, 3), "why": words.why}
        turn_index = len(self.history)

        if is_safety_concern(text):
            self.concern = True
            strategy, pool = "safety", "safety"
            parts = [self._pick(pool, turn_index)]
        elif self.concern and "farewell" in intents:
            # still a goodbye (the session ends, as the person asked), with the crisis reply
            strategy, pool = "farewell", "safety"
            parts = ["Before you go:", self._pick(pool, turn_index)]
        elif self.concern:
            strategy, pool = "safety_followup", "safety_followup"
            parts = [self._pick(pool, turn_index)]
        elif "farewell" in intents:
            strategy, pool = "farewell", "farewell"
            parts = [self._pick(pool, turn_index)]
        else:
            if not uncertain and label in POSITIVE_EMOTIONS and sentiment < 0:
                strategy, pool = "mixed_feelings", "mixed_feelings"
            elif not uncertain and label in NEGATIVE_EMOTIONS and sentiment > 0:
                strategy, pool = "mixed_feelings", "mixed_low_voice"
            elif uncertain:
                strategy = "uncertain"
                pool = ("uncertain_negative" if sentiment < 0
                        else "uncertain_positive" if sentiment > 0 else "uncertain")
            else:
                strategy = pool = STRATEGY_BY_EMOTION.get(label or "neutral", "engage_neutral")
                if words_info is not None:  # typed words: phrasings that do not speak of a voice
                    pool = {"sad": "uncertain_negative", "happy": "uncertain_positive",
                            "fearful": "reassure_fear"}.get(label or "", pool)
            parts = []
            # a change of *voice* is noticed only when there is a voice emotion
            change = None if uncertain or words_info else self._change_note(label, turn_index)
            if change:
                parts.append(change)
            for intent in ("greeting", "thanks", "help", "question"):
                if intent in intents:
                    options = OPENINGS[intent]
                    parts.append(options[turn_index % len(options)])
                    if intent == "question":
                        parts.append(QUESTION_NOTE)
                    break
            topic = next((ans for pat, ans in TOPIC_ANSWERS if pat.search(text)), None)
            if HOW_ARE_YOU.search(text):
                parts = [HOW_ARE_YOU_ANSWERS[turn_index % len(HOW_ARE_YOU_ANSWERS)]]
                strategy = "small_talk"
            elif topic and ("question" in intents or "help" in intents):
                parts = [p for p in parts if p != QUESTION_NOTE] + [topic]
                if pool.startswith("uncertain"):
                    pool = "uncertain"  # "help me sleep better" is a request, not good news
            new_mentions = [m.lower() for m in MENTION.findall(text)]
            sarcastic = words_info is not None and words_info["why"] == "sarcasm"
            phrase = None if strategy == "small_talk" or sarcastic else key_phrase(text)
            if not phrase and not new_mentions and strategy != "small_talk":
                earlier = next((m for m in reversed(self.mentions) if m not in self._asked_about), None)
                if earlier and turn_index >= 2:
                    self._asked_about.add(earlier)
                    parts.append(f"Earlier you mentioned your {earlier}. How is that going?")
            for m in new_mentions:
                if m not in self.mentions:
                    self.mentions.append(m)
            if strategy == "small_talk":
                pass
            elif phrase:
                verb = "mentioned" if phrase.startswith("your ") else "said"
                parts.append(f"You {verb} {phrase}.")
            if strategy != "small_talk":
                parts.append(self._pick(pool, turn_index, prefix=" ".join(parts)))
        reply_text = " ".join(p for p in parts if p)
        style = STYLE_BY_STRATEGY.get(strategy, TtsStyle())
        self.history.append(HistoryItem(label=label, uncertain=uncertain, reply=reply_text))
        return Reply(text=reply_text, strategy=strategy, tts_style=style, words_emotion=words_info)

    # -- helpers -----------------------------------------------------------------------
    def _recent_replies(self) -> set[str]:
        return {h.reply for h in self.history[-(NO_REPEAT_WINDOW - 1):]} if NO_REPEAT_WINDOW > 1 else set()

    def _pick(self, pool: str, turn_index: int, prefix: str = "") -> str:
        """Deterministic rotation through a pool, skipping any reply said in the last turns."""
        options = PHRASES[pool]
        recent = self._recent_replies()
        recent_bodies = {r for r in recent}
        start = (turn_index * 5) % len(options)
        for k in range(len(options)):
            candidate = options[(start + k) % len(options)]
            full = f"{prefix} {candidate}".strip()
            if full not in recent_bodies and not any(candidate in r for r in recent):
                return candidate
        return options[start]  # unreachable while pools have more than NO_REPEAT_WINDOW phrasings

    def _change_note(self, label: str | None, turn_index: int) -> str | None:
        previous = next((h for h in reversed(self.history) if h.label and not h.uncertain), None)
        if previous is None:
            return None
        before, now = _bucket(previous.label), _bucket(label)
        if before == now:
            return None
        notes = CHANGE_NOTES.get((before, now))
        return notes[turn_index % len(notes)] if notes else None
