"""The offline CLIP tokenizer against open_clip's own, and word -> token position mapping."""

import pytest
from open_clip.tokenizer import SimpleTokenizer

from hands.attentionhand.tokenizer import (
    clip_tokenizer,
    fix_prompt,
    hand_token_positions,
    is_hand_word,
    is_present_participle,
    word_token_positions,
)

PROMPTS = [
    "a photo of a hand, palm facing camera",
    "The woman is holding a pink umbrella with her hand.",
    "A woman is holding up her hand with fingers spread out while holding a pair of scissors.",
    "Fingertips touch in a handshake; thumbs-up! (2 hands)",
]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return clip_tokenizer(cache_dir=tmp_path_factory.mktemp("clip"))


def test_ids_match_open_clip(tokenizer):
    reference = SimpleTokenizer()
    for prompt in PROMPTS:
        ours = tokenizer(prompt).input_ids
        assert ours == [49406] + reference.encode(prompt) + [49407]
    padded = tokenizer(PROMPTS[0], padding="max_length", max_length=77).input_ids
    assert len(padded) == 77 and padded[-1] == 49407 and len(tokenizer) == 49408


def test_word_positions_cover_multi_token_words(tokenizer):
    prompt = PROMPTS[3]
    ids = tokenizer(prompt).input_ids
    mapping = word_token_positions(tokenizer, prompt)
    assert [p for _, places in mapping for p in places] == list(range(1, len(ids) - 1))  # every token, in order
    fingertips = dict(mapping)["Fingertips"]
    assert len(fingertips) == 2  # finger + tips
    assert tokenizer.decode([ids[p] for p in fingertips]).replace(" ", "") == "fingertips"
    hand_positions = hand_token_positions(tokenizer, prompt)
    words = {tokenizer.decode([ids[p]]).strip() for p in hand_positions}
    assert words == {"finger", "tips", "handshake", "thumbs", "up", "hands"}  # whole words, without punctuation
    assert hand_token_positions(tokenizer, "a cat on a mat") == []


def test_hand_words():
    assert all(is_hand_word(w) for w in ("Hand", "hands,", "fingers", "holding", "thumbs-up", "Palm."))
    assert not any(is_hand_word(w) for w in ("umbrella", "cake", "woman", "scissors"))


def test_prompts_are_fixed_like_the_release_tokenizer(tokenizer):
    """The release's CLIP tokenizer (transformers 4 with ftfy) fixes text first, as open_clip's does."""
    reference = SimpleTokenizer()
    for prompt in ("A man’s hand — waving &amp; pointing… ¡Hola! Ｈａｎｄ", "Café “naïve” ﬁngers ５ holding a cup"):
        ids = tokenizer(fix_prompt(prompt)).input_ids
        assert ids == [49406] + reference.encode(prompt) + [49407]
    assert len(tokenizer.tokenize(fix_prompt("man’s"))) == 2 and len(tokenizer.tokenize("man’s")) > 2
    mapping = dict(word_token_positions(tokenizer, "a ﬁnger"))
    assert list(mapping) == ["a", "finger"] and len(mapping["finger"]) == 1


def test_release_hand_word_rule(tokenizer):
    prompt = "The woman is holding a pink umbrella with her hand."
    assert hand_token_positions(tokenizer, prompt, "release") == [4, 10]  # holding, hand
    assert hand_token_positions(tokenizer, prompt) == [4, 10]
    assert hand_token_positions(tokenizer, "a gesture and two gestures", "release") == [2]  # not 'gestures'
    assert hand_token_positions(tokenizer, "a cat on a mat", "release") == [1]  # the release's fallback: one token
    assert hand_token_positions(tokenizer, "a cat on a mat") == []
    long = "a very long description of a quiet morning in a sunny kitchen with bread and jam, then a hand"
    assert long.index("hand") > 75
    assert hand_token_positions(tokenizer, long, "release") == [1]  # only the first 75 characters are tagged
    assert hand_token_positions(tokenizer, long)[-1] == len(tokenizer.tokenize(long))
    assert all(is_present_participle(w) for w in ("holding", "Waving,", "pointing"))
    assert not any(is_present_participle(w) for w in ("thing", "morning", "ring", "sing", "hand"))
    with pytest.raises(ValueError, match="hand word rule"):
        hand_token_positions(tokenizer, prompt, "nltk")
