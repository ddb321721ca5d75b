"""The embedded corpus: a generated, offline text collection whose structure BERT can learn.

Real corpora need a download and are too big for a laptop CPU. This module writes one instead,
from a fixed lexicon and a seeded `random.Random`, so the same seed gives the same text on every
machine in about a second. Everything is lower case with plain punctuation, and the whole word
vocabulary is about 1,360 words, so a WordPiece vocabulary of a few thousand tokens holds every
word whole (`Tokenizer.train(texts, vocab_size=4096)` stops at ~3,400 tokens, all words whole)
and a mini BERT pretrains on it in minutes.

What is in it, and how each part can be measured:

* **Topic-coherent documents.** 26 topics (a kitchen, a bakery, football, a zoo, a castle...),
  each with its own roles, things, actions, places and adjectives; a document stays on one topic
  and keeps using the same two people by name. A sentence from another document is almost always
  from another topic with other names, so next sentence prediction (NSP) is learnable.
  Measure: NSP accuracy on validation pairs (chance 50%).
* **Facts stated early, needed later.** A document opens with "the baker is called maria. the
  cashier is called tom." and may end with "in the end, the baker, maria, went home." Names are
  drawn at random per document, so the late name can only be predicted by looking back.
  Measure: `probes()["fact_recall"]`, does MLM prefer the right name over the other one stated
  in the same document (chance 50%).
* **Number agreement.** "the pot near the ovens boils." / "the pots near the oven boil.": the verb
  agrees with the subject, not with the nearer "attractor" noun of the other number.
  Measure: `probes()["agreement"]`, does MLM prefer the agreeing verb form (chance 50%).
* **Reviews** (about a third of the documents) of restaurants, hotels, films, books, phones,
  concerts and museums. Their sentiment follows from graded polarity words (wonderful > good >
  fine; awful > bad > mediocre), "not" flips a word, and after "but" the second clause decides.
  Each review keeps one stance throughout and ends with stars and a verdict ("five stars.",
  "i would not recommend it."), so MLM learns which words are positive from their company.
  Measure: `probes()["sentiment_words"]`, and `sentiment_task()`.

The sentiment task is built so that pretraining visibly helps: the polarity vocabulary is split
in two halves, `SEEN_POLARITY_WORDS` label the training and validation examples and only
`HELD_OUT_POLARITY_WORDS` appear in the test set. A model trained from scratch has never seen a
held-out word with a label, so it is near chance on the test set; a pretrained model has met
those words in reviews during pretraining and can place them next to the seen ones.

Usage::

    corpus = generate_corpus(seed=0)
    print(corpus.describe())
    corpus.train[0]                      # a document: a list of sentence strings
    corpus.texts("train")                # one string per sentence, e.g. to train a tokenizer
    task = sentiment_task(seed=0)        # {"train": [(text, label), ...], "validation", "test"}
    probe_sets = probes(seed=0)          # {"agreement": [ProbeItem, ...], "fact_recall", ...}

Taught in chapter 06 (`chapters/06_mlm_nsp_data.ipynb`); chapters 03 to 09 train on it.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass

MASK = "[MASK]"

# ---------------------------------------------------------------------------------------------
# The lexicon. Each topic is written compactly: "sg/pl" pairs for nouns, "sg/pl/past:obj,obj"
# for actions (3rd person singular, plural, past tense, and the objects they take).
# ---------------------------------------------------------------------------------------------

_TOPIC_SPECS = {
    "kitchen": dict(
        roles="cook/cooks waiter/waiters chef/chefs",
        things="pan/pans pot/pots knife/knives plate/plates oven/ovens spoon/spoons",
        actions="chops/chop/chopped:onions,carrots,herbs stirs/stir/stirred:soup,sauce "
        "fries/fry/fried:eggs,potatoes serves/serve/served:dinner,salad",
        moves="boils/boil sizzles/sizzle",
        places="kitchen restaurant market",
        adjectives="hot spicy fresh salty",
    ),
    "bakery": dict(
        roles="baker/bakers cashier/cashiers",
        things="loaf/loaves cake/cakes tray/trays bun/buns cookie/cookies pie/pies",
        actions="bakes/bake/baked:bread,muffins sells/sell/sold:cakes,buns "
        "kneads/knead/kneaded:dough decorates/decorate/decorated:cakes,cookies",
        moves="rises/rise cools/cool",
        places="bakery counter shop",
        adjectives="sweet warm crispy soft",
    ),
    "football": dict(
        roles="coach/coaches striker/strikers referee/referees",
        things="ball/balls goal/goals boot/boots whistle/whistles shirt/shirts team/teams",
        actions="kicks/kick/kicked:ball,penalty scores/score/scored:goals,penalty "
        "trains/train/trained:team,defenders blows/blow/blew:whistle",
        moves="bounces/bounce rolls/roll",
        places="stadium pitch field",
        adjectives="muddy fast tired loud",
    ),
    "weather": dict(
        roles="forecaster/forecasters sailor/sailors",
        things="cloud/clouds storm/storms wind/winds raindrop/raindrops wave/waves "
        "rainbow/rainbows",
        actions="predicts/predict/predicted:rain,snow,sunshine "
        "measures/measure/measured:temperature,wind watches/watch/watched:sky,horizon "
        "reports/report/reported:fog,frost",
        moves="drifts/drift grows/grow",
        places="coast harbour hills",
        adjectives="cloudy windy cold grey",
    ),
    "city": dict(
        roles="mayor/mayors driver/drivers",
        things="bus/buses street/streets tower/towers bridge/bridges taxi/taxis tram/trams",
        actions="drives/drive/drove:bus,taxi visits/visit/visited:museum,square "
        "builds/build/built:tower,bridge crosses/cross/crossed:bridge,river",
        moves="stops/stop honks/honk",
        places="square station downtown",
        adjectives="busy noisy crowded tall",
    ),
    "grocery": dict(
        roles="shopkeeper/shopkeepers customer/customers",
        things="basket/baskets shelf/shelves apple/apples bottle/bottles receipt/receipts "
        "box/boxes",
        actions="stacks/stack/stacked:boxes,tins weighs/weigh/weighed:apples,cheese "
        "buys/buy/bought:milk,rice packs/pack/packed:groceries,bags",
        moves="falls/fall rattles/rattle",
        places="shop aisle checkout",
        adjectives="cheap full ripe heavy",
    ),
    "school": dict(
        roles="teacher/teachers pupil/pupils headmaster/headmasters",
        things="desk/desks book/books pencil/pencils lesson/lessons board/boards ruler/rulers",
        actions="teaches/teach/taught:maths,history,spelling reads/read/read:story,poem "
        "writes/write/wrote:essay,sums marks/mark/marked:homework,tests",
        moves="squeaks/squeak wobbles/wobble",
        places="classroom library playground",
        adjectives="quiet clever strict neat",
    ),
    "hospital": dict(
        roles="doctor/doctors nurse/nurses",
        things="bed/beds bandage/bandages pill/pills needle/needles chart/charts ward/wards",
        actions="examines/examine/examined:patient,wound treats/treat/treated:fever,injury "
        "checks/check/checked:pulse,temperature gives/give/gave:medicine,injection",
        moves="beeps/beep blinks/blink",
        places="hospital ward clinic",
        adjectives="sterile calm sick healthy",
    ),
    "farm": dict(
        roles="farmer/farmers shepherd/shepherds",
        things="goat/goats tractor/tractors barn/barns hen/hens fence/fences horse/horses",
        actions="milks/milk/milked:cows,goats ploughs/plough/ploughed:soil,meadow "
        "feeds/feed/fed:hens,pigs harvests/harvest/harvested:wheat,corn",
        moves="grazes/graze wanders/wander",
        places="farm barn meadow",
        adjectives="rural dusty green hungry",
    ),
    "space": dict(
        roles="astronaut/astronauts engineer/engineers",
        things="rocket/rockets planet/planets satellite/satellites moon/moons comet/comets "
        "helmet/helmets",
        actions="launches/launch/launched:rocket,probe repairs/repair/repaired:antenna,panel "
        "observes/observe/observed:galaxy,comet orbits/orbit/orbited:earth,moon",
        moves="spins/spin glows/glow",
        places="station launchpad orbit",
        adjectives="distant dark bright silent",
    ),
    "orchestra": dict(
        roles="conductor/conductors violinist/violinists",
        things="violin/violins drum/drums flute/flutes note/notes sheet/sheets bow/bows",
        actions="plays/play/played:symphony,melody tunes/tune/tuned:violin,piano "
        "conducts/conduct/conducted:orchestra,choir practises/practise/practised:scales,chords",
        moves="echoes/echo hums/hum",
        places="hall stage studio",
        adjectives="melodic gentle slow classical",
    ),
    "garden": dict(
        roles="gardener/gardeners neighbour/neighbours",
        things="rose/roses tulip/tulips hedge/hedges spade/spades shed/sheds worm/worms",
        actions="waters/water/watered:roses,lawn plants/plant/planted:seeds,bulbs "
        "trims/trim/trimmed:hedge,grass digs/dig/dug:hole,soil",
        moves="blooms/bloom wilts/wilt",
        places="garden greenhouse lawn",
        adjectives="colourful leafy wild damp",
    ),
    "harbour": dict(
        roles="fisherman/fishermen diver/divers",
        things="boat/boats net/nets crab/crabs shell/shells anchor/anchors seagull/seagulls",
        actions="catches/catch/caught:fish,crabs,tuna rows/row/rowed:boat,dinghy "
        "mends/mend/mended:nets,sails explores/explore/explored:reef,wreck",
        moves="floats/float sinks/sink",
        places="beach dock island",
        adjectives="sandy deep salty calm",
    ),
    "post": dict(
        roles="postman/postmen clerk/clerks",
        things="letter/letters parcel/parcels stamp/stamps envelope/envelopes van/vans "
        "postbox/postboxes",
        actions="delivers/deliver/delivered:letters,parcels sorts/sort/sorted:mail,post "
        "seals/seal/sealed:envelopes,packages posts/post/posted:cards,packages",
        moves="arrives/arrive tears/tear",
        places="village counter depot",
        adjectives="urgent late small registered",
    ),
    "railway": dict(
        roles="guard/guards passenger/passengers",
        things="train/trains ticket/tickets carriage/carriages platform/platforms "
        "suitcase/suitcases engine/engines",
        actions="inspects/inspect/inspected:tickets,carriages boards/board/boarded:train,carriage "
        "misses/miss/missed:train,connection loads/load/loaded:luggage,coal",
        moves="departs/depart whistles/whistle",
        places="depot tunnel junction",
        adjectives="delayed punctual crowded steamy",
    ),
    "zoo": dict(
        roles="zookeeper/zookeepers vet/vets",
        things="lion/lions monkey/monkeys elephant/elephants cage/cages penguin/penguins "
        "giraffe/giraffes",
        actions="feeds/feed/fed:lions,penguins cleans/clean/cleaned:cages,pond "
        "photographs/photograph/photographed:monkeys,elephants "
        "weighs/weigh/weighed:tortoise,parrots",
        moves="roars/roar sleeps/sleep",
        places="zoo enclosure aviary",
        adjectives="wild exotic playful sleepy",
    ),
    "mountain": dict(
        roles="climber/climbers guide/guides",
        things="rope/ropes tent/tents backpack/backpacks peak/peaks cliff/cliffs map/maps",
        actions="climbs/climb/climbed:mountain,cliff carries/carry/carried:rope,backpack "
        "pitches/pitch/pitched:tent,camp follows/follow/followed:trail,path",
        moves="sways/sway crumbles/crumble",
        places="summit valley camp",
        adjectives="steep rocky icy high",
    ),
    "office": dict(
        roles="programmer/programmers manager/managers",
        things="laptop/laptops keyboard/keyboards printer/printers file/files email/emails "
        "meeting/meetings",
        actions="types/type/typed:report,code fixes/fix/fixed:bug,printer "
        "sends/send/sent:emails,invoices schedules/schedule/scheduled:meeting,call",
        moves="crashes/crash flickers/flicker",
        places="office lab basement",
        adjectives="digital modern technical remote",
    ),
    "detective": dict(
        roles="detective/detectives thief/thieves",
        things="clue/clues footprint/footprints key/keys lock/locks witness/witnesses car/cars",
        actions="finds/find/found:clue,footprints questions/question/questioned:witness,suspect "
        "steals/steal/stole:jewels,painting chases/chase/chased:thief,car",
        moves="vanishes/vanish creaks/creak",
        places="alley mansion precinct",
        adjectives="mysterious secret suspicious hidden",
    ),
    "art": dict(
        roles="painter/painters sculptor/sculptors",
        things="brush/brushes canvas/canvases easel/easels statue/statues colour/colours "
        "frame/frames",
        actions="paints/paint/painted:portrait,landscape carves/carve/carved:marble,wood "
        "mixes/mix/mixed:colours,paint sketches/sketch/sketched:faces,trees",
        moves="drips/drip dries/dry",
        places="gallery attic workshop",
        adjectives="abstract vivid messy framed",
    ),
    "garage": dict(
        roles="mechanic/mechanics apprentice/apprentices",
        things="tyre/tyres wheel/wheels bolt/bolts wrench/wrenches bumper/bumpers jack/jacks",
        actions="changes/change/changed:tyres,oil tightens/tighten/tightened:bolts,brakes "
        "polishes/polish/polished:car,bonnet tows/tow/towed:van,truck",
        moves="squeals/squeal leaks/leak",
        places="garage yard forecourt",
        adjectives="greasy rusty broken shiny",
    ),
    "castle": dict(
        roles="king/kings knight/knights queen/queens",
        things="sword/swords shield/shields banner/banners dragon/dragons crown/crowns gate/gates",
        actions="guards/guard/guarded:gate,treasure rides/ride/rode:horse,pony "
        "wears/wear/wore:crown,armour defends/defend/defended:castle,kingdom",
        moves="shines/shine clangs/clang",
        places="castle courtyard dungeon",
        adjectives="royal ancient brave golden",
    ),
    "bank": dict(
        roles="banker/bankers teller/tellers",
        things="coin/coins cheque/cheques account/accounts loan/loans vault/vaults card/cards",
        actions="counts/count/counted:coins,money lends/lend/lent:money,cash "
        "opens/open/opened:account,safe signs/sign/signed:cheque,form",
        moves="jingles/jingle piles/pile",
        places="bank branch lobby",
        adjectives="rich secure wealthy safe",
    ),
    "pool": dict(
        roles="swimmer/swimmers lifeguard/lifeguards",
        things="lane/lanes towel/towels float/floats medal/medals race/races locker/lockers",
        actions="swims/swim/swam:lengths,laps wins/win/won:race,medal "
        "rescues/rescue/rescued:swimmer,child times/time/timed:laps,swimmers",
        moves="splashes/splash ripples/ripple",
        places="pool gym poolside",
        adjectives="wet cool chilly sporty",
    ),
    "airport": dict(
        roles="pilot/pilots steward/stewards",
        things="plane/planes runway/runways wing/wings passport/passports seat/seats jet/jets",
        actions="flies/fly/flew:plane,jet lands/land/landed:plane,jet "
        "announces/announce/announced:delay,boarding pours/pour/poured:coffee,juice",
        moves="descends/descend shakes/shake",
        places="airport terminal cockpit",
        adjectives="international airborne smooth bumpy",
    ),
    "wedding": dict(
        roles="bride/brides guest/guests",
        things="balloon/balloons candle/candles ring/rings dress/dresses gift/gifts flower/flowers",
        actions="dances/dance/danced:waltz,tango unwraps/unwrap/unwrapped:gifts,presents "
        "lights/light/lit:candles,lanterns toasts/toast/toasted:couple,bride",
        moves="pops/pop twinkles/twinkle",
        places="ballroom chapel marquee",
        adjectives="festive elegant white formal",
    ),
}


@dataclass(frozen=True)
class Topic:
    """One topic's words. Nouns are (singular, plural); actions are (sg, pl, past, objects)."""

    name: str
    roles: tuple[tuple[str, str], ...]
    things: tuple[tuple[str, str], ...]
    actions: tuple[tuple[str, str, str, tuple[str, ...]], ...]
    moves: tuple[tuple[str, str], ...]
    places: tuple[str, ...]
    adjectives: tuple[str, ...]


def _pairs(spec: str) -> tuple[tuple[str, str], ...]:
    return tuple(tuple(item.split("/")) for item in spec.split())


def _actions(spec: str) -> tuple[tuple[str, str, str, tuple[str, ...]], ...]:
    actions = []
    for item in spec.split():
        forms, objects = item.split(":")
        singular, plural, past = forms.split("/")
        actions.append((singular, plural, past, tuple(objects.split(","))))
    return tuple(actions)


TOPICS: tuple[Topic, ...] = tuple(
    Topic(
        name=name,
        roles=_pairs(spec["roles"]),
        things=_pairs(spec["things"]),
        actions=_actions(spec["actions"]),
        moves=_pairs(spec["moves"]),
        places=tuple(spec["places"].split()),
        adjectives=tuple(spec["adjectives"].split()),
    )
    for name, spec in _TOPIC_SPECS.items()
)

NAMES = (
    "anna ben clara david emma felix grace henry iris jack kate leo maria nina oscar paul rosa "
    "sam tom lucy max eva hugo ivy omar ruth sara tim vera zoe adam bella carl dora eric fiona "
    "gus hana ian jane karl lena mia nick olga pedro rita simon tara victor will yara alex beth "
    "chen dan ella finn greta hans"
).split()
DAYS = "monday tuesday wednesday thursday friday saturday sunday".split()
NUMBERS = "two three four five six seven eight nine ten".split()
TIMES = ("in the morning", "after lunch", "at noon", "in the evening", "before dinner")
PREPOSITIONS = ("near", "behind", "beside", "under", "above", "by")

# Polarity words: (polarity, strength). Strength 3 > 2 > 1 within each polarity.
_POLARITY_SPEC = {
    (1, 3): "wonderful excellent amazing superb fantastic brilliant marvellous stunning",
    (1, 2): "good great lovely pleasant nice delightful enjoyable charming",
    (1, 1): "fine decent fair acceptable reasonable okay adequate passable",
    (0, 3): "awful terrible horrible dreadful atrocious disgusting appalling hideous",
    (0, 2): "bad poor unpleasant disappointing nasty sloppy annoying shoddy",
    (0, 1): "mediocre dull weak bland tiresome forgettable boring lacklustre",
}
POLARITY_WORDS: dict[str, tuple[int, int]] = {
    word: key for key, words in _POLARITY_SPEC.items() for word in words.split()
}
# A fixed split, the same for every seed: every other word of each (polarity, strength) group.
SEEN_POLARITY_WORDS: tuple[str, ...] = tuple(
    word for words in _POLARITY_SPEC.values() for word in words.split()[0::2]
)
HELD_OUT_POLARITY_WORDS: tuple[str, ...] = tuple(
    word for words in _POLARITY_SPEC.values() for word in words.split()[1::2]
)
INTENSIFIERS = {3: ("absolutely ", "truly "), 2: ("very ", "really "), 1: ("quite ", "rather ")}
STARS = {3: "five stars", 2: "four stars", 1: "four stars", -1: "two stars", -2: "two stars"}
STARS[-3] = "one star"

# Review kinds: an opener with the reviewed thing's {name}, and aspects "sg" (was) / "pl" (were).
REVIEW_KINDS = {
    "restaurant": (
        "we had dinner at the {name} on {day}.",
        "food service soup dessert menu",
        "prices portions",
    ),
    "hotel": ("we stayed at the {name} hotel last {day}.", "room bed breakfast view", "towels"),
    "film": (
        "i watched the film called the {name} on {day}.",
        "story acting ending soundtrack",
        "actors jokes",
    ),
    "book": ("i read a book called the {name} last {day}.", "plot writing cover", "characters"),
    "phone": (
        "i bought the {name} phone on {day}.",
        "screen battery camera speaker",
        "buttons apps",
    ),
    "concert": ("we saw the {name} band play on {day}.", "singer sound show", "songs lights"),
    "museum": (
        "we visited the {name} museum on {day}.",
        "exhibition guide cafe",
        "paintings displays",
    ),
}
_NAME_COLOURS = "red blue silver purple orange yellow black pink".split()
_NAME_ANIMALS = "fox owl bear tiger swan wolf rabbit dolphin".split()
VERDICTS = {
    1: ("i would recommend it to my friends.", "we will come back soon.", "i loved it."),
    0: ("i would not recommend it.", "avoid it.", "we will never come back.", "what a waste."),
}

# ---------------------------------------------------------------------------------------------
# Sentences of topic documents
# ---------------------------------------------------------------------------------------------


def _agreement_sentence(rng: random.Random, topic: Topic, mask: bool = False) -> tuple:
    """A sentence whose verb must agree with its subject across an attractor noun.

    Returns (sentence, correct verb, wrong verb, subject is plural). With `mask` the verb is
    replaced by [MASK] (followed by a space so that it stays a token of its own).
    """
    plural = rng.random() < 0.5
    subject_number = 1 if plural else 0
    attractor_number = 1 - subject_number if rng.random() < 0.7 else subject_number
    preposition = rng.choice(PREPOSITIONS)
    form = rng.randrange(3)
    if form == 0:  # the pot near the ovens boils.
        subject = rng.choice(topic.things)[subject_number]
        attractor = rng.choice(topic.things)[attractor_number]
        move = rng.choice(topic.moves)
        correct, wrong = move[subject_number], move[1 - subject_number]
        template = f"the {subject} {preposition} the {attractor} {{verb}} ."
    elif form == 1:  # the pots near the oven are hot.
        subject = rng.choice(topic.things)[subject_number]
        attractor = rng.choice(topic.things)[attractor_number]
        correct, wrong = ("are", "is") if plural else ("is", "are")
        adjective = rng.choice(topic.adjectives)
        template = f"the {subject} {preposition} the {attractor} {{verb}} {adjective} ."
    else:  # the cooks near the oven chop the onions.
        subject = rng.choice(topic.roles)[subject_number]
        attractor = rng.choice(topic.things)[attractor_number]
        action = rng.choice(topic.actions)
        correct, wrong = action[subject_number], action[1 - subject_number]
        obj = rng.choice(action[3])
        template = f"the {subject} {preposition} the {attractor} {{verb}} the {obj} ."
    text = template.format(verb=MASK if mask else correct)
    return _tidy(text), correct, wrong, plural


def _recall_sentence(rng: random.Random, topic: Topic, role: str, name: str, mask: bool = False):
    """The late sentence that needs the early fact: "in the end, the baker, maria, went home."."""
    who = MASK if mask else name
    opening = rng.choice(("in the end", "later that day", "at last", "that evening"))
    if rng.random() < 0.5:
        text = f"{opening}, the {role}, {who} , went home."
    else:
        action = rng.choice(topic.actions)
        text = f"{opening}, the {role}, {who} , {action[2]} the {rng.choice(action[3])}."
    return _tidy(text)


def _tidy(text: str) -> str:
    """Attach punctuation to the previous word, except after [MASK], which keeps its space."""
    text = re.sub(r"(?<!\[MASK\]) ([.,])", r"\1", text)
    return re.sub(r"\s+", " ", text).strip()


def _body_sentence(rng: random.Random, topic: Topic, names: list[str]) -> str:
    """One sentence in the middle of a topic document: topic words, often one of its names."""
    name = rng.choice(names)
    action = rng.choice(topic.actions)
    obj = rng.choice(action[3])
    role_plural = rng.choice(topic.roles)[1]
    thing = rng.choice(topic.things)
    place = rng.choice(topic.places)
    adjective = rng.choice(topic.adjectives)
    form = rng.randrange(12)
    if form >= 9:  # a quarter of the body teaches number agreement
        return _agreement_sentence(rng, topic)[0]
    if form == 0:
        return f"{name} {action[0]} the {obj} in the {place}."
    if form == 1:
        return f"every {rng.choice(DAYS)}, the {role_plural} {action[1]} the {obj}."
    if form == 2:
        return f"yesterday {name} {action[2]} the {obj} with the {thing[0]}."
    if form == 3:
        count = rng.choice(NUMBERS)
        return f"there are {count} {thing[1]} in the {place}."
    if form == 4:
        return f"{name} thinks that the {place} is {adjective}."
    if form == 5:
        return f"{rng.choice(TIMES)}, {name} {action[0]} the {obj}."
    if form == 6 and len(names) > 1:
        return f"{names[0]} and {names[1]} {action[1]} the {obj} together."
    if form == 7:
        return f"the {thing[0]} in the {place} was {adjective} on {rng.choice(DAYS)}."
    move = rng.choice(topic.moves)
    return f"in the {place}, the {thing[1]} {move[1]} and the {thing[0]} {move[0]}."


def _topic_document(
    rng: random.Random, topic: Topic | None = None, recall_chance: float = 0.6
) -> tuple[list[str], dict]:
    """A document on one topic: facts first, body sentences, maybe a late recall sentence.

    Returns (sentences, facts) with facts = {role: name} for the people it introduces.
    """
    topic = topic or rng.choice(TOPICS)
    roles = [role[0] for role in rng.sample(topic.roles, 2)]
    names = rng.sample(NAMES, 2)
    facts = dict(zip(roles, names, strict=True))
    sentences = [f"the {role} is called {name}." for role, name in facts.items()]
    sentences += [_body_sentence(rng, topic, names) for _ in range(rng.randint(3, 6))]
    if rng.random() < recall_chance:
        role = rng.choice(roles)
        sentences.append(_recall_sentence(rng, topic, role, facts[role]))
    return sentences, facts


# ---------------------------------------------------------------------------------------------
# Reviews
# ---------------------------------------------------------------------------------------------


def _polarity_word(rng: random.Random, polarity: int, strengths, vocabulary=None) -> str:
    """A polarity word of the given polarity (1 positive, 0 negative) and one of `strengths`."""
    vocabulary = vocabulary or POLARITY_WORDS
    choices = [
        word
        for word in vocabulary
        if POLARITY_WORDS[word][0] == polarity and POLARITY_WORDS[word][1] in strengths
    ]
    return rng.choice(choices)


def _aspect(rng: random.Random, kind: str) -> tuple[str, str]:
    """An aspect of a review kind and its verb: ("food", "was") or ("prices", "were")."""
    _, singular, plural = REVIEW_KINDS[kind]
    aspects = [(a, "was") for a in singular.split()] + [(a, "were") for a in plural.split()]
    return rng.choice(aspects)


def _plain_opinion(rng: random.Random, aspect: str, be: str, word: str) -> str:
    """ "the food was (very) good.": one aspect, one polarity word, maybe an intensifier."""
    intensifier = rng.choice(("", "") + INTENSIFIERS[POLARITY_WORDS[word][1]])
    return f"the {aspect} {be} {intensifier}{word}."


def _review_document(rng: random.Random) -> tuple[list[str], list[tuple[int, str]]]:
    """A review with one stance from start to end.

    Returns (sentences, slots): slots are (sentence index, polarity word) for the plain aspect
    sentences "the food was (very) good." whose word carries the review's own polarity.
    """
    kind = rng.choice(list(REVIEW_KINDS))
    name = f"{rng.choice(_NAME_COLOURS)} {rng.choice(_NAME_ANIMALS)}"
    score = rng.choice((-3, -2, -1, 1, 2, 3))
    polarity, strength = int(score > 0), abs(score)
    near = range(max(1, strength - 1), min(3, strength + 1) + 1)  # graded: neighbours co-occur

    def word(p: int = polarity) -> str:
        return _polarity_word(rng, p, near if p == polarity else (1, 2, 3))

    sentences = [REVIEW_KINDS[kind][0].format(name=name, day=rng.choice(DAYS))]
    slots = []
    for _ in range(rng.randint(2, 4)):
        (aspect, be), (aspect2, be2) = _aspect(rng, kind), _aspect(rng, kind)
        form = rng.random()
        if form < 0.55:
            chosen = word()
            slots.append((len(sentences), chosen))
            sentences.append(_plain_opinion(rng, aspect, be, chosen))
        elif form < 0.7:
            sentences.append(f"the {aspect} {be} not {word(1 - polarity)}.")
        elif form < 0.85:
            sentences.append(
                f"the {aspect} {be} {word(1 - polarity)} but the {aspect2} {be2} {word()}."
            )
        else:
            sentences.append(f"the {aspect} {be} {word()} and the {aspect2} {be2} {word()}.")
    if rng.random() < 0.5:
        sentences.append(f"overall, the {name} was {word()}.")
    else:
        chosen = word()
        article = "an" if chosen[0] in "aeiou" else "a"
        sentences.append(f"all in all, {article} {chosen} {kind}.")
    ending = [f"{STARS[score]}." if rng.random() < 0.5 else f"i give it {STARS[score]}."]
    ending.append(rng.choice(VERDICTS[polarity]))
    rng.shuffle(ending)
    return sentences + ending, slots


# Comment threads: one-line opinions whose stance sits two words before the polarity word.
STANCE_VERBS = {
    1: ("loved", "enjoyed", "liked", "adored"),
    0: ("hated", "disliked", "loathed", "regretted"),
}


def _comment_line(rng: random.Random, kind: str, polarity: int, word: str | None = None) -> str:
    """ "i loved the superb food.": a stance verb, then a polarity word of the same polarity."""
    aspect, _ = _aspect(rng, kind)
    word = word or _polarity_word(rng, polarity, (1, 2, 3))
    return f"{rng.choice(('i', 'we'))} {rng.choice(STANCE_VERBS[polarity])} the {word} {aspect}."


def _comment_document(rng: random.Random) -> list[str]:
    """A thread of 3-6 one-line comments on one kind of thing, each with its own stance.

    Unlike a review, whose stance is spread over several sentences, a comment puts the cue
    ("loved"/"hated") two words before the polarity word: the shortest lookup that teaches
    which words are praise (chapter 07, "Short documents first").
    """
    kind = rng.choice(list(REVIEW_KINDS))
    return [_comment_line(rng, kind, rng.randrange(2)) for _ in range(rng.randint(3, 6))]


def _one_stance_document(rng: random.Random) -> list[str]:
    """A short document with one stance throughout: half are 2-4 plain opinions ("the room was
    superb. the bed was lovely."), half a comment thread whose lines all share one stance.

    Every polarity word in it is evidence for every other: the lookup behind a review's stance
    ("which words are praise, judging by the others?"), with nothing (stars, "but", "not", a
    line of the other stance) that contradicts it (chapter 07, phase 2).
    """
    kind, polarity = rng.choice(list(REVIEW_KINDS)), rng.randrange(2)
    if rng.random() < 0.5:
        return [_comment_line(rng, kind, polarity) for _ in range(rng.randint(3, 6))]
    sentences = []
    for _ in range(rng.randint(2, 4)):
        aspect, be = _aspect(rng, kind)
        sentences.append(_plain_opinion(rng, aspect, be, _polarity_word(rng, polarity, (1, 2, 3))))
    return sentences


# ---------------------------------------------------------------------------------------------
# The corpus
# ---------------------------------------------------------------------------------------------

_WORD = re.compile(r"[a-z]+")


@dataclass
class EmbeddedCorpus:
    """Documents split three ways; a document is a list of sentence strings."""

    seed: int
    train: list[list[str]]
    validation: list[list[str]]
    test: list[list[str]]
    review_share: float = 0.3
    comment_share: float = 0.0
    short_share: float = 0.0

    def split(self, name: str) -> list[list[str]]:
        """The documents of split `name` ("train", "validation" or "test")."""
        if name not in ("train", "validation", "test"):
            raise ValueError(f"split must be 'train', 'validation' or 'test', got {name!r}")
        return getattr(self, name)

    def texts(self, split: str = "train", unit: str = "sentence") -> list[str]:
        """One string per sentence (unit="sentence") or per document (unit="document")."""
        documents = self.split(split)
        if unit == "sentence":
            return [sentence for document in documents for sentence in document]
        if unit == "document":
            return [" ".join(document) for document in documents]
        raise ValueError(f"unit must be 'sentence' or 'document', got {unit!r}")

    def word_counts(self, split: str | None = None) -> Counter:
        """How often each word occurs (punctuation left out), in one split or in all three."""
        splits = [split] if split else ["train", "validation", "test"]
        return Counter(
            word for name in splits for text in self.texts(name) for word in _WORD.findall(text)
        )

    def describe(self) -> str:
        """A few lines on the corpus's size and structure, and how to measure what it teaches."""
        counts = self.word_counts()
        sentences = sum(len(self.texts(name)) for name in ("train", "validation", "test"))
        characters = sum(len(t) + 1 for n in ("train", "validation", "test") for t in self.texts(n))
        return "\n".join(
            [
                f"embedded corpus, seed {self.seed}: {len(self.train)} train / "
                f"{len(self.validation)} validation / {len(self.test)} test documents",
                f"{sentences} sentences, {sum(counts.values())} words, {len(counts)} distinct "
                f"words, {characters / 1e6:.1f} MB of text",
                f"{len(TOPICS)} topics + reviews ({self.review_share:.0%} of documents) of "
                f"{len(REVIEW_KINDS)} kinds + comment threads ({self.comment_share:.0%}) + "
                f"short one-stance documents ({self.short_share:.0%})",
                "NSP: documents stay on one topic with the same people -> NSP accuracy",
                "facts: 'the baker is called maria' early, needed late -> probes()['fact_recall']",
                "agreement across attractor nouns -> probes()['agreement']",
                f"sentiment: {len(POLARITY_WORDS)} graded polarity words, negation, 'but' -> "
                "sentiment_task() (test uses held-out words only), probes()['sentiment_words']",
            ]
        )


# Named mixes of document kinds: generate_corpus(**EMBEDDED_CORPORA[name]). Recipes give the
# whole corpus ("embedded") the profile's share of comment threads.
EMBEDDED_CORPORA = {
    "embedded": {},
    "embedded-comments": dict(review_share=0.0, comment_share=1.0),  # phase 1 of the course
    "embedded-short": dict(review_share=0.0, short_share=1.0),  # phase 2: one stance each
}


def _check_seed(seed) -> None:
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}; pass e.g. seed=0")


def generate_corpus(
    seed: int = 0,
    num_documents: int = 10_000,
    review_share: float = 0.3,
    comment_share: float = 0.0,
    short_share: float = 0.0,
    validation_fraction: float = 0.05,
    test_fraction: float = 0.05,
) -> EmbeddedCorpus:
    """Generate the embedded corpus: `num_documents` distinct documents, split three ways.

    `review_share`, `comment_share` and `short_share` are the expected shares of reviews, comment
    threads and short one-stance documents; the rest are topic documents. The same seed gives the
    same corpus on every machine (only `random.Random(seed)` is used). The default, 10,000
    documents, is ~2.6 MB of text (~450k words), generated in under a second.
    """
    _check_seed(seed)
    if not isinstance(num_documents, int) or num_documents < 3:
        raise ValueError(f"num_documents must be an int >= 3 (one per split), got {num_documents}")
    shares = (review_share, comment_share, short_share)
    if not (min(shares) >= 0.0 and sum(shares) <= 1.0):
        raise ValueError(
            "review_share, comment_share and short_share must be >= 0 and sum to at most 1, "
            f"got {review_share}, {comment_share} and {short_share}"
        )
    if not (
        0 < validation_fraction and 0 < test_fraction and validation_fraction + test_fraction < 1
    ):
        raise ValueError(
            "validation_fraction and test_fraction must be > 0 and sum to less than 1, got "
            f"{validation_fraction} and {test_fraction}"
        )
    rng = random.Random(seed)
    documents, seen = [], set()
    while len(documents) < num_documents:
        draw = rng.random()
        if draw < review_share:
            document = _review_document(rng)[0]
        elif draw < review_share + comment_share:
            document = _comment_document(rng)
        elif draw < review_share + comment_share + short_share:
            document = _one_stance_document(rng)
        else:
            document = _topic_document(rng)[0]
        key = tuple(document)
        if key not in seen:  # distinct documents keep the splits disjoint
            seen.add(key)
            documents.append(document)
    num_validation = max(1, round(num_documents * validation_fraction))
    num_test = max(1, round(num_documents * test_fraction))
    num_train = num_documents - num_validation - num_test
    return EmbeddedCorpus(
        seed=seed,
        train=documents[:num_train],
        validation=documents[num_train : num_train + num_validation],
        test=documents[num_train + num_validation :],
        review_share=review_share,
        comment_share=comment_share,
        short_share=short_share,
    )


# ---------------------------------------------------------------------------------------------
# The sentiment task
# ---------------------------------------------------------------------------------------------


def _sentiment_example(rng: random.Random, label: int, vocabulary: tuple[str, ...]) -> str:
    """A short review sentence whose label is `label`, using polarity words from `vocabulary`.

    Forms: plain ("the food was good."), negated ("the food was not bad."), contrast ("the food
    was good but the service was awful."; the clause after "but" decides), "although" (the main
    clause decides), "and" (both clauses agree), and a neutral opener before a plain sentence.
    """
    kind = rng.choice(list(REVIEW_KINDS))

    def clause(polarity: int, negation_chance: float) -> str:
        aspect, be = _aspect(rng, kind)
        if rng.random() < negation_chance:  # "not" flips the word's polarity
            return (
                f"the {aspect} {be} not {_polarity_word(rng, 1 - polarity, (1, 2, 3), vocabulary)}"
            )
        chosen = _polarity_word(rng, polarity, (1, 2, 3), vocabulary)
        intensifier = rng.choice(("", "") + INTENSIFIERS[POLARITY_WORDS[chosen][1]])
        return f"the {aspect} {be} {intensifier}{chosen}"

    form = rng.random()
    if form < 0.25:
        return f"{clause(label, 0.0)}."
    if form < 0.45:
        return f"{clause(label, 1.0)}."
    if form < 0.7:
        return f"{clause(1 - label, 0.2)} but {clause(label, 0.2)}."
    if form < 0.8:
        return f"although {clause(1 - label, 0.2)}, {clause(label, 0.2)}."
    if form < 0.9:
        return f"{clause(label, 0.2)} and {clause(label, 0.2)}."
    name = f"{rng.choice(_NAME_COLOURS)} {rng.choice(_NAME_ANIMALS)}"
    opener = REVIEW_KINDS[kind][0].format(name=name, day=rng.choice(DAYS))
    return f"{opener} {clause(label, 0.3)}."


def sentiment_task(
    seed: int = 0, num_train: int = 4000, num_validation: int = 500, num_test: int = 1000
) -> dict[str, list[tuple[str, int]]]:
    """Labelled reviews, label 1 positive / 0 negative, balanced, no duplicates within a split.

    "train" and "validation" use only `SEEN_POLARITY_WORDS`; "test" uses only
    `HELD_OUT_POLARITY_WORDS`, which never carry a label in training. A model that only learned
    from the labels is near chance on "test"; one that pretrained on the corpus is not.
    Chance is noisy here: a from-scratch model gives each of the 24 unseen words the polarity
    its random embedding happens to point to, so its test accuracy swings by several points
    from one seed to the next; compare over a few seeds.
    """
    _check_seed(seed)
    for name, size in (("num_train", num_train), ("num_validation", num_validation)):
        if not isinstance(size, int) or size < 2:
            raise ValueError(f"{name} must be an int >= 2, got {size}")
    if not isinstance(num_test, int) or num_test < 2:
        raise ValueError(f"num_test must be an int >= 2, got {num_test}")
    rng = random.Random(f"sentiment-{seed}")  # a str seed is hashed deterministically (sha512)
    taken: set[str] = set()

    def make(size: int, vocabulary: tuple[str, ...]) -> list[tuple[str, int]]:
        examples = []
        for i in range(size):
            label = i % 2
            for _ in range(1000):
                text = _sentiment_example(rng, label, vocabulary)
                if text not in taken:
                    break
            else:
                raise ValueError(f"cannot make {size} distinct examples; ask for fewer")
            taken.add(text)
            examples.append((text, label))
        rng.shuffle(examples)
        return examples

    return {
        "train": make(num_train, SEEN_POLARITY_WORDS),
        "validation": make(num_validation, SEEN_POLARITY_WORDS),
        "test": make(num_test, HELD_OUT_POLARITY_WORDS),
    }


# ---------------------------------------------------------------------------------------------
# Probe sets
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProbeItem:
    """A masked text and two candidates for its [MASK]: a model passes if it prefers `correct`."""

    text: str
    correct: str
    incorrect: str


def _stance_probe(rng: random.Random) -> ProbeItem:
    """A comment thread with one held-out polarity word masked, its stance verb before it."""
    kind, polarity = rng.choice(list(REVIEW_KINDS)), rng.randrange(2)
    correct = _polarity_word(rng, polarity, (1, 2, 3), HELD_OUT_POLARITY_WORDS)
    strength = (POLARITY_WORDS[correct][1],)
    wrong = _polarity_word(rng, 1 - polarity, strength, HELD_OUT_POLARITY_WORDS)
    lines = [_comment_line(rng, kind, rng.randrange(2)) for _ in range(rng.randint(2, 5))]
    line = _comment_line(rng, kind, polarity, correct).replace(f" {correct} ", f" {MASK} ")
    lines.insert(rng.randrange(len(lines) + 1), line)
    return ProbeItem(" ".join(lines), correct, wrong)


def probes(seed: int = 0, num_items: int = 200) -> dict[str, list[ProbeItem]]:
    """Probe sets for what pretraining on the embedded corpus should teach (chance = 50% each).

    * "agreement": one sentence, the verb masked; correct = the form agreeing with the subject,
      incorrect = the other number's form (usually the attractor noun's number).
    * "fact_recall": a whole topic document whose late recall sentence has the name masked;
      correct = the name given to that role earlier, incorrect = the other name in the document.
    * "sentiment_words": a whole review with one plain aspect sentence's word replaced by
      [MASK]; correct = a held-out polarity word of the review's polarity, incorrect = a held-out
      word of the opposite polarity and the same strength. The review's stance is in its other
      sentences: the model must look across sentences.
    * "stance_words": a comment thread with one comment's polarity word masked, its stance verb
      two words before ("i loved the [MASK] food."); correct and incorrect as for
      "sentiment_words". The cue is local: does the model know which held-out words are praise?
    """
    _check_seed(seed)
    if not isinstance(num_items, int) or num_items < 1:
        raise ValueError(f"num_items must be a positive int, got {num_items}")
    rng = random.Random(f"probes-{seed}")
    agreement = []
    for _ in range(num_items):
        text, correct, wrong, _ = _agreement_sentence(rng, rng.choice(TOPICS), mask=True)
        agreement.append(ProbeItem(text, correct, wrong))

    fact_recall = []
    while len(fact_recall) < num_items:
        topic = rng.choice(TOPICS)
        sentences, facts = _topic_document(rng, topic, recall_chance=0.0)
        role = rng.choice(list(facts))
        sentences.append(_recall_sentence(rng, topic, role, facts[role], mask=True))
        other = next(name for r, name in facts.items() if r != role)
        fact_recall.append(ProbeItem(" ".join(sentences), facts[role], other))

    sentiment_words = []
    while len(sentiment_words) < num_items:
        sentences, slots = _review_document(rng)
        if not slots:
            continue
        index, word = rng.choice(slots)
        polarity, strength = POLARITY_WORDS[word]
        correct = _polarity_word(rng, polarity, (strength,), HELD_OUT_POLARITY_WORDS)
        wrong = _polarity_word(rng, 1 - polarity, (strength,), HELD_OUT_POLARITY_WORDS)
        sentences[index] = re.sub(rf"\b{word}\.$", f"{MASK} .", sentences[index])
        sentiment_words.append(ProbeItem(" ".join(sentences), correct, wrong))

    stance_words = [_stance_probe(rng) for _ in range(num_items)]
    return {
        "agreement": agreement,
        "fact_recall": fact_recall,
        "sentiment_words": sentiment_words,
        "stance_words": stance_words,
    }


def polarity_words_in(text: str) -> list[str]:
    """The polarity words that occur in `text`, in order."""
    return [word for word in _WORD.findall(text) if word in POLARITY_WORDS]
