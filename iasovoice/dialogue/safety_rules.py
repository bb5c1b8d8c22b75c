"""Deterministic red-flag rules for one caller utterance: emergency or crisis, decided without a model.

Escalation must never hang on a sampled token, so this layer runs on every final transcript beside the
intent classifier. It is NegEx-shaped: broad symptom patterns per category, then a match is dropped
only when it is *clearly* not a current problem of the caller:

* negated in its own clause ("no chest pain", "denies shortness of breath"), or
* past history in its own clause ("I had a stroke in 2019") with nothing in the utterance saying
  it is happening now ("... and now my face is drooping").

Everything else escalates: a false alarm costs one sentence, a miss can cost a life. Symptoms that are
themselves negations ("can't breathe", "won't stop bleeding", "not responding") are never cancelled by
a negation cue. Patterns are data, grouped by category, so a clinician can read and extend them.

Whisper's punctuation is used for clause breaks (a comma or full stop ends a negation's reach), but
patterns match across it, because callers' phrasing ("my chest, it hurts") does.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass
from typing import Literal

Severity = Literal["crisis", "emergency"]

__all__ = ["RuleHit", "Severity", "detect", "normalise"]


@dataclass(frozen=True)
class RuleHit:
    """Why the rules escalated: enough for the script and the call's flags, never the caller's words."""

    kind: Severity  # crisis = self-harm/suicide (crisis line); emergency = call emergency services
    category: str  # "cardiac", "breathing", "stroke", ..., "suicide", "self_harm"
    matched: str  # the matched span of the normalised text (for debugging; never logged at INFO)


# --------------------------------------------------------------------------------------------------
# Normalisation: one spelling per word, so the patterns need not know about Unicode or ASR habits.
# --------------------------------------------------------------------------------------------------

# Mapped before NFKC as well as after: NFKC turns the acute accent (a common apostrophe stand-in, "can´t")
# into a space plus a combining mark, which would split the word.
_TYPOGRAPHIC = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "\u2035": "'",
    "\u00b4": "'", "`": "'", "\u02b9": "'", "\u02bb": "'", "\u02bc": "'", "\u02bd": "'", "\uff07": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"', "\u00ab": '"', "\u00bb": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-",
    "\u2212": "-", "\ufe58": "-", "\ufe63": "-", "\uff0d": "-",
    "\u2026": "...",
})
# A clause break survives punctuation stripping as this private-use character, then becomes a set of
# token positions; it never reaches the normalised text.
_BREAK = "\ue000"
# Sentence and clause punctuation, but not a decimal point or thousands comma between digits, and a
# dash only when it stands alone (" - ", "--"), not inside "self-harm".
_CLAUSE_PUNCT = re.compile(r"[!?;:\n\r]|(?<!\d)[.,]|[.,](?!\d)|\s-+\s|-{2,}")
_NOT_WORDLIKE = re.compile(rf"[^\w\s'{_BREAK}]|_")
_STRAY_APOSTROPHE = re.compile(r"(?<!\w)'|'(?!\w)")

# ASR and typing drop apostrophes; one spelling per contraction keeps the patterns short.
_SPELLING: dict[str, str] = {
    "cant": "can't", "cannot": "can't", "wont": "won't", "dont": "don't", "doesnt": "doesn't",
    "didnt": "didn't", "isnt": "isn't", "arent": "aren't", "wasnt": "wasn't", "werent": "weren't",
    "couldnt": "couldn't", "wouldnt": "wouldn't", "shouldnt": "shouldn't", "havent": "haven't",
    "hasnt": "hasn't", "hadnt": "hadn't", "aint": "ain't", "im": "i'm", "ive": "i've",
    "shes": "she's", "theyre": "they're", "youre": "you're",
}
# "<verb> not" becomes one token, so "can not breathe" and "can't breathe" are the same words.
_NOT_CONTRACTION: dict[str, str] = {
    "can": "can't", "do": "don't", "does": "doesn't", "did": "didn't", "is": "isn't", "are": "aren't",
    "was": "wasn't", "were": "weren't", "will": "won't", "could": "couldn't", "would": "wouldn't",
    "should": "shouldn't", "have": "haven't", "has": "hasn't", "had": "hadn't",
}


@dataclass(frozen=True)
class _Parsed:
    """The normalised utterance, its words, where each word starts, and which words open a clause."""

    text: str
    tokens: tuple[str, ...]
    starts: tuple[int, ...]
    breaks: frozenset[int]  # indices of tokens preceded by clause punctuation
    recent: bool  # something in the utterance says "now" (see _RECENCY_CUE); decided once, used per match


def _parse(text: str) -> _Parsed:
    s = unicodedata.normalize("NFKC", text.replace(_BREAK, " ").translate(_TYPOGRAPHIC))
    s = s.translate(_TYPOGRAPHIC).lower()
    s = _CLAUSE_PUNCT.sub(f" {_BREAK} ", s)
    s = _NOT_WORDLIKE.sub(" ", s)
    s = _STRAY_APOSTROPHE.sub(" ", s)
    tokens: list[str] = []
    breaks: set[int] = set()
    for raw in s.split():
        if raw == _BREAK:
            breaks.add(len(tokens))
            continue
        word = _SPELLING.get(raw, raw)
        if word == "not" and tokens and len(tokens) not in breaks and tokens[-1] in _NOT_CONTRACTION:
            tokens[-1] = _NOT_CONTRACTION[tokens[-1]]
            continue
        tokens.append(word)
    starts: list[int] = []
    offset = 0
    for token in tokens:
        starts.append(offset)
        offset += len(token) + 1
    text = " ".join(tokens)
    recent = _RECENCY_CUE.search(_RESOLVED.sub(" ", text)) is not None
    return _Parsed(text, tuple(tokens), tuple(starts), frozenset(b for b in breaks if b), recent)


def normalise(text: str) -> str:
    """The text the patterns see: NFKC, lowercase, ASCII apostrophes, "can't" for every spelling, no
    punctuation but apostrophes, single spaces. Digits are kept ("in 2019" is a history cue)."""
    return _parse(text).text


# --------------------------------------------------------------------------------------------------
# Pattern vocabulary. Patterns run on normalised text: single spaces, no punctuation, "can't" form.
# --------------------------------------------------------------------------------------------------


def _alt(*words: str) -> str:
    return "(?:" + "|".join(words) + ")"


_NEGATION_WORDS = (
    "not|no|never|none|without|isn't|aren't|wasn't|weren't|don't|doesn't|didn't|haven't|hasn't|won't|can't|"
    "couldn't|stopped"
)
# One filler word. Fillers never include a negation or a clause word, so "my chest x ray didn't hurt",
# "my chest is fine but my knee hurts" or "ate cereal and cleaned with bleach" do not join into a match.
_W = rf"(?:(?!(?:{_NEGATION_WORDS}|and|but|or|then|so|because|though|although)\b)[\w']+ )"
_G1, _G2, _G3, _G4, _G5 = (f"{_W}{{0,{n}}}" for n in range(1, 6))
# A filler that may be "and", for lists of body parts and symptoms: "my lips and eyes are puffing up",
# "my chest is burning and squeezing".
_L = rf"(?:(?!(?:{_NEGATION_WORDS}|but|or|then|so|because|though|although)\b)[\w']+ )"
_L4 = f"{_L}{{0,4}}"

_POSS = _alt("my", "his", "her", "their", "your", "the", "our", "its")
_SELF = _alt("my ?self", "him ?self", "her ?self", "them ?selves", "them ?self", "your ?self", "one ?self")
_AGE = (
    r"(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|a)"
    r" (?:year|month|week|day)s? old"
)
# Fever under three months old is an emergency on its own.
_UNDER_3_MONTHS = (
    r"(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|a) (?:week|day)s? old|"
    r"(?:one|two|three|1|2|3) months? old"
)
_CHILD = _alt(
    "baby", "babies", "newborn", "infant", "toddler", "child", "children", "kid", "kids", "son", "daughter",
    "little one", "boy", "girl", "grandson", "granddaughter", "grandchild", "grandkid", "niece", "nephew",
    _AGE,
) + "(?:'s)?"
_PERSON = _alt(
    _CHILD, "he", "she", "they", "he's", "she's", "they're", "husband", "wife", "partner", "dad", "mom",
    "mum", "father", "mother", "grandma", "grandpa", "grandmother", "grandfather", "brother", "sister",
    "friend", "roommate", "neighbou?r", "patient", "man", "woman", "someone", "somebody",
)
# Everything a caller might say for "cannot / is unable to".
_CANT = _alt(
    "can't", "couldn't", "can barely", "can hardly", "could barely", "could hardly", "barely", "hardly",
    "unable to", "not able to", "isn't able to", "wasn't able to", "aren't able to",
    "haven't been able to", "hasn't been able to", "no longer able to", "can't seem to", "not really able to",
)
_PILLS = _alt(
    "pills?", "tablets?", "meds", "medications?", "medicines?", "capsules?", "tylenol", "paracetamol",
    "acetaminophen", "aspirin", "ibuprofen", "advil", "insulin", "opioids?", "oxy\\w*", "xanax",
    "painkillers?", "pain killers?", "sleeping pills?", "antidepressants?", "gummies", "vitamins", "edibles",
    "lithium",
)
_CHEMICAL = _alt(
    "bleach", "chemicals?", "cleaners?", "cleaning (?:product|fluid|liquid|stuff|solution|spray)s?",
    "anti ?freeze", "detergent", "laundry (?:pod|pods|detergent)", "tide pods?",
    "(?:detergent|washing|dishwasher) pods?", "dishwasher (?:tablet|soap|detergent)s?", "dish soap",
    "button batter(?:y|ies)", "batter(?:y|ies)", "magnets?", "poison(?! (?:ivy|oak|sumac))", "rat poison", "pesticides?",
    "insecticides?", "weed ?killer", "drain cleaner", "lye", "ammonia",
    "gasoline", "petrol", "kerosene", "lamp oil", "lighter fluid", "paint thinner", "turpentine",
    "windshield (?:washer )?fluid", "nail polish remover", "acetone", "methanol", "rubbing alcohol",
    "hand sanitizer", "vape (?:juice|liquid|pen)", "e ?liquid", "liquid nicotine", "nicotine",
)
_INGESTED = r"(?:took|taken|take|taking|swallowed|ate|eaten|popped|downed|drank|gave (?:him|her|them))"
_BOOZE = r"(?:vodka|whiske?y|alcohol|gin|rum|tequila|booze|liquor)"
_BLOOD = (
    r"blood(?! (?:tests?|pressure|work|sugars?|glucose|results?|draws?|type|count|levels?|thinners?|"
    r"donations?|bank|panel|orange|vessels?|cells?)\b)"
)
_BLUE = _alt("blue", "grey", "gray", "purple", "bluish", "greyish", "grayish", "dusky", "ashen", "mottled")
_LOOKS = _alt(
    "turn\\w*", "going", "gone", "went", "go", "is", "are", "was", "looks?", "looking", "looked", "seems?",
    "seemed", "'s", "so", "very", "really", "all", "kind of", "a bit", "bit", "getting", "got",
)
_SEVERE = _alt(
    "severe", "excruciating", "unbearable", "terrible", "worst", "intense", "extreme", "horrible",
    "agoni[sz]ing", "really bad", "very bad", "so bad", "awful",
)
_ALTERED = (  # a changed mental state, the companion of many red flags
    r"confus\w*|disorient\w*|not making sense|making no sense|(?:can't|couldn't) think straight|"
    r"acting (?:weird|strange|funny|odd|differently|drunk|out of it)|out of it|won't (?:wake|answer|respond)|"
    r"unresponsive|passed out|slurr\w*|seiz\w*|really slow|so slow|sleepy|drows\w*"
)
# A knock to the head is an emergency only with what may follow it, said anywhere in the utterance.
_HEAD_BLOWS = (
    (r"(?:hit|hits|hitting|bumped|bump|bumps|banged|bang|bangs|smacked|whacked|knocked|struck|bashed|"
     r"cracked|hurt|injured|split|slammed|landed on) "
     rf"(?:the (?:back|side|front|top) of )?{_POSS} (?:head|skull|forehead|temple)"),
    r"(?:hit|struck|kicked|punched|knocked|whacked|smacked|bonked) (?:in|on) the head",
    r"head (?:injury|injuries|trauma|wound|knock|bump)",
    rf"(?:fell|fallen|fall|falling) {_G5}(?:on|onto|hit|hitting) (?:{_POSS} )?(?:head|skull)",
    rf"(?:fell|fallen|fall|falling|dropped) {_G4}head first",
    r"concuss\w*",
)
_AFTER_A_HEAD_BLOW = (
    r"confus\w*|disorient\w*|vomit\w*|throw\w* up|threw up|puk\w*|being sick|been sick|drows\w*|sleepy|"
    r"(?:can't|doesn't|don't|didn't|couldn't) remember|memory|forgetful|passed out|pass(?:ing)? out|"
    r"knocked out|blacked out|black(?:ing)? out|lost consciousness|unconscious|slurr\w*|dizz\w*|"
    r"not making sense|making no sense|acting (?:weird|strange|funny|odd|differently|drunk)|seiz\w*|"
    r"fitting|clear fluid|bleeding from (?:the |his |her |my |their )?(?:ears?|nose)|pupils?|"
    r"blood thinners?|warfarin|eliquis|xarelto|anticoagula\w*|(?:worst|severe|terrible|bad) headache|"
    r"won't wake|can't stay awake|blurr\w*|double vision|seeing double|"
    r"(?:weak|numb)(?:ness)? (?:on|in) (?:one|the left|the right|his left|his right|her left|her right) side"
)
# A diagnosis word used as a modifier is an errand, not an event: "my seizure medication", "stroke clinic".
_NOT_ERRAND = (
    r"(?! (?:medications?|medicines?|meds|pills?|prescriptions?|refills?|clinic|specialist|doctor|"
    r"neurologist|cardiologist|appointments?|follow ?up|check ?up|rehab\w*|unit|ward|cent(?:er|re)|"
    r"support|prevention|awareness|risks?|tests?|screening|insurance|survivors?|nurse|team|programm?e?|"
    r"class(?:es)?|group|action plan|plan|protocol|form|paperwork|research|study|trial|kit)\b)"
)


@dataclass(frozen=True)
class _Category:
    """One category's patterns, as data.

    `symptoms` can be cancelled by a negation cue before them; `negative_symptoms` contain their own
    negation ("can't breathe") and never are; `combos` are (anchor or anchors, companions): the anchor
    escalates only when every companion pattern also appears, un-negated, somewhere in the utterance
    ("hit his head" + "vomiting"). History applies to all three.
    """

    kind: Severity
    symptoms: tuple[str, ...] = ()
    negative_symptoms: tuple[str, ...] = ()
    combos: tuple[tuple[str | tuple[str, ...], tuple[str, ...]], ...] = ()


# Crisis categories first: a crisis outranks an emergency. Within each kind, more specific categories
# come first so the reported category is the most useful one ("my baby isn't breathing" -> child).
_CATEGORIES: dict[str, _Category] = {
    "suicide": _Category(
        "crisis",
        symptoms=(
            r"suicid\w*",
            rf"(?:kill|killing|killed|kills) {_SELF}(?! laughing)",
            rf"(?:end|ending|ended|take|taking|took) {_POSS} (?:own )?life",
            r"end it all|(?:end|ending) (?:it|things|everything) (?:all|tonight|for good)",
            (r"(?:want|wanna|wants|going|gonna|ready|plan\w*|thinking about|thought about|think about|"
             r"thinking of) (?:to )?(?:end|ending) (?:it|things|everything)(?! (?:with|between|off|early|"
             r"there|here|now|at|on)\b)"),
            (r"(?:i'm|i am|he's|she's) (?:going to |gonna )?(?:end|ending) (?:it|things|"
             r"everything)(?! (?:with|between|off|early|there|here|now|at|on)\b)"),
            (r"(?:drive|driving|crash|crashing|steer|steering) (?:my |his |her |the )?car (?:into|off) (?:a |"
             r"the )?(?:wall|tree|pole|bridge|river|lake|cliff|oncoming traffic)"),
            r"(?<!n't )(?<!n't really )(?<!never )(?:want|wants|wanted|wanna|ready|plan\w*) to die",
            (r"(?:wish|wished|wishes|wishing) (?:i|he|she|they) (?:was|were|could be|could|would|"
             r"'d) (?:just )?(?:dead|die|disappear|go to sleep forever)"),
            r"(?:want|wanna|wish i could) (?:to )?disappear (?:forever|for good|permanently)",
            r"better off (?:dead|without (?:me|him|her|them)|if (?:i|he|she) (?:was|were) (?:dead|gone))",
            (rf"(?:hang|hanging|hanged|shoot|shooting|shot|drown|drowning|poison|poisoning|poisoned|"
             rf"stab) {_SELF}"),
            (rf"(?:jump|jumping|jumped|throw\w* {_SELF}) (?:off|from) (?:a |the |this )?(?:bridge|building|"
             rf"roof|cliff|balcony|ledge|overpass|parking garage)"),
            (r"(?:going to|gonna|about to|want to|wanna) jump(?! (?:in|into|on|rope|start|ahead|the gun|"
             r"through|at)\b)"),
            r"(?:jump|step|walk)\w* in front of (?:a |the )?(?:train|bus|car|truck)",
            rf"(?:overdos\w*|od'?d|od|took {_G4}{_PILLS}) {_G2}(?:on purpose|deliberately|intentionally)",
            r"(?:on purpose|deliberately|intentionally) (?:overdos\w*|od'?d|took|swallowed)",
            rf"(?:took|take|taking|swallowed) {_G5}to (?:die|end (?:it|things|{_POSS} life)|kill {_SELF})",
            r"tried to (?:overdose|od|end it|take (?:my|his|her|their) (?:own )?life)",
            rf"enough (?:pills |tablets |meds )?to (?:overdose|od|kill {_SELF}|die|end it)",
            r"how many (?:pills|tablets) (?:it )?(?:would|will|does|to) (?:take|kill)",
            rf"ways to (?:die|kill {_SELF}|end (?:it|{_POSS} life))",
            r"nothing (?:left )?to live for",
            (r"want (?:it all|everything) to (?:be over|end|stop)|want it (?:all )?to (?:be over|end|"
             r"stop) (?:forever|for good|permanently)"),
            r"(?:i'm|i am) (?:just |such )?a burden|burden (?:on|to) (?:everyone|everybody|my family)",
            rf"(?:pills|tablets|meds) {_G3}(?:lined up|ready(?! for)|(?:all )?counted out|saved up|stockpiled)",
            rf"(?:counted|counting|saving|saved|stockpil\w*|hoard\w*) (?:out |up )?(?:all )?{_G2}(?:pills|tablets|meds)",
            (r"(?:know|knows|planned|figured out) (?:exactly )?how (?:i'm|i am|i'd|i would|i'll|"
             r"to) (?:going to |gonna )?do it"),
            rf"(?:use|using) (?:it|a knife|the knife|a gun|the gun) on {_SELF}",
            r"goodbye forever|said goodbye to (?:everyone|everybody)|suicide note|goodbye (?:note|letter)s?",
            (r"(?:wrote|written|writing|left) (?:letters?|notes?|a letter|a note) (?:to|for) (?:my |his |her )?"
             r"(?:kids|children|family|wife|husband|parents|mom|dad|son|daughter)"),
            r"this is (?:my )?goodbye|(?:posted|texted|messaged|sent)(?: \S+){0,6} goodbye",
            # A plan of one's own, with a time or the act named (C-SSRS: "have you worked out how?").
            (r"(?:i|i've|i have|i've got) (?:made |got |have |had )?a plan(?: \S+){0,6} (?:end it|kill|die|"
             r"(?:i'm )?(?:going to|gonna) do it)"),
            r"(?:started|running|left|turned on) the (?:car|engine)(?: running)? in (?:the|a|my) (?:closed )?garage",
            rf"giv\w* away {_POSS} (?:stuff|things|belongings|possessions)",
            r"tired of (?:being alive|life|living|being here|existing)",
            r"(?:no one|nobody) (?:would|will) miss me|(?:no one|nobody) cares if i live or die",
            r"think\w* about (?:death|dying) (?:all the time|constantly|every day|a lot)",
            rf"what i (?:might|could|will|would) do to {_SELF}",
        ),
        negative_symptoms=(
            (r"(?:don't|doesn't|didn't) (?:really )?want to (?:live|be alive|exist|go on|keep living|"
             r"keep going|be here any ?more|be around any ?more|wake up(?! early| at| before| so| in| for|"
             r" my| him| her| the))"),
            (r"(?:no|not any) (?:reason|point) (?:for me )?(?:to|in|for) (?:live|living|go on|going on|"
             r"being alive|be alive|being here|be here|keep going|keep living|carry on|carrying on|continue)"),
            (r"(?:don't|can't) see the point(?: (?:any ?more|of (?:living|life|being alive|going on|"
             r"anything)|in (?:living|life|anything|going on)))"),
            r"(?:what's|what is) the point (?:of|in) (?:even )?(?:living|being (?:here|alive)|life|going on)",
            (r"(?:don't|can't|couldn't) see (?:any|a|the) (?:reason|point)(?: \S+){0,2} (?:to|in|for|of) "
             r"(?:live|living|go on|going on|keep going|keep living|carry on|carrying on|being alive|life)"),
            r"(?:life|living)(?: is| isn't|'s)? (?:not|isn't) worth (?:it|living)",
            (r"(?:wish|wished|wishing) (?:(?:i|he|she) (?:wasn't|weren't|was never|had never been)|(?:i'd|"
             r"he'd|she'd) never been) (?:alive|born|here|around)"),
            r"(?:wish|wished|wishing) (?:i|he|she) could (?:go to sleep|sleep) and (?:not|never) wake up",
            r"think\w* about (?:not|never) waking up",
            r"can't (?:go on|keep going)(?: like this)? any ?more",
            r"(?:easier|better)(?: off)?(?: for everyone)? if i (?:wasn't|weren't) (?:here|around|alive)",
            r"not (?:gonna|going to) be (?:here|around) (?:much|for) longer|not being around much longer",
            rf"(?:can't|couldn't) keep {_SELF} safe",
            rf"don't trust {_SELF} (?:right now|tonight|any ?more|alone)",
        ),
    ),
    "suicide_means": _Category(
        "crisis",
        combos=(
            # A means at hand and the thought of using it: "i've got my dad's gun and i'm thinking about it".
            (r"guns?|rope|razor|blades?|knife|knives|pills|bridge|ledge",
             ((r"thinking about (?:it|doing it|using it|ending it|jumping)|going to (?:do it|use it)|"
               r"gonna (?:do it|use it)"),)),
        ),
    ),
    "self_harm": _Category(
        "crisis",
        symptoms=(
            r"self ?harm\w*",
            r"self ?injur\w*",
            (rf"(?:want|wanna|wants|going|gonna|urge|urges|thinking about|thought about|think about|tempted|"
             rf"feel like|felt like|plan\w*|keep|kept|tried|trying|might|will) (?:to )?(?:hurt|hurting|cut|"
             rf"cutting|harm|harming|burn|burning|hit|hitting|punish|punishing) {_SELF}"),
            # Said of an accident, "i cut myself shaving" or "i fell and hurt myself" is not self-harm.
            (rf"(?<!fell and )(?<!fell and i )(?<!tripped and )(?<!slipped and )"
             rf"(?:hurt|hurting|cut|cutting|harm|harming|burn|burning|burned|burnt|hit|hitting|punish|punishing|"
             rf"starve|starving|injure|injuring|injured) {_SELF}"
             r"(?! (?:on(?! purpose)|with(?! (?:cigarettes?|a (?:cigarette|lighter|razor|blade)))|while|"
             r"when|at|shaving|cooking|slicing|chopping|playing|lifting|working|gardening|opening|"
             r"by accident|accidentally|in|doing|falling|exercising|running|trying|moving|carrying|during|"
             r"last)\b)"),
            rf"(?:slit|slitting|slash\w*) {_POSS} (?:own )?wrists?",
            (rf"(?:cut|cutting|cuts|burn|burning|scratch\w*) {_POSS} (?:arms|legs|wrists|thighs)(?! (?:on|"
             rf"while|when|shaving|by accident|accidentally)\b)"),
        ),
        combos=(
            (r"on purpose|deliberately|intentionally",
             ((r"cut\w*|hurt\w*|scratch\w*|burn\w*|bleed\w*|harm\w*|overdos\w*|pills|tablets|punch\w*|"
               r"bang\w*"),)),
        ),
    ),
    "child": _Category(
        "emergency",
        symptoms=(
            rf"{_CHILD} {_G3}{_LOOKS} {_G1}{_BLUE}",
            rf"{_CHILD} {_G3}{_LOOKS} {_G1}(?:floppy|limp|lifeless|lethargic|listless|unresponsive)",
            (rf"{_CHILD} {_G4}breath\w* {_G3}(?:weird|funny|strange|odd|fast|rapid|hard|heavy|noisy|shallow|"
             rf"wrong|off|struggl\w*|labou?red|grunt\w*|wheez\w*|irregular|pauses?|gasp\w*|like (?:he|"
             rf"she)'s struggling)"),
            (rf"{_CHILD} {_G4}(?:struggling|struggles|working hard|labou?ring|grunting|gasping|wheezing|"
             rf"panting|fighting) (?:to |for |with )?(?:breath\w*|air)"),
            rf"{_CHILD} {_G4}(?:ribs|chest|belly|tummy|neck) {_G2}(?:sucking|pulling|caving|sinking) in",
            (rf"{_CHILD} {_G4}colou?r {_G2}(?:off|weird|funny|strange|bad|wrong|not right|changed|pale|blue|"
             rf"grey|gray)"),
            rf"(?:newborn|infant|{_UNDER_3_MONTHS}) {_L4}(?:fever|temperature|temp)",
            rf"soft spot {_G2}(?:bulging|sunken|swollen|sinking)|(?:bulging|sunken) soft spot",
        ),
        negative_symptoms=(
            (rf"{_CHILD} {_G3}(?:won't|isn't|can't|not|doesn't|hasn't|wasn't|aren't|stopped|stops) (?:wake|"
             rf"waking|be woken|be roused|rouse|respond\w*|breath\w*|moving|move)"),
            rf"{_CHILD} {_G3}(?:won't|isn't|doesn't|not) (?:wake|waking) up",
        ),
        combos=(
            (rf"{_CHILD} {_G3}{_LOOKS} {_G1}(?:pale|white|clammy|sweaty)",
             ((r"breath\w*|floppy|limp|lethargic|won't wake|fever|sleepy|drowsy|not acting right|"
               r"not (?:himself|herself)|won't (?:look at|respond)"),)),
            (_CHILD,
             ((r"floppy|(?<!a )(?<!with a )limp|lethargic|listless|lifeless|mottled|unresponsive|won't wake|"
               r"can't wake|not acting right|not (?:himself|herself)"),)),
        ),
    ),
    "head_injury": _Category("emergency", combos=((_HEAD_BLOWS, (_AFTER_A_HEAD_BLOW,)),)),
    "allergy": _Category(
        "emergency",
        symptoms=(
            (rf"(?:swell\w*|swollen|puff\w* up|blow\w* up|ballooning) {_L4}(?:lips?|tongue|throat|face|mouth|"
             rf"airway)"),
            (rf"(?:lips?|tongue|face|mouth) {_L4}(?:swell\w*|swollen|puff\w* up|puffy|blow\w* up|ballooning|"
             rf"getting (?:big|bigger|fat|thick))"),
            rf"throat {_G3}(?:swelling|swollen|swelling up|puff\w* up)",
            rf"tongue {_G3}(?:thick|swollen)",
            r"eyes? (?:are |is )?swollen shut",
            rf"(?:throat|airway) {_L4}(?:clos\w*|tight\w*|constrict\w*|narrow\w*|blocked)",
            r"anaphyla\w*" + _NOT_ERRAND,
            (rf"(?:used|use|gave|give|giving|using|jabbed|injected|inject|administered|had to use|"
             rf"needed) {_G3}(?:epi ?pens?|epinephrine|adrenaline|auvi ?q)"),
        ),
        combos=(
            (r"allerg\w*|(?:having|had|has) a reaction|reacting to|(?:bee|wasp|hornet) sting|stung",
             # Whole-body signs only: a local swelling where the bee stung is not anaphylaxis.
             ((r"breath\w*|wheez\w*|tongue|lips?|hives (?:all over|everywhere)|covered in hives|(?:getting|"
               r"got) hives|dizz\w*|faint\w*|pass\w* out|light ?headed|collaps\w*|vomit\w*|throw\w* up|"
               r"throat (?:is |feels )?(?:tight|closing|swelling|swollen)|hoarse"),)),
        ),
    ),
    "poisoning": _Category(
        "emergency",
        symptoms=(
            r"overdos\w*",
            r"od(?:'d|'ed|ed|ing|'ing)?",
            r"o d(?: d)?",
            (rf"{_INGESTED} {_G3}too many(?! (?:times|days|hours|minutes|weeks|calls|people|questions|"
             rf"steps)\b)"),
            (rf"{_INGESTED} {_G3}too much(?: of)? (?:{_G2}(?:{_PILLS}|{_CHEMICAL}|{_BOOZE})|(?:it|them)\b|"
             rf"(?= *$))"),
            (rf"{_INGESTED} {_G3}(?:a lot of|lots of|loads of|a bunch of|a handful of|handful of|a whole|"
             rf"an entire) {_G1}(?:{_PILLS}|{_BOOZE})"),
            # "I took all my morning meds" is adherence; "all ... at once" is not.
            rf"{_INGESTED} {_G5}(?:{_PILLS}|them|it) (?:all )?at once",
            (rf"(?:whole|entire|full) (?:bottle|pack|packet|box|strip|sheet|blister pack|bag|"
             rf"jar) of {_G1}(?:{_PILLS}|{_BOOZE})"),
            (r"(?:took|swallowed|ate|drank|downed|finished|emptied) (?:the|a) (?:whole|entire|"
             r"full) (?:bottle|pack|packet|box)"),
            (rf"(?:swallow\w*|drank|drunk|drink\w*|ate|eaten|eat\w*|ingest\w*|got into|chew\w*|lick\w*|"
             rf"sucked on|bit|bite|bit into|inhal\w*|sprayed) {_G4}{_CHEMICAL}"),
            (rf"{_CHILD} {_G3}(?:swallowed|ate|eaten|chewed|got into|drank|drunk|licked|sucked on|bit|"
             rf"found) {_G4}(?:{_PILLS}|{_CHEMICAL})"),
            r"(?<!food )poison(?:ed|ing|s|ous)?\b(?! ivy| oak)",
            r"carbon monoxide|(?:co|carbon monoxide) (?:alarm|detector) (?:is )?(?:going off|went off)",
            (rf"(?:generator|exhaust|car|engine|heater|furnace) fumes|(?:breath\w* in|inhal\w*) {_G3}fumes|"
             r"fumes from (?:the |a )?(?:generator|car|engine|exhaust|heater|furnace|grill)"),
            r"(?:narcan|naloxone)",
        ),
        combos=(
            ((r"double (?:dose|doses|(?:my|his|her|their) dose)|(?:took|taken|gave) (?:it|them|(?:my|his|"
              r"her) \w+ (?:pills|meds|medication|dose)) twice|extra dose|wrong (?:pills|medication|meds|"
              r"medicine)"),
             ((r"dizz\w*|faint\w*|sleepy|drows\w*|slow|confus\w*|vomit\w*|throw\w* up|pass\w* out|weak|"
               r"won't wake|breath\w*|heart|chest|not making sense"),)),
        ),
    ),
    "cardiac": _Category(
        "emergency",
        symptoms=(
            (rf"chest {_L4}(?:pains?|pained|pressure|tight|tightness|tightening|heavy|heaviness|hurts?|"
             rf"hurting|aches?|aching|squeez\w*|crush\w*|discomfort|killing (?:me|him|her)|on fire|"
             rf"constrict\w*|clench\w*)"),
            (rf"(?:pains?|pressure|tightness|heaviness|aches?|aching|hurt\w*|discomfort|squeez\w*|crush\w*|"
             rf"weight|elephant|tight|something heavy) {_G3}(?:in|on|across|around|behind|under|through|"
             rf"of) (?:the (?:middle|center|centre|left side|left|front) of )?{_POSS} (?:chest|breast ?bone|"
             rf"sternum)"),
            r"(?:tight|heavy|crushing|squeezing|sharp|stabbing|painful|aching|tightening) chest",
            (rf"chest and (?:{_POSS} )?(?:left )?(?:arm|arms|jaw|shoulder|back) {_G2}(?:hurt\w*|aches?|"
             rf"aching|pains?)"),
            (r"(?<!almost gave me a )(?<!nearly gave me a )(?<!almost give me a )(?<!nearly had a )"
             r"(?<!almost had a )(?:heart|hard) attacks?(?! when i (?:saw|heard|got|opened|read))" + _NOT_ERRAND),
            r"cardiac arrest",
            rf"heart {_G2}(?:hurts|hurting|pains?)",
            rf"(?:something(?:'s| is) wrong with|i think it's) {_POSS} heart",
            (rf"(?:pains?|aches?|aching|pressure|tightness|discomfort|numbness|tingling|hurt\w*|it|it's|that|"
             rf"which) {_G3}(?:radiat\w*|spread\w*|shoot\w*|going|goes|moving|travel\w*|runs|"
             rf"running) (?:down|into|to|up|through) {_POSS} (?:left )?(?:arms?|jaw|shoulders?|neck|"
             rf"back(?! (?:yard|garden|door|room|porch|seat)\b))"),
            rf"left arm {_G3}(?:numb\w*|tingl\w*|heavy|weak|dead)",
            (rf"(?:jaw|left arm|left shoulder) and (?:{_POSS} )?(?:jaw|left arm|"
             rf"left shoulder) {_G2}(?:hurt\w*|pains?|aches?|aching)"),
            r"pains? in (?:my|his|her) (?:jaw|left arm) and (?:my|his|her) (?:chest|left arm|jaw)",
            r"(?:doing|giving|started|starting|performing|do|give|need|needs) cpr",
            (rf"(?:defibrillator|icd|aed|pacemaker) {_G2}(?:shock\w*|went off|fired|going off|"
             rf"keeps going off)"),
            r"tearing (?:pain|sensation|feeling)",
        ),
        negative_symptoms=(
            (r"(?:no|can't find (?:a|his|her)|can't feel (?:a|his|her)|without a|there's no|(?:doesn't|don't|"
             r"didn't) have a|hasn't got a) (?:pulse|heart ?beat)"),
            r"(?:heart|pulse) (?:has |just )?stopped",
            (rf"(?:nitro\w*|gtn|spray) {_G2}(?:isn't|not|doesn't|didn't|hasn't|no longer|"
             rf"won't) {_G1}(?:help\w*|work\w*)"),
        ),
        combos=(
            ((r"heart (?:is |keeps |'s )?(?:racing|pounding|beating (?:really |so |very )?(?:fast|hard)|"
              r"fluttering|skipping|going crazy|thumping|going (?:a mile a minute|so fast|really fast))|"
              r"palpitations?|racing heart(?:beat)?|pounding heart|heart rate (?:is |of )?(?:over|above) \d+|"
              r"pulse (?:is )?racing"),
             ((r"dizz\w*|faint\w*|(?:pass\w*|black\w*) out|light ?headed|about to (?:faint|pass out|"
               r"collapse)|chest|breath\w*|collaps\w*|sweat\w*|vision|going to (?:faint|pass out)"),)),
            (rf"(?:jaw|left shoulder|left arm) {_L4}(?:hurt\w*|pains?|aches?|aching)",
             (r"sweat\w*|clammy|short of breath|nause\w*|dizz\w*",)),
        ),
    ),
    "breathing": _Category(
        "emergency",
        symptoms=(
            (r"(?:trouble|difficulty|difficulties|difficult|problems?|struggling|struggle|struggles|"
             r"hard time|hard|labou?red|labou?ring|fighting|working hard|painful) (?:(?:to |with )?breath\w*|"
             r"for (?:breath|air))"),
            r"hurts? to breathe",
            r"short(?:ness)? (?:of|o) breath",
            r"breathless\w*",
            r"gasp\w*",
            r"chok(?:e|es|ed|ing)(?! up\b)(?! (?:on|over) (?:my|his|her) words)(?! back)",
            r"suffocat\w*",
            rf"(?:lips?|face|mouth|skin|fingers?|finger ?tips|finger ?nails|nails|tongue|toes) {_G3}{_BLUE}",
            (rf"(?<!hair )(?<!hair is )(?<!hair's )(?:turn\w*|going|gone|went) (?:a bit |kind of |sort of |"
             rf"really |very |all )?{_BLUE}"),
            (rf"wheez\w* {_G3}(?:badly|bad|a lot|so much|so bad|really bad|really hard|terribl\w*|heavily|"
             rf"loud\w*)"),
            r"(?:bad|badly|severe|heavy|terrible|really bad) wheez\w*",
            r"(?:severe|bad|serious|major) asthma|asthma attack",
            (rf"breathing {_G2}(?:real |really |very |so )?(?:fast|rapid|shallow|laboured|labored|noisy|"
             rf"raspy|strange|weird|funny|irregular|bad|badly|terrible|awful)"),
            rf"(?:ribs|chest) {_G2}(?:sucking|pulling|caving) in",
            rf"something (?:stuck|lodged) in {_POSS} (?:throat|airway|wind ?pipe)",
            r"stridor|high pitched (?:noise|sound|squeak|whistle|wheeze)",
            rf"collapsed lung|pneumothorax|pulmonary embol\w*|blood clots? in {_POSS} lungs?",
        ),
        negative_symptoms=(
            (rf"{_CANT} (?:really |properly |even )?(?:breathe|breath|breathing|get (?:any |enough )?(?:air|"
             rf"a breath|{_POSS} breath)|catch {_POSS} breath|take a (?:deep |full )?breath)"),
            rf"{_CANT} (?:finish|complete|get out|say) (?:a |my |full |whole )?sentences?",
            r"(?:not|isn't|aren't|wasn't|stopped|stops|stop|no longer|quit|barely|hardly) breathing",
            (r"(?:not|isn't|aren't|can't|couldn't|barely|hardly) (?:getting|get) (?:enough |any )?(?:air|"
             r"oxygen)"),
            r"(?:doesn't|don't|didn't) (?:seem|look|appear) to be breathing",
            (rf"(?:inhaler|nebuli[sz]er|puffer|albuterol|ventolin|salbutamol) {_G2}(?:isn't|not|doesn't|"
             rf"didn't|won't|hasn't|aren't|wasn't|no longer) (?:really |even )?(?:help\w*|work\w*|"
             rf"doing anything|do anything)"),
            rf"(?:inhaler|nebuli[sz]er|puffer) {_G2}(?:does nothing|is useless|no help|not doing anything)",
        ),
    ),
    "stroke": _Category(
        "emergency",
        symptoms=(
            (rf"face {_G3}(?:droop\w*|drops|dropping|dropped|fell|falling|sagg\w*|sag|sags|lopsided|uneven|"
             rf"crooked|numb)"),
            rf"(?:droop\w*|sagg\w*|crooked|lopsided) {_G1}(?:face|mouth|smile|eyelid|side of {_POSS} face)",
            rf"(?:mouth|smile) {_G2}(?:droop\w*|crooked|lopsided|uneven)",
            r"slurr\w*",
            (rf"speech {_G2}(?:slurred|garbled|jumbled|weird|strange|funny|off|gibberish|not making sense|"
             rf"making no sense)"),
            rf"words {_G2}(?:jumbled|garbled|mixed up|wrong|slurred|coming out wrong)",
            r"(?:talking|speaking) gibberish",
            (rf"(?:trouble|difficulty|problems?|hard time|struggling) (?:with )?(?:speaking|talking|speech|"
             rf"finding (?:the |{_POSS} )?words|getting (?:the |{_POSS} )?words out|forming words)(?! to\b|"
             rf" with\b| about\b)"),
            rf"(?:one|left|right) side {_G3}(?:weak\w*|numb\w*|paraly\w*|droop\w*|limp|dead|heavy|tingl\w*)",
            (rf"(?:weak\w*|numb\w*|paraly\w*) (?:on|in|down) (?:one|the left|the right|{_POSS} left|"
             rf"{_POSS} right|{_POSS}) side"),
            (r"(?:leaning|falling|tilting|drifting|veering|listing) (?:over )?to (?:one|the left|"
             r"the right) side"),
            r"(?:arm|leg|hand|face) (?:suddenly |just )?(?:went|gone|going) (?:numb|weak|limp|dead)",
            (rf"sudden\w* {_G3}(?:numb\w*|weak\w*|paraly\w*|confus\w*|lost {_POSS} balance|loss of balance|"
             rf"blind\w*|double vision|seeing double|lost (?:{_POSS} )?(?:vision|sight)|(?:trouble|"
             rf"difficulty) (?:with )?(?:speaking|talking|speech|walking|seeing|balance|vision))"),
            rf"(?:all of a sudden|out of nowhere) {_G3}(?:numb\w*|weak\w*|confus\w*|blind\w*)",
            (rf"(?:lost|losing|loss of) (?:the )?(?:vision|sight|{_POSS} (?:vision|sight))(?! (?:insurance|"
             rf"plan|coverage|of)\b)"),
            r"(?:went|gone|going) blind",
            r"worst headache",
            r"(?:thunderclap|explosive) headache",
            (rf"(?:sudden\w*|out of nowhere) {_G2}(?:severe|terrible|excruciating|horrible|awful|splitting|"
             rf"intense|bad|worst) headache"),
            r"strokes?(?! of (?:luck|genius|midnight|bad luck|good luck|the pen|the clock))" + _NOT_ERRAND,
            r"transient isch(?:a)?emic attack",
        ),
        negative_symptoms=(
            (rf"{_CANT} (?:speak|talk|get (?:the |{_POSS} |any )?words out|find (?:the |{_POSS} )?words|"
             rf"form words|say (?:words|anything)|understand (?:what|anything|words|me|us))(?! (?:right now|"
             rf"now|long|to|about|much|for|at the moment|today|english|spanish|french|the language)\b)"),
            rf"{_CANT} (?:move|feel|lift|use) {_POSS} (?:left |right )?(?:arm|leg|hand|face|side)",
            rf"{_CANT} see (?:out of )?(?:one|{_POSS} (?:left |right )?) ?eye",
            (rf"(?:never|not ever) (?:had|felt|experienced) (?:a |an |such a )?{_G1}(?:headache|"
             rf"head pain) (?:this|so|that) (?:bad|severe|intense|strong|painful)"),
            (rf"(?:never|not ever) (?:had|felt|experienced) (?:a |an |such a )?{_G1}(?:headache|"
             rf"head pain) like this"),
        ),
    ),
    "bleeding": _Category(
        "emergency",
        symptoms=(
            (rf"(?:heavy|heavily|severe|severely|uncontrolled|uncontrollabl[ey]|massive|profuse|profusely|"
             rf"excessive|excessively|serious|seriously|major|lots of|a lot of|so much) {_G1}bleed\w*"),
            (rf"bleed\w* {_G2}(?:heavily|profusely|badly|a lot|so much|everywhere|like crazy|non ?stop|"
             rf"all over|really bad|so bad|heavy|uncontrollably|like a tap|through)"),
            r"bled (?:a lot|heavily|so much|everywhere|all over|through)",
            r"(?:keeps?|kept) (?:on )?bleeding",
            rf"(?:still|been) bleeding {_G3}(?:hours?|minutes?|an hour|half an hour|all day|since)",
            rf"soak\w* {_G3}(?:through|towels?|pads?|bandages?|shirt|clothes|sheets?|gauze)",
            rf"blood {_G1}(?:is )?(?:spurting|pouring|gushing|squirting|everywhere|all over|pumping out)",
            (r"(?:blood|bleed\w*|nose ?bleed\w*|cut|wound|gash|laceration)(?: \S+){0,8} (?:pouring|gushing|"
             r"spurting|squirting|pumping)(?: out)?"),
            rf"(?:spurt|gush|pour|squirt|pump)\w* (?:out )?{_G2}{_BLOOD}",
            rf"(?:cough\w*|vomit\w*|puk\w*|spit\w*) (?:up )?{_G2}{_BLOOD}",
            rf"(?:throw\w*|threw|bring\w*|brought) up {_G2}{_BLOOD}",
            rf"blood in {_POSS} (?:vomit|sick|puke)",
            rf"(?:vomit|sick|puke) {_G2}(?:{_BLOOD}|bloody)",
            r"bloody (?:vomit|sick|puke)",
            r"(?:vomit\w*|puk\w*|throw\w* up|threw up|sick|spit\w* up)(?: \S+){0,8} coffee grounds?",
            rf"(?:a lot of|lots of|so much|loads of|tons of|a pool of|pools of) {_BLOOD}",
            (rf"(?:deep |bad |big |long )?(?:cut|gash|wound|slash\w*|stab\w*) {_G2}(?:on |in |"
             rf"to )?{_POSS} (?:neck|throat|groin|artery)"),
            (rf"(?:tarry|tar like|like tar) (?:poop|stool|stools|poo)|(?:poop|pooping|poo|stool|"
             rf"stools) {_G3}(?:like tar|tarry)"),
            r"ha?emorrhag\w*",
        ),
        negative_symptoms=(
            (rf"bleed\w* {_G2}(?:won't|doesn't|isn't|hasn't|didn't|can't|never|still hasn't|still won't|"
             rf"still isn't|not) (?:\w+ )?stop\w*"),
            (r"bleed\w* (?:\w+ ){0,3}?(?:and|but) (?:it|it's|this|the blood)(?: just| still)? (?:won't|isn't|"
             r"doesn't|hasn't|didn't|never|not) (?:\w+ )?stop\w*"),
            (rf"(?:won't|never|hasn't|didn't|doesn't|can't|couldn't|unable to|not able to) {_G2}stop (?:the |"
             rf"this |{_POSS} )?bleed\w*"),
            r"can't get (?:it|the bleeding|this|the blood) to stop",
        ),
        combos=(
            # Bleeding on a blood thinner, with blood where it should not be or a body that is failing.
            (r"bleed\w*|blood in (?:my|his|her|their) (?:pee|urine)|(?:pee|urine) (?:is )?(?:red|bloody)",
             (r"warfarin|blood thinners?|eliquis|xarelto|coumadin|anticoagula\w*|heparin",
              (r"weak|dizz\w*|faint\w*|light ?headed|pale|(?:pee|urine) (?:is )?(?:red|bloody)|"
               r"blood in (?:my|his|her|their) (?:pee|urine)|vomit\w*|cough\w*|black"))),
        ),
    ),
    "pregnancy": _Category(
        "emergency",
        symptoms=(
            r"ectopic",
            r"cord (?:is )?(?:coming out|hanging out|prolaps\w*)",
        ),
        combos=(
            (r"pregnan\w*|weeks along",
             ((rf"bleed\w*|{_SEVERE} (?:pain|cramp\w*|headache)|(?:pain|cramp\w*|belly|stomach|"
               rf"tummy) {_G3}(?:hurts? )?{_SEVERE}|{_CANT} feel (?:the )?baby (?:moving|move|kick\w*)|"
               rf"baby (?:isn't|hasn't been|stopped|has stopped) moving|blurr\w* vision|"
               rf"vision {_G2}blurr\w*|cord {_G2}(?:coming out|hanging out)"),)),
        ),
    ),
    "diabetic": _Category(
        "emergency",
        combos=(
            ((r"diabet\w*|(?:blood )?sugar (?:is |was |'s )?(?:really |very |so )?(?:low|high|crashing|"
              r"dropping)|hypoglyc\w*|insulin|type (?:one|1)\b|(?:meter|monitor|sensor|glucometer|cgm|dexcom|"
              r"libre)(?: \S+){0,3} (?:says|said|reads|shows|showing|reading) (?:just )?(?:low|lo|high|hi)\b"),
             (_ALTERED,)),
        ),
    ),
    "neuro": _Category(
        "emergency",
        symptoms=(
            r"seiz(?:ure|ures|ing|ed)" + _NOT_ERRAND,
            r"convuls\w*",
            r"(?:having|had|has|have|having another) (?:a |an )?(?:fit|fits|epileptic fit)",
            r"(?:he's|she's|is|are|they're|started|keeps|been|was|baby's|son's|daughter's|child's) fitting",
            r"status epilepticus|epileptic (?:attack|seizure)",
            r"eyes (?:are |have )?(?:rolled|rolling) back",
            r"(?:passed|passing|pass|passes) out",
            r"(?:fainted|fainting|faints)",
            r"(?:feel|feels|feeling|felt|going to|gonna|about to) (?:really |very |a bit |so )?faint",
            r"(?:blacked|blacking|black|blacks) out",
            r"collaps\w*",
            r"unconscious|unresponsive|lost consciousness|losing consciousness|keeled over",
            r"(?:was|got|been|is|he's|she's) knocked out",
            rf"(?:he|she|they|{_PERSON}) {_G1}(?:is )?(?:turning|gone|going) (?:all )?(?:limp|floppy)",
            r"(?:gone|went|going) (?:all )?(?:limp|floppy)",
            (r"(?:doesn't|don't|didn't|can't) (?:know|recogni[sz]e) (?:where (?:he|she|i|they) (?:is|am|are)|"
             r"who (?:i|he|she|they|we) (?:am|is|are)|me|us)"),
        ),
        negative_symptoms=(
            (r"(?:not|isn't|aren't|wasn't|won't|doesn't|didn't|no longer|stopped) (?:responding|responsive|"
             r"respond)"),
            r"no response",
            (r"(?:won't|isn't|not|doesn't|can't) (?:wake|waking) (?:up|him|her|them)(?! (?:in the mornings?|"
             r"early|on time|in time|for work|for school)\b)"),
            rf"(?:can't|couldn't) (?:wake|rouse) (?:him|her|them|{_POSS}|up)",
            (rf"{_PERSON}(?:'s|'re)?(?: is| are| has)? (?:isn't|aren't|not|stopped|hasn't been|"
             rf"has stopped) moving"),
        ),
        combos=(
            (r"(?:just )?staring (?:blankly|into space|off|at nothing)|just staring",
             (r"twitch\w*|jerk\w*|won't (?:answer|respond)|not (?:answering|responding)|shaking",)),
        ),
    ),
    "trauma": _Category(
        "emergency",
        symptoms=(
            rf"bone(?:s|'s)? {_G2}(?:sticking|poking|coming|popping) (?:out|through)",
            r"(?:can see|see|seeing|showing|exposed) (?:the |his |her |my )?bone",
            r"(?:open|compound) fracture",
            (rf"(?:sticking|poking|broke|broken|came|coming|went|gone) (?:out )?(?:of |"
             rf"through )(?:{_POSS} )?skin"),
            r"bent (?:the wrong way|backwards|at a (?:weird|funny|strange) angle)",
            r"(?:been|got|was|were|i'm|he's|she's|they've been|i've been|get) (?:shot|stabbed)",
            r"gun ?shot|stab wounds?|stabbed|impaled",
            r"(?:car|motorcycle|bike|motorbike|traffic|bus) (?:accident|crash|wreck|collision)",
            r"crashed (?:my|his|her|their|the|a) (?:car|motorcycle|bike|motorbike)",
            r"(?:hit|struck|knocked down) by a (?:car|truck|bus|vehicle|train|motorbike|motorcycle)|run over",
            (rf"(?:fell|fall|fallen|falling) {_G3}(?:off|from|down|out of) (?:a |the |{_POSS} )?(?:roof|"
             rf"ladder|building|balcony|cliff|horse|stairs|staircase|height|second floor|window|tree|"
             rf"scaffold\w*)"),
            r"amputat\w*|severed|cut off (?:my|his|her|their) (?:finger|thumb|hand|toe|arm|leg|foot)",
            r"electrocut\w*|electric(?:al)? shock|struck by lightning",
            r"(?:shocked|zapped|electrocuted) by (?:a |the )?(?:power ?line|live wire|high voltage|transformer)",
            (r"(?:fell|fallen|fall|falling)(?: \S+){0,10} (?:can't|couldn't|unable to|too much to) (?:get up|"
             r"stand(?: up)?|walk|move (?:his|her|my) (?:leg|hip))"),
            r"hip (?:hurts|is hurting) too much to (?:get up|stand|walk|move)",
            (r"drown\w*(?! in (?:paperwork|work|debt|bills|forms|emails?|laundry|homework|tasks|"
             r"appointments))|near drowning"),
            rf"(?:knife|nail|glass|metal|stick|rod) {_G2}(?:stuck|sticking|lodged|embedded) in",
        ),
        negative_symptoms=(
            r"can't get up (?:off|from) the (?:floor|ground)",
            rf"(?:fell|fallen) {_G4}can't (?:get up|move|stand)",
            rf"{_CANT} (?:feel|move) {_POSS} (?:legs|feet)",
        ),
    ),
    "burn": _Category(
        "emergency",
        symptoms=(
            (r"(?:severe|bad|major|serious|deep|large|big|huge|third degree|3rd degree|second degree|"
             r"2nd degree|chemical|electrical) burns?"),
            rf"burn\w* {_G2}(?:really |very |so )?(?:bad|badly)",
            r"(?:caught|catch|catching|was|is|went up|on) fire",
            rf"set {_SELF} on fire",
            (rf"burn\w* {_G2}(?:all over|over (?:most|half|a lot) of|whole (?:body|arm|leg|face|chest|back|"
             rf"hand))"),
            rf"whole (?:body|arm|leg|face|chest|back|hand|side) {_G2}(?:burn\w*|blister\w*)",
            r"burn\w* (?:and|&) blister\w*|blister\w* (?:all over|everywhere)|charred",
            rf"burn\w* {_G2}(?:chemicals?|acid|bleach|lye|gasoline|petrol|fire|flames)",
            (rf"(?:boiling|hot) (?:water|oil|grease) {_G4}(?:all over|over (?:{_POSS} )?(?:face|chest|body|"
             rf"baby|child))"),
            r"smoke inhalation|inhaled (?:a lot of |lots of )?smoke",
            (r"(?:burn\w*|scald\w*|boiling|hot (?:oil|water|grease)|fire)(?: \S+){0,12} skin (?:is |was |looks |"
             r"turned |went |gone )?(?:all )?(?:white|waxy|leathery|charred|black|peeling off|coming off)"),
        ),
    ),
    "infection": _Category(
        "emergency",
        symptoms=(
            r"sepsis|septic(?! tank| system)" + _NOT_ERRAND,
            r"meningitis" + _NOT_ERRAND,
        ),
        negative_symptoms=(
            (rf"rash {_G4}(?:doesn't|won't|isn't|not|don't) (?:fade|go away|disappear|blanch\w*|"
             rf"go white) (?:when|under|with)"),
            r"non ?blanching rash",
        ),
        combos=(
            ((r"stiff neck|neck (?:is |feels |'s )?(?:really |very |so |super )?stiff|can't (?:bend|touch|"
              r"move) (?:my|his|her) (?:neck|chin)"),
             (r"fever\w*|temperature|burning up|temp|hot",
              (r"rash|spots|light hurts|sensitive to light|light sensitiv\w*|confus\w*|headache|vomit\w*|"
               r"drows\w*|not making sense|making no sense"))),
            (r"(?:purple|purplish|dark red) (?:rash|spots|blotches)|spots all over|rash all over",
             (r"fever\w*|temperature|burning up|temp",)),
        ),
    ),
    "abdominal": _Category(
        "emergency",
        symptoms=(
            (rf"(?:belly|stomach|abdomen|tummy) {_L4}(?:rigid|rock hard|hard as (?:a )?(?:board|rock)|"
             rf"board like)"),
            r"worst pain (?:of (?:my|his|her) life|i've ever|ever)",
            (r"(?:pain|hurt\w*|ache)(?: \S+){0,6} (?:the )?worst (?:pain )?(?:i've|i have|he's|"
             r"she's) ever (?:felt|had|experienced)"),
        ),
        combos=(
            ((rf"{_SEVERE} (?:pains?|aches?|cramps?) (?:in (?:{_POSS} )?)?(?:abdominal|stomach|belly|tummy|"
              rf"abdomen|abdo|gut|lower right|right side|lower right side|side)|{_SEVERE} (?:abdominal|"
              rf"stomach|belly|tummy|abdomen|abdo|gut|lower right|right side) (?:pains?|aches?|cramps?)|"
              rf"(?:stomach|belly|tummy|abdomen) (?:hurts|is hurting|pain is) (?:so|really|very) (?:bad|"
              rf"badly)"),
             ((r"rigid|hard as (?:a )?(?:board|rock)|rock hard|hard to (?:the )?touch|board like|"
               r"can't (?:stand|move|walk|straighten)|vomit\w*|throw\w* up|blood|fever\w*|faint\w*|"
               r"pass\w* out|swollen|distended|agony|screaming"),)),
            (rf"(?:belly|stomach|abdomen|tummy) {_L4}(?:swollen|distended|tight|hard)",
             (r"agony|screaming|can't (?:stand|move|walk)|vomit\w*|throw\w* up|fever\w*",)),
        ),
    ),
    "general": _Category(
        "emergency",
        symptoms=(
            r"ambulance",
            r"(?:call|calling|dial|ring) (?:911|9 1 1|nine one one|an ambulance)",
            (r"(?:i'm|he's|she's|i am|he is|she is|i think i'm|i feel like i'm) dying(?! (?:to|"
             r"of (?:laughter|boredom|embarrassment|curiosity|thirst|hunger)|laughing|for)\b)"),
            (r"(?:feel|feels|feeling|think|thinks) (?:like )?(?:i'm|he's|she's) (?:going to|gonna|"
             r"about to) die"),
            # Hypothermia: the shivering stops as the body gives up; frostbite and exposure.
            r"hypotherm\w*",
            r"(?:stopped|isn't|not|no longer|quit) shivering",
            # Testicular torsion: sudden pain or swelling of a testicle is surgery within hours.
            r"testic\w* torsion|torsion",
            (r"(?:testic\w*|scrot\w*|(?:one of )?(?:his|my) balls?)(?: \S+){0,6} (?:swollen|swelling|twisted|"
             r"(?:really |very |so )?(?:painful|hurts|hurting))|(?:pain|swelling) in (?:his |my |one |a )?"
             r"(?:testic\w*|scrot\w*)"),
        ),
    ),
}


# --------------------------------------------------------------------------------------------------
# Negation and history: the only two reasons a match is dropped.
# --------------------------------------------------------------------------------------------------

_NEG_WINDOW = 6  # a cue further back than this many words does not reach the symptom (NegEx uses 5-6)
# How far a history cue may be from the match in an unpunctuated run-on; a shorter reach only escalates more.
_CLAUSE_REACH = 25

_NEGATION_CUE = re.compile(
    r"\b(?:no|not|never|none|nor|neither|without|den(?:y|ies|ied|ying)|isn't|aren't|wasn't|weren't|ain't|"
    r"haven't|hasn't|hadn't|no longer|free of|negative for|ruled out|rule out|absence of|nothing like|"
    r"(?:don't|doesn't|didn't) (?:have|has|had|get|got|feel|felt|notice|noticed|experience|experienced|hit|"
    r"bump|bumped|bang|banged|take|took|swallow|swallowed|drink|drank|eat|ate|lose|lost|pass|faint|fall|"
    r"fell)|"
    # Not negations but not a current problem either: asking about or treating it ("risk of stroke").
    r"risk (?:of|for)|chances? of|prevent\w*|to avoid|(?:medications?|medicines?|meds|pills|prescriptions?|"
    r"refills?|appointments?|screening|tests?|tested|vaccines?) (?:for|of|on))\b"
)
# Cue words that do not negate what follows (NegEx "pseudo-negations"): "not sure if it's a stroke" is
# the caller unsure, "no change in the chest pain" means the pain is still there.
_PSEUDO_NEGATION = re.compile(
    r"(?:no (?:idea|clue|doubt|question|way|matter|one|reason|warning|change|changes|improvement|better|"
    r"relief|help|let ?up|end)|not (?:sure|certain|only|just|know|knowing|kidding|joking|exactly|even sure|"
    r"able|really sure|better|improving|getting better|going away|helping|working|stopping|easing|gone|"
    r"well|good|great|right|ok|okay|myself|feeling (?:well|good|great|right|ok|okay|myself)|doing (?:well|"
    r"good|"
    r"great|ok|okay))|never (?:felt|been|had|experienced|seen) (?:so|this|that|such|anything like)|"
    r"without (?:warning|reason|any reason|notice|stopping|end|a break))\b"
)
_ABILITY_BEFORE_WITHOUT = re.compile(r"\b(?:can't|couldn't|unable to|not able to)\b")
# Words right after a match that turn a negation into a comparison or a start time:
# "never had chest pain like this", "no chest pain until this morning".
_NEGATION_OVERRIDE_AFTER = re.compile(
    r"^(?:\S+ ){0,2}?(?:like this|this bad|so bad|this severe|this intense|this strong|"
    r"until|till|before (?:today|now|tonight|this))\b"
)

_YEAR_WORDS = (
    r"(?:nineteen|twenty) (?:hundred|oh \w+|o \w+|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|"
    r"seventeen|"
    r"eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)|two thousand"
)
_HISTORY_CUE = re.compile(
    rf"\b(?:in (?:19|20)\d\d|in {_YEAR_WORDS}|(?:\w+ )?(?:years?|months|decades?) (?:ago|back)|"
    r"(?:\w+ )?(?:weeks?|months?|years?|decades?) since|(?:\w+ )?weeks? ago|"
    r"(?:a )?long time ago|long ago|a while (?:ago|back)|last (?:year|month|summer|winter|spring|fall|autumn|"
    r"christmas)|"
    r"history of|hx of|family history|run(?:s)? in (?:my|the|our|his|her) family|"
    r"when (?:i|he|she|they) (?:was|were) (?:a kid|a little kid|a child|little|young|younger|a baby|"
    r"a teenager|"
    r"a teen|in (?:school|high school|college|university)|pregnant|\d+)|as a (?:little )?(?:kid|child|baby|"
    r"teenager|"
    r"teen|toddler)|growing up|in (?:college|high school|university|grad school|the army|the military)|"
    rf"back in (?:the day|(?:19|20)\d\d|\d+|{_YEAR_WORDS}|high school|college|school|the \w+s|january|"
    r"february|"
    r"march|april|may|june|july|august|september|october|november|december)|used to (?:have|get|suffer|be)|"
    r"previous|previously|prior|in the past|once before|(?<!at )once(?! (?:i|he|she|we|they|you|it|the|"
    r"my)\b))\b"
)
_HAD_BEFORE = re.compile(r"\bhad\b.*\bbefore(?: (?:too|as well|also))?$")
_RECENCY_CUE = re.compile(
    r"\b(?:right now|now|today|tonight|this (?:morning|afternoon|evening|week|time)|currently|at the moment|"
    r"(?:\w+ )?minutes? ago|(?:an?|one|two|three|few|couple of) hours? ago|\d+ (?:hours?|hrs?|mins?) ago|"
    # "just" is recent only before something that happened ("he just collapsed"), not "i just get heartburn".
    # ...but not the caller's own errand: "he's been fine, he just wanted to ask about his aspirin".
    r"just (?:now|(?!wanted|needed|called|checked|wondered|asked)\w+ed|took|ate|fell|had|got|went|came|started|began|woke|hit|swallowed|drank|drunk|bit|"
    r"broke)|"
    r"again|still|started|starting|starts|won't stop|since(?! (?:my|his|her|their)\b)|suddenly|"
    r"all of a sudden|"
    r"worse|worsening|getting|keeps|keep|kept|came back|coming back|is back|it's back|happening|going on|"
    r"like this|this bad)\b"
)
# A recency word that says the problem is over: "fine since", "nothing since", "never again", "fine now".
_RESOLVED = re.compile(
    r"\b(?:fine|good|great|okay|ok|well|better|nothing|never|no (?:problems?|issues?|more)|not) "
    r"(?:\w+ ){0,2}?(?:ever since|since|now|again)\b"
)

# Clause openers, so "no chest pain but ..." and "a stroke in 2019 and now ..." split in two.
_CLAUSE_WORDS = frozenset({
    "but", "however", "although", "though", "except", "yet", "whereas", "besides", "otherwise", "anyway",
    "nevertheless", "unfortunately", "now", "until", "till", "then", "apart", "other",
})
_CONJUNCTIONS = frozenset({"and", "so", "plus", "or", "also"})
_TIME_SHIFTS = frozenset({"now", "then", "suddenly", "today"})  # "... and now", "... and today"
# A subject or possessive starts a new clause for negation: in "i don't have a fever my chest hurts"
# (ASR often drops the comma) "don't have" does not reach "chest hurts".
_SUBJECTS = frozenset({
    "i", "i'm", "i've", "i'd", "i'll", "my", "me", "he", "he's", "his", "him", "she", "she's", "her", "they",
    "they're", "their", "them", "we", "we're", "our", "you", "your", "it", "it's", "this", "that",
})


def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile(rf"\b(?:{pattern})(?![\w'])")


@dataclass(frozen=True)
class _Matcher:
    """Alternative patterns searched as one regex, a few times faster than one search per pattern.

    The parts are kept compiled on their own: where the merged match is negated or historical, each
    part is retried at the same position, so a valid overlapping alternative is never lost.
    """

    merged: re.Pattern[str]
    parts: tuple[re.Pattern[str], ...]
    negatable: bool

    @classmethod
    def of(cls, patterns: str | tuple[str, ...], negatable: bool = True) -> _Matcher:
        patterns = (patterns,) if isinstance(patterns, str) else patterns
        parts = tuple(_compile(p) for p in patterns)
        merged = parts[0] if len(parts) == 1 else _compile("|".join(f"(?:{p})" for p in patterns))
        return cls(merged, parts if len(parts) > 1 else (), negatable)

    def current(self, p: _Parsed) -> re.Match[str] | None:
        """The first match that is the caller's problem now, or None."""
        pos = 0
        while (m := self.merged.search(p.text, pos)) is not None:
            if self._valid(p, m):
                return m
            for part in self.parts:
                alt = part.match(p.text, m.start())
                if alt is not None and alt.end() != m.end() and self._valid(p, alt):
                    return alt
            pos = m.start() + 1
        return None

    def _valid(self, p: _Parsed, m: re.Match[str]) -> bool:
        first, last = _token_span(p, m)
        return not (self.negatable and _negated(p, first, last)) and not _historical(p, first, last)


@dataclass(frozen=True)
class _Rule:
    kind: Severity
    category: str
    matcher: _Matcher
    companions: tuple[_Matcher, ...] = ()


def _build_rules() -> tuple[_Rule, ...]:
    rules: list[_Rule] = []
    for kind in ("crisis", "emergency"):
        for name, cat in _CATEGORIES.items():
            if cat.kind != kind:
                continue
            if cat.symptoms:
                rules.append(_Rule(kind, name, _Matcher.of(cat.symptoms)))
            if cat.negative_symptoms:
                rules.append(_Rule(kind, name, _Matcher.of(cat.negative_symptoms, negatable=False)))
            rules += [
                _Rule(kind, name, _Matcher.of(anchor), tuple(_Matcher.of(c) for c in companions))
                for anchor, companions in cat.combos
            ]
    return tuple(rules)


_RULES = _build_rules()


def _opens_clause(p: _Parsed, i: int) -> bool:
    if i <= 0 or i in p.breaks:
        return True
    token = p.tokens[i]
    following = p.tokens[i + 1] if i + 1 < len(p.tokens) else ""
    if token in _CLAUSE_WORDS:
        return token not in ("apart", "other") or following in ("from", "than")
    return token in _CONJUNCTIONS and (following in _SUBJECTS or following in _TIME_SHIFTS)


def _token_span(p: _Parsed, m: re.Match[str]) -> tuple[int, int]:
    first = bisect_right(p.starts, m.start()) - 1
    last = bisect_right(p.starts, max(m.end() - 1, m.start())) - 1
    return first, last + 1


def _negated(p: _Parsed, first: int, last: int) -> bool:
    """A negation cue in the few words before the match, with no clause break or new subject between."""
    lo = first
    while lo > 0 and first - lo < _NEG_WINDOW and not _opens_clause(p, lo):
        if p.tokens[lo - 1] in _SUBJECTS:
            break
        lo -= 1
    if lo == first:
        return False
    scope_start = p.starts[lo]
    # The cue may end inside the match: "didn't pass" out, "don't have" ... when the match starts at "have".
    scope = p.text[scope_start:p.starts[first] + len(p.tokens[first])]
    cue_limit = p.starts[first] - scope_start
    end = p.starts[last - 1] + len(p.tokens[last - 1])
    after = p.text[end + 1:end + 120]
    for cue in _NEGATION_CUE.finditer(scope):
        if cue.start() >= cue_limit:
            break
        if _PSEUDO_NEGATION.match(p.text, scope_start + cue.start()):
            continue
        if cue.group(0) == "without" and _ABILITY_BEFORE_WITHOUT.search(scope, 0, cue.start()):
            continue  # "i can't walk without chest pain" has the pain
        if _NEGATION_OVERRIDE_AFTER.match(after):
            continue
        return True
    return False


def _historical(p: _Parsed, first: int, last: int) -> bool:
    """A history cue in the match's own clause, and nothing anywhere saying it is happening now."""
    start = first
    while first - start < _CLAUSE_REACH and not _opens_clause(p, start):
        start -= 1
    end = last
    while end < len(p.tokens) and end - last < _CLAUSE_REACH and not _opens_clause(p, end):
        end += 1
    clause = " ".join(p.tokens[start:end])
    if not (_HISTORY_CUE.search(clause) or _HAD_BEFORE.search(clause)):
        return False
    return not p.recent


def detect(text: str) -> RuleHit | None:
    """The first red flag in one caller utterance, crisis before emergency, or None.

    Broad on purpose: only a match that is clearly negated or clearly past history is dropped.
    """
    p = _parse(text)
    if not p.tokens:
        return None
    for rule in _RULES:
        m = rule.matcher.current(p)
        if m is not None and all(c.current(p) is not None for c in rule.companions):
            return RuleHit(rule.kind, rule.category, m.group(0))
    return None
