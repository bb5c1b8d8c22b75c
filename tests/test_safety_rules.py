"""The deterministic red-flag rules: emergency and crisis phrasings nobody tuned the patterns on.

Positives are phrased the way callers talk (plurals, third person, no punctuation, typographic
apostrophes); negatives are the two things that may cancel a match: a negation in its own clause, or
past history with nothing saying it is happening now. Anything unclear must escalate.
"""

from __future__ import annotations

import time

import pytest

from iasovoice.dialogue import safety_rules
from iasovoice.dialogue.safety_rules import RuleHit, detect, normalise

# (utterance, category): each must escalate as an emergency, in that category.
EMERGENCIES: list[tuple[str, str]] = [
    # cardiac, including the phrasings without the word "pain"
    ("My chest hurts.", "cardiac"),
    ("I've been having chest pains since this morning", "cardiac"),
    ("there's a crushing pressure in the middle of my chest", "cardiac"),
    ("my chest feels really tight and heavy", "cardiac"),
    ("it feels like an elephant is sitting on my chest", "cardiac"),
    ("the pain is going down my left arm and into my jaw", "cardiac"),
    ("my heart is racing and i feel like i'm going to faint", "cardiac"),
    ("his heart keeps pounding and he says he's dizzy", "cardiac"),
    ("I think my husband is having a heart attack", "cardiac"),
    ("my wife's chest is hurting really bad", "cardiac"),
    ("we're doing cpr right now", "cardiac"),
    ("i can't find a pulse", "cardiac"),
    # breathing, with every spelling of "can't"
    ("I can’t breathe", "breathing"),
    ("I can´t breathe", "breathing"),
    ("i cant breath", "breathing"),
    ("I can not breathe properly", "breathing"),
    ("i'm struggling to breathe", "breathing"),
    ("she's having a lot of trouble breathing", "breathing"),
    ("I'm so short of breath I can barely talk", "breathing"),
    ("he's choking on something", "breathing"),
    ("my lips are turning blue", "breathing"),
    ("i'm wheezing really badly and my inhaler isn't helping", "breathing"),
    ("my grandfather is gasping for air", "breathing"),
    # stroke
    ("the left side of her face is drooping", "stroke"),
    ("his speech is all slurred", "stroke"),
    ("my mom suddenly can't speak", "stroke"),
    ("he's having trouble finding his words all of a sudden", "stroke"),
    ("my right arm went numb and i can't lift it", "stroke"),
    ("I suddenly lost the vision in my left eye", "stroke"),
    ("this is the worst headache of my life", "stroke"),
    ("I think my dad is having a stroke", "stroke"),
    # bleeding
    ("the bleeding won't stop", "bleeding"),
    ("I cut my hand and it will not stop bleeding", "bleeding"),
    ("he's bleeding a lot from his leg", "bleeding"),
    ("the blood has soaked through three towels", "bleeding"),
    ("I've been throwing up blood", "bleeding"),
    ("my father is coughing up blood", "bleeding"),
    ("I'm pregnant and bleeding heavily", "bleeding"),
    # poisoning and overdose
    ("I think I took too many of my pills", "poisoning"),
    ("my son took too many", "poisoning"),
    ("my toddler swallowed some bleach", "poisoning"),
    ("she drank antifreeze", "poisoning"),
    ("he took the whole bottle of tylenol", "poisoning"),
    ("my daughter swallowed a button battery", "poisoning"),
    ("I think my roommate overdosed", "poisoning"),
    ("my brother od'd", "poisoning"),
    ("my toddler ate a laundry pod", "poisoning"),
    # children
    ("my baby is turning blue", "child"),
    ("my baby isn't breathing", "child"),
    ("my son's breathing is weird and he looks really pale", "child"),
    ("the baby is floppy and won't wake up", "child"),
    ("my daughter is struggling to breathe", "child"),
    ("my three week old has a fever", "child"),
    # head injury followed by confusion or vomiting
    ("he hit his head and now he's confused", "head_injury"),
    ("my mum fell and hit her head and she keeps throwing up", "head_injury"),
    ("I banged my head and I can't remember what happened", "head_injury"),
    ("she bumped her head and is really drowsy", "head_injury"),
    ("he has a concussion and he's vomiting", "head_injury"),
    # allergy
    ("my lips and tongue are swelling up", "allergy"),
    ("my throat is closing", "allergy"),
    ("I think I'm having an allergic reaction and I can't breathe", "allergy"),
    ("i just used my epipen", "allergy"),
    ("her face is swelling after a bee sting", "allergy"),
    # neuro
    ("my husband is having a seizure", "neuro"),
    ("she's seizing", "neuro"),
    ("my son is convulsing", "neuro"),
    ("he collapsed in the kitchen", "neuro"),
    ("she passed out and isn't responding", "neuro"),
    ("I can't wake him up", "neuro"),
    ("my grandma is unresponsive", "neuro"),
    # other
    ("there's a bone sticking out of his leg", "trauma"),
    ("I have a stiff neck and a high fever and a rash", "infection"),
    ("he has a really bad burn all over his arm", "burn"),
    ("severe stomach pain and my belly is hard as a board", "abdominal"),
    ("he's not breathing and there's no pulse", "cardiac"),
    ("he doesn't have a pulse", "cardiac"),
    ("i'm not getting enough air", "breathing"),
    ("please send an ambulance", "general"),
    ("I'm 34 weeks pregnant and I have a terrible headache and my vision is blurry", "pregnancy"),
    ("I'm pregnant and I can't feel the baby moving", "pregnancy"),
    ("my husband is diabetic and he's really confused", "diabetic"),
    ("she's on warfarin and bleeding from her gums and she's so weak", "bleeding"),
    ("I've been pooping black like tar", "bleeding"),
    ("my dad got burned with gasoline and the skin is charred", "burn"),
    ("my daughter's soft spot is bulging", "child"),
    ("I think I'm dying", "general"),
]

CRISES: list[str] = [
    "I want to kill myself",
    "I've been thinking about suicide",
    "my son says he's suicidal",
    "I just want to end it all",
    "I want to end my life",
    "I want to die",
    "I don't want to live anymore",
    "everyone would be better off without me",
    "I've been cutting myself again",
    "I keep wanting to hurt myself",
    "I took all my pills on purpose",
    "I overdosed on purpose",
    "she's been self-harming",
    "there's no reason to live",
    "I attempted suicide in 2015 and I'm thinking about it again",
]

# Negated in their own clause: nothing to escalate.
NEGATED: list[str] = [
    "no chest pain",
    "No chest pain, no shortness of breath.",
    "I don't have any chest pain",
    "I have no trouble breathing",
    "he denies chest pain",
    "she doesn't have any chest pains or shortness of breath",
    "I'm not suicidal",
    "I'm not having any chest pain today",
    "no bleeding at all",
    "he never had a seizure",
    "I've been free of chest pain for weeks",
    "I don't want to die",
    "I didn't hit my head",
    "without any swelling of the lips",
    "there isn't any chest tightness",
    "she had no chest pain, no shortness of breath, and no dizziness",
    "I didn't pass out",
]

# Past history, said without anything that makes it current.
HISTORY: list[str] = [
    "I had a stroke in 2019",
    "my dad had a stroke years ago",
    "I had a heart attack last year",
    "I have a history of seizures",
    "I used to have seizures when I was a kid",
    "heart attacks run in my family",
    "I had a stroke in twenty nineteen",
    "my mother had a heart attack back in 2015",
    "I was suicidal as a teenager",
    "I've had chest pain before",
    "I attempted suicide in 2015",
    "I had a seizure as a kid but nothing since",
    "I had a heart attack in twenty fifteen and I'm fine now",
]

# A negation or history followed by a current symptom must still escalate.
NEGATION_THEN_SYMPTOM: list[str] = [
    "no chest pain but i can't breathe",
    "I had a stroke in 2019 and now my face is drooping",
    "I had a heart attack last year and I'm having chest pain again",
    "No, my chest hurts",
    "no fever, chest pain",
    "I don't have a fever my chest hurts",
    "not sure if it's a stroke",
    "no change in the chest pain",
    "I've never had chest pain like this",
    "there was no chest pain until this morning",
    "I can't walk without chest pain",
    "he had a seizure years ago and he's seizing again right now",
    "I'm not able to breathe",
    "he's not breathing",
    "the bleeding won't stop",
    "she won't wake up",
    "he's not responding",
    "no history of heart problems but my chest is really tight",
    "I've had chest pain before but this is worse",
    "I'm not feeling well and I have chest pain",
    "denies any chest pain but reports shortness of breath",
    "no relief from the chest pain",
    "I have the worst headache of my life and it came on all at once",
]

# Look-alikes and errands: a sensible rule layer stays quiet.
BENIGN: list[str] = [
    "I had heartburn after dinner",
    "my heart is set on that date",
    "I'm dying to know my results",
    "this cough is killing me",
    "I'm bleeding money on these prescriptions",
    "I need a refill of my seizure medication",
    "can I book an appointment at the stroke clinic",
    "what's my risk of a heart attack",
    "it took too much time to get through to you",
    "my blood test results came back",
    "my hair is going grey",
    "I'm going to my back yard",
    "hi I'd like to reschedule my appointment",
    "I have a mild cough and a runny nose",
    "I need my blood pressure medication refilled",
    "I think I have food poisoning",
    "I choked up at my daughter's wedding",
    "I cut myself shaving this morning",
    "that was a stroke of luck",
    "my knee hurts when I climb stairs",
    "",
]

# Idioms of dying and killing: whatever else they do, they never reach the crisis line.
IDIOMS: list[str] = [
    "I'm dying to know",
    "this cough is killing me",
    "my back is killing me",
    "I killed myself laughing",
]

# Crisis outranks emergency when both are said.
PRECEDENCE: list[str] = [
    "I took a whole bottle of pills because I want to die",
    "I cut my wrists to kill myself and it won't stop bleeding",
    "I want to end my life, I can't breathe",
    "my chest hurts and honestly I don't want to live anymore",
]

NORMALISE: list[tuple[str, str]] = [
    ("I Can’t Breathe!", "i can't breathe"),
    ("can´t", "can't"),
    ("cant breathe", "can't breathe"),
    ("I cannot breathe", "i can't breathe"),
    ("I can not breathe", "i can't breathe"),
    ("It will not stop.", "it won't stop"),
    ("he is not breathing", "he isn't breathing"),
    ("wont stop bleeding", "won't stop bleeding"),
    ("“Chest—pain”", "chest pain"),
    ("self-harm", "self harm"),
    ("  lots   of\tspace\n", "lots of space"),
    ("ＣＨＥＳＴ ＰＡＩＮ", "chest pain"),
    ("In 2019, I had a stroke.", "in 2019 i had a stroke"),
    ("my son od'd", "my son od'd"),
    ("'quoted' words", "quoted words"),
    ("im not ok", "i'm not ok"),
    ("", ""),
]


@pytest.mark.parametrize(("text", "category"), EMERGENCIES)
def test_emergencies_escalate_in_their_category(text: str, category: str) -> None:
    hit = detect(text)
    assert hit is not None, text
    assert (hit.kind, hit.category) == ("emergency", category), hit


@pytest.mark.parametrize("text", CRISES)
def test_crises_get_the_crisis_line(text: str) -> None:
    hit = detect(text)
    assert hit is not None and hit.kind == "crisis", (text, hit)


@pytest.mark.parametrize("text", NEGATED)
def test_negations_in_the_same_clause_do_not_escalate(text: str) -> None:
    assert detect(text) is None


@pytest.mark.parametrize("text", HISTORY)
def test_past_history_without_recency_does_not_escalate(text: str) -> None:
    assert detect(text) is None


@pytest.mark.parametrize("text", NEGATION_THEN_SYMPTOM)
def test_a_current_symptom_after_a_negation_or_history_escalates(text: str) -> None:
    hit = detect(text)
    assert hit is not None and hit.kind == "emergency", (text, hit)


@pytest.mark.parametrize("text", BENIGN)
def test_benign_look_alikes_stay_quiet(text: str) -> None:
    assert detect(text) is None


@pytest.mark.parametrize("text", PRECEDENCE)
def test_crisis_outranks_emergency(text: str) -> None:
    hit = detect(text)
    assert hit is not None and hit.kind == "crisis", (text, hit)


@pytest.mark.parametrize(("text", "expected"), NORMALISE)
def test_normalise(text: str, expected: str) -> None:
    assert normalise(text) == expected


@pytest.mark.parametrize("text", IDIOMS)
def test_idioms_of_dying_and_killing_never_reach_the_crisis_line(text: str) -> None:
    hit = detect(text)
    assert hit is None or hit.kind != "crisis", (text, hit)


def test_the_hit_carries_the_normalised_span() -> None:
    hit = detect("No fever — but my CHEST hurts!")
    assert hit == RuleHit(kind="emergency", category="cardiac", matched="chest hurts")
    assert hit.matched in normalise("No fever — but my CHEST hurts!")


def test_hits_are_frozen() -> None:
    hit = detect("I can't breathe")
    assert hit is not None
    with pytest.raises(AttributeError):
        hit.kind = "crisis"  # type: ignore[misc]


def test_no_pattern_keeps_an_unformatted_placeholder() -> None:
    """A `{_NAME}` left in a plain r-string is a literal in the regex: that pattern can never match."""
    for rule in safety_rules._RULES:
        matchers = (rule.matcher, *rule.companions)
        for pattern in (p for m in matchers for p in (m.merged, *m.parts)):
            assert "{_" not in pattern.pattern, (rule.category, pattern.pattern)


def test_fast_enough_for_every_utterance() -> None:
    texts = [t for t, _ in EMERGENCIES] + CRISES + NEGATED + HISTORY + NEGATION_THEN_SYMPTOM + BENIGN
    detect("warm up")
    start = time.perf_counter()
    for _ in range(5):
        for text in texts:
            detect(text)
    per_utterance = (time.perf_counter() - start) / (5 * len(texts))
    assert per_utterance < 1e-3, f"{per_utterance * 1e3:.2f} ms per utterance"


@pytest.mark.parametrize(
    ("text", "kind", "category"),
    [
        # Passive ideation and preparation, as screening questionnaires word them.
        ("honestly i'm tired of being here", "crisis", "suicide"),
        ("i can't see any point in going on", "crisis", "suicide"),
        ("i've been saving up my sleeping pills", "crisis", "suicide"),
        # Upper GI bleeding: vomit like coffee grounds.
        ("he threw up something that looked like coffee grounds", "emergency", "bleeding"),
        # Full-thickness burns: white or leathery skin after a scald.
        ("she got scalded with hot water and the skin looks waxy and white", "emergency", "burn"),
        # Diabetic emergencies named by type or by the meter's reading, with an altered state.
        ("my son is type one and he's confused and sweaty", "emergency", "diabetic"),
        ("his glucometer reads low and he's acting drunk", "emergency", "diabetic"),
    ],
)
def test_red_flag_phrasings_from_triage_practice(text: str, kind: str, category: str) -> None:
    hit = detect(text)
    assert hit is not None and (hit.kind, hit.category) == (kind, category), hit


@pytest.mark.parametrize(
    "text",
    ["i spilled coffee grounds all over the counter", "i have type one diabetes and need my insulin refilled",
     "my meter says low sometimes before breakfast", "i'm saving up for new glasses"],
)
def test_their_benign_look_alikes_do_not_fire(text: str) -> None:
    assert detect(text) is None


@pytest.mark.parametrize(
    ("text", "fires"),
    [
        ("it's been ten years since my stroke and i need my annual physical", False),
        ("i had chest pains three weeks ago and the er said it was anxiety", False),
        ("i had chest pains three weeks ago and now they're back", True),
        ("months since my heart attack and tonight my chest is tight again", True),
    ],
)
def test_weeks_ago_and_years_since_are_history_unless_it_is_happening_now(text: str, fires: bool) -> None:
    assert (detect(text) is not None) is fires


@pytest.mark.parametrize(
    ("text", "kind", "category"),
    [
        ("my son has sudden really bad pain in his testicle and he's throwing up", "emergency", "general"),
        ("grandpa was outside in the cold all night and now he stopped shivering", "emergency", "general"),
        ("he touched a live wire and got shocked by a power line", "emergency", "trauma"),
        ("my mother fell in the kitchen and she can't get up", "emergency", "trauma"),
        ("i have a plan and i'm going to do it tonight", "crisis", "suicide"),
        ("i wrote letters to my kids last night", "crisis", "suicide"),
        ("i'm holding a knife and i keep thinking about it", "crisis", "suicide_means"),
        ("she texted everyone goodbye and won't answer", "crisis", "suicide"),
        ("i left the car running in the closed garage and i'm sitting in it", "crisis", "suicide"),
    ],
)
def test_categories_a_blind_test_set_showed_missing(text: str, kind: str, category: str) -> None:
    """Added after the blind split (rasa/tests/nlu_blind) was first scored; worded afresh, not copied."""
    hit = detect(text)
    assert hit is not None and (hit.kind, hit.category) == (kind, category), hit


@pytest.mark.parametrize(
    "text",
    [
        "i nearly had a heart attack when i saw the bill",
        "i'm drowning in forms for my insurance",
        "he had a mini stroke years ago and he's been fine he just wanted to ask about aspirin",
        "i fell asleep on the couch and my neck is stiff",
        "we made a plan to do it next month when my insurance renews",
    ],
)
def test_more_look_alikes_do_not_fire(text: str) -> None:
    assert detect(text) is None, detect(text)
