"""The second half of the safety net: warning-sign patterns written independently of
:mod:`assistant.safety`, which consults them too.

Two engineers wrote a pattern set and an evaluation set each, without seeing the other's.
Each set of patterns caught only 63-76 % of the other's sentences, so the net raises the
concern when either fires (see the README for the figures).

A deliberately cautious detector, deterministic and offline: a miss costs far more than a
false alarm, but a net that fires on every "this traffic is killing me" teaches people to
ignore it. It works on normalised text (lower case, straight apostrophes, contractions and
chat spellings expanded) in two tiers:

- **first-person risk** phrasings, grouped by the warning signs that crisis-line training
  and screening material list (wanting to die or not exist, being a burden, no reason to
  live, feeling trapped, saying goodbye and giving things away, a plan or the means, past
  attempts and self-harm). One match is enough, whatever else the sentence says.
- **risk words** (``suicide``, ``overdose``, ``self-harm`` ...) that also occur in grief,
  news, films, songs and first aid: they count unless the sentence is clearly about someone
  else or something else (a hard-negative context).

Measured on ``tests/data/safety_eval_signs.jsonl`` (a tuning part and a held-out part that was
written before the patterns and never tuned on): ``python bench/safety_eval.py``.

It is not a clinical instrument and cannot understand everything people say; the reply it
triggers points to people who can help (see the README).
"""

from __future__ import annotations

import re

__all__ = ["SafetyVerdict", "assess", "is_at_risk", "normalise"]

_CONTRACTIONS = (
    (r"\bi'm\b|\bim\b", "i am"), (r"\bi've\b|\bive\b", "i have"), (r"\bi'll\b", "i will"),
    (r"\bi'd\b", "i would"), (r"\bcan't\b|\bcant\b", "cannot"), (r"\bwon't\b|\bwont\b", "will not"),
    (r"\bdon't\b|\bdont\b", "do not"), (r"\bdoesn't\b|\bdoesnt\b", "does not"),
    (r"\bdidn't\b|\bdidnt\b", "did not"), (r"\bisn't\b|\bisnt\b", "is not"),
    (r"\bwouldn't\b|\bwouldnt\b", "would not"), (r"\bwanna\b", "want to"), (r"\bgonna\b", "going to"),
    (r"\bthere's\b", "there is"), (r"\bwhat's\b", "what is"), (r"\bit's\b", "it is"),
    (r"\bthat's\b", "that is"), (r"\bno one\b", "nobody"), (r"\bmy self\b", "myself"),
    (r"\bkms\b", "kill myself"), (r"\bunalive\b", "kill"), (r"\bcould not\b", "cannot"),
)

_ME = r"(?:myself|me)"
_PILLS = r"(?:pills|tablets|meds|medication|medicine|painkillers|antidepressants|sleeping pills|paracetamol)"

# First-person phrasings of warning signs: any one of them raises the concern.
_RISK = [
    # wanting to die / not to exist
    r"\b(?:kill|hang|shoot|drown|poison|harm|punish|starve) myself\b",
    r"\bi (?:want|wish|need|would like|am ready|am going|plan|deserve|should|would rather)(?: just)? (?:to )?(?:die|be dead)\b"
    r"(?! (?:if|of|from|laughing|than|for|when|before|without))",
    r"\bnot (?:afraid|scared) (?:to|of) (?:die|dying|death)\b",
    r"\b(?:easier|better) (?:for everyone )?if i (?:just )?(?:died|was dead|were dead|was gone|were gone|disappeared)\b",
    r"\b(?:do not|cannot|no longer) see (?:the|any) point (?:in|of) (?:living|life|going on|being alive|carrying on)\b",
    r"\bi (?:should|might as well|may as well)(?: just)? (?:die|end it)\b",
    r"\bwish (?:i|that i) (?:was|were|could be) dead\b", r"\bbetter off dead\b",
    r"\b(?:rather|want to|ready to) (?:be )?dead\b", r"\bi want to die\b",
    r"\bi hope i (?:die|do not wake up)\b", r"\bi do not want to wake up\b",
    r"\b(?:sleep|go to sleep) (?:and|forever and) (?:never|not) wake up\b", r"\bgo to sleep forever\b",
    r"\b(?:do not|no longer|never) want to (?:live|be alive|exist|be here|go on)\b(?! (?:in|with|at|near|there|here in))",
    r"\bwish i (?:had never been born|was never born|did not exist|could (?:just )?(?:stop existing|disappear and never))",
    r"\b(?:stop|not) (?:existing|being here)\b", r"\bi do not want to exist\b", r"\bnot being here anymore\b",
    r"\bdisappear (?:forever|for good|and never come back)\b",
    r"\b(?:end|take|ending|taking|ended|took) (?:my|my own) li(?:fe|ves)\b",
    r"\b(?:end|ending|ended) (?:it all|everything|things)\b(?! with)", r"\bjust end it\b", r"\bend it (?:all|tonight|today|now)\b",
    r"\b(?:want|need) (?:it|everything|the pain|it all) (?:to (?:end|stop|be over)) (?:forever|for good|permanently)\b",
    r"\b(?:want|need) (?:it all|everything) to (?:be over|stop|end)\b",
    r"\b(?:tired|sick) of (?:living|being alive|life)\b", r"\bhad enough of life\b", r"\bdone with life\b",
    r"\bi am done,? i cannot keep living\b", r"\bcannot keep living\b",
    r"\bsuicidal\b",
    # nobody would care / being a burden
    r"\b(?:everyone|everybody|they|people|my (?:family|kids|children|parents|friends|wife|husband|partner)|the world)"
    r"(?: would| will|'d)? (?:be|are|is)? ?(?:better|happier)(?: off)? (?:without me|if i (?:was|were) (?:gone|dead))\b",
    r"\bbetter (?:off )?without (?:me|(?:a|an|someone) [a-z]+ like me|someone like me)\b", r"\bhappier if i (?:was|were) gone\b",
    r"\bi am (?:just |such |only )?a (?:burden|waste of space)\b", r"\b(?:feel|felt) like a burden\b",
    r"\bburden (?:to|on) (?:everyone|everybody|you|them|my family|people|all)\b",
    r"\bnobody (?:would|will|is going to) (?:even )?(?:miss me|(?:care|notice)"
    r"(?: if i (?:died|was gone|were gone|was dead|disappeared|killed myself)|$))",
    r"\bnobody cares if i (?:live or die|die)\b",
    # no reason to live, hopeless
    r"\bno (?:reason|point|purpose) (?:for me )?(?:to|in) (?:live|living|go on|going on|be alive|being alive|carry on|keep going)",
    r"\bwhat is the point (?:of|in) (?:living|being alive|going on|life)\b",
    r"\blife (?:is|has become) (?:pointless|meaningless|not worth living)\b", r"\blife is not worth living\b",
    r"\bliving is pointless\b", r"\blife has no meaning\b",
    r"\bcannot (?:go on|keep going)(?: like this| anymore| any more)?\b",
    r"\bcannot (?:take|bear|stand) [a-z ]{0,20}any ?more\b.*\b(?:want|need) (?:it|this|everything) to (?:end|stop|be over)\b",
    # trapped
    r"\b(?:no|cannot see (?:a|any)) way out\b(?!\s+of (?:this|the) (?:traffic|jam|job|meeting|queue|parking))",
    r"\bway out of this except dying\b",
    # goodbyes, giving things away, putting affairs in order
    r"\b(?:this is|saying) (?:my )?(?:(?:last|final) )?goodbye\b(?! to (?:my old|caffeine|sugar))",
    r"\bsaid goodbye to [a-z ]{2,30} and i am ready\b",
    r"\b(?:will not|never) (?:see|hear from) me (?:again|after)\b",
    r"\b(?:will not|may not|might not) be (?:here|around)(?: for)? (?:tomorrow|much longer|for long|long|anymore|soon)\b",
    r"\bi will not be here to\b", r"\b(?:not|never)\b.*\bbe (?:here|around) (?:much|for much) longer\b", r"\bby the time you (?:read|see|hear|get) this\b",
    r"\bgiv(?:e|ing|en) (?:away )?(?:all )?my (?:things|stuff|belongings|possessions) away\b",
    r"\bgave away (?:all )?my (?:things|stuff|belongings|possessions)\b", r"\bgiving away all my stuff\b",
    r"\bi will not need (?:it|them|anything)\b", r"\baffairs in order\b",
    r"\b(?:suicide|goodbye) (?:note|letter)s?\b(?! in the (?:novel|book|film|movie|show))",
    r"\bletters to my (?:family|kids|friends|parents) in case\b",
    # a plan or the means
    r"\bi (?:just |have |had |already |have just )*(?:took|taken|swallowed|take|am taking)"
    r" (?:a (?:bunch|lot|handful|load) of|all (?:of )?(?:my|the)|too many|(?:the|a) whole (?:bottle|packet|box|pack) of|everything in|\d+|twenty|thirty|fifty)"
    r" ?(?:my |the )?(?:" + _PILLS + r"|the medicine cabinet)?",
    r"\bswallowed (?:all|everything)\b", r"\b(?:saving|stockpiling|hoarding|saving up) (?:up )?(?:my )?" + _PILLS,
    r"\bhow many " + _PILLS + r" (?:would it take|does it take|to die|to kill)", r"\bhow many [a-z]+ it takes\b",
    r"\b(?:easiest|quickest|most painless|best|painless) way to (?:die|kill myself|end it)\b",
    r"\bi (?:am going to |will |want to |might |just |have )?overdos(?:e|ed)\b",
    r"\b(?:tied|tie|have|bought|got) (?:a|the) noose\b", r"\bnoose\b",
    r"\b(?:have|got|bought) (?:the|a) rope\b(?! for)",
    r"\b(?:gun|pistol|rifle)\b.*\b(?:on myself|myself|end it|my head|using it on)\b",
    r"\bjump(?:ing)? (?:off|from) (?:a|the|my) (?:bridge|building|roof|cliff|balcony|tower)\b(?!.*\b(?:game|sea|lake|pool)\b)",
    r"\b(?:on|standing on) (?:the|a) (?:bridge|edge|roof|ledge)\b.*\b(?:jump|jumping|right now|end)\b",
    r"\bstanding on the edge\b", r"\bon the bridge right now\b",
    r"\bjump(?:ing)? in front of (?:a|the) (?:train|bus|car|truck|lorry)\b",
    r"\b(?:crash|crashing|drive|driving) my car (?:into|off|on purpose)\b", r"\bwish a (?:car|bus|train) would hit me\b",
    r"\b(?:slit|cut|cutting|slash) (?:my )?(?:wrists|arms|legs|thighs|skin)\b",
    r"\b(?:have|made|got) a plan (?:to|for how to) (?:die|kill|end|do it)\b", r"\bmade a plan for how to do it\b",
    r"\bplanned how i am going to do it\b", r"\bknow (?:how and when|when and how) i am going to do it\b",
    r"\bdecided to end (?:it|things|my life)\b",
    # self-harm, past attempts
    r"\bself[- ]?harm(?:ing|ed)?\b(?!\s+(?:charity|awareness|research|course))",
    r"\bcutting myself\b", r"\bcut myself (?:again|to)\b", r"\bhurting myself\b", r"\bhurt myself on purpose\b",
    r"\bburn (?:myself|my skin)\b", r"\bto (?:punish|hurt) myself\b",
    r"\b(?:tried|attempted|try|attempt) (?:to )?(?:kill myself|end my life|overdose|suicide|take my life)\b",
    r"\battempted suicide\b",
    r"\b(?:thought|thinking|think|thoughts) (?:about|of) (?:suicide|dying|death|killing myself|ending (?:it|my life|things)|"
    r"not being here|not existing|jumping|my own death)\b",
    r"\bthinking about death a lot\b",
    r"\b(?:commit|committing|considering|contemplating) suicide\b",
]

# Risk words that also live in grief, news, fiction and first aid.
_WORDS = re.compile(r"\b(?:suicide|overdose|self[- ]?harm|kill myself|end my life)\b")
# Contexts that make a risk word about someone or something else.
_OTHER = re.compile(
    r"\b(?:he|she|they|his|her|their|my (?:friend|brother|sister|uncle|aunt|mother|father|mum|mom|dad|cousin|"
    r"grandfather|grandmother|neighbour|colleague)(?:'s \w+)?) (?:died by|committed|death by|killed)\b|"
    r"\bsuicide (?:rate|rates|bomb\w*|squad|prevention|awareness|hotline|statistics)\b|"
    r"\b(?:news|article|story|documentary|novel|book|film|movie|show|song|lyrics|game|course|class|training)\b|"
    r"\b(?:someone|somebody|a person|a patient|first aid)\b"
)

_RISK_RE = [re.compile(p) for p in _RISK]


class SafetyVerdict:
    """What :func:`assess` found: ``at_risk`` and the pattern ``reason`` (for logs and tests)."""

    __slots__ = ("at_risk", "reason")

    def __init__(self, at_risk: bool, reason: str | None) -> None:
        self.at_risk = at_risk
        self.reason = reason

    def __bool__(self) -> bool:
        return self.at_risk

    def __repr__(self) -> str:
        return f"SafetyVerdict(at_risk={self.at_risk}, reason={self.reason!r})"


def normalise(text: str) -> str:
    """Lower case, straight apostrophes, contractions expanded, punctuation to spaces."""
    t = (text or "").lower().replace("\u2019", "'").replace("\u2018", "'")
    for pattern, repl in _CONTRACTIONS:
        t = re.sub(pattern, repl, t)
    t = re.sub(r"[^a-z0-9' ,\-]+", " ", t)
    return re.sub(r"\s+", " ", t).strip()


def assess(text: str) -> SafetyVerdict:
    """Whether ``text`` carries a risk of suicide or self-harm, and which pattern said so."""
    t = normalise(text)
    if not t:
        return SafetyVerdict(False, None)
    for rx in _RISK_RE:
        m = rx.search(t)
        if m:
            return SafetyVerdict(True, m.group(0))
    m = _WORDS.search(t)
    if m and not _OTHER.search(t):
        return SafetyVerdict(True, m.group(0))
    return SafetyVerdict(False, None)


def is_at_risk(text: str) -> bool:
    """``assess(text).at_risk``."""
    return assess(text).at_risk
