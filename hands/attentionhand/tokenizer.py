"""The CLIP tokenizer offline, and which CLIP token positions belong to which words of a prompt.

Stable Diffusion's tokenizer is CLIP's byte-level BPE. Its files come from the user's SD folder when there is one;
otherwise they are built from the BPE list that `open_clip` ships (bpe_simple_vocab_16e6.txt.gz), the same way
OpenAI's tokenizer builds its vocabulary: 256 byte symbols, the same with `</w>`, 48,894 merges and the two
special tokens (49,408 ids).

Prompts are fixed with ftfy first (`fix_prompt`), as the release's transformers-4 CLIP tokenizer does when ftfy
is installed (open_clip, one of its requirements, brings it): curly quotes, ligatures, full-width characters and
HTML entities become what they stand for.

The released AttentionHand code looked words up at the wrong CLIP positions. `word_token_positions` maps each
word to the positions of all of its sub-word tokens (position 0 is the start token). Which words are the hand
words: `hand_words="project"` (the default; a hand vocabulary, no update without one) or `"release"` (hand,
hands, gesture, finger, fingers and every present participle among the first 75 characters, else the first word).
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Literal

import ftfy
from transformers import CLIPTokenizer

from hands.io.atomic import atomic_write_bytes
from hands.io.home import cache_dir

MAX_LENGTH = 77
NUM_MERGES = 49152 - 256 - 2
CACHE_DIR = cache_dir("clip_tokenizer")

# Words treated as hand-related for the text attention stage (no corpus download; plurals handled below).
HAND_WORDS = frozenset({
    "hand", "palm", "finger", "thumb", "fist", "wrist", "knuckle", "fingertip", "fingernail", "nail", "grip",
    "grasp", "grab", "hold", "holding", "point", "pointing", "pinch", "pinching", "wave", "waving", "clap",
    "handshake", "glove", "index", "pinky", "ring", "middle",
})


HandWordRule = Literal["project", "release"]
RELEASE_HAND_WORDS = frozenset({"hand", "hands", "gesture", "finger", "fingers"})
RELEASE_PROMPT_CHARACTERS = 75
"""The release tags only `prompt[:75]` (cldm/cldm.py _get_indices_to_alter)."""
# Words in -ing that are not verb forms; the release's NLTK tagger (VBG) does not select them either.
ING_NOUNS = frozenset({
    "thing", "things", "something", "anything", "nothing", "everything", "morning", "evening", "ceiling", "clothing",
    "sibling", "pudding", "wedding", "spring", "string", "sting", "sling", "swing", "wing", "ring", "king", "icing",
    "awning", "offspring", "duckling", "building", "painting", "drawing", "lighting", "earring", "darling",
})


def fix_prompt(text: str) -> str:
    """The text the release's CLIP tokenizer sees: ftfy.fix_text (e.g. ’ -> ', ﬁ -> fi, Ｈ -> H, &amp; -> &)."""
    return ftfy.fix_text(text)


def is_present_participle(word: str) -> bool:
    """An offline stand-in for NLTK's VBG tag: a lower-case -ing word of at least five letters that is not a
    common -ing noun (holding, waving, pointing; not thing, morning, ring)."""
    word = re.sub(r"[^a-z]", "", word.lower())
    return len(word) >= 5 and word.endswith("ing") and word not in ING_NOUNS


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible map from bytes to printable unicode characters."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    codes = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in codes)))


def write_clip_vocabulary(bpe_file: str | Path, folder: str | Path) -> Path:
    """Write vocab.json and merges.txt for `CLIPTokenizer` from an OpenAI/open_clip BPE list (.txt.gz)."""
    lines = gzip.open(bpe_file).read().decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1:NUM_MERGES + 1]]
    symbols = list(bytes_to_unicode().values())
    vocab = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    folder = Path(folder)
    atomic_write_bytes(folder / "vocab.json", json.dumps({token: i for i, token in enumerate(vocab)}).encode(), overwrite=True)
    merge_text = "#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n"
    atomic_write_bytes(folder / "merges.txt", merge_text.encode(), overwrite=True)
    return folder


def clip_tokenizer(sd_folder: str | Path | None = None, cache_dir: str | Path = CACHE_DIR) -> CLIPTokenizer:
    """SD's CLIP tokenizer: `<sd_folder>/tokenizer` when given, else built offline from open_clip's BPE file."""
    if sd_folder is not None and (Path(sd_folder) / "tokenizer").is_dir():
        return CLIPTokenizer.from_pretrained(Path(sd_folder) / "tokenizer", local_files_only=True)
    cache_dir = Path(cache_dir)
    if not (cache_dir / "vocab.json").is_file() or not (cache_dir / "merges.txt").is_file():
        try:
            from open_clip.tokenizer import default_bpe
        except ImportError:
            raise FileNotFoundError("no CLIP tokenizer: pass an SD folder with tokenizer/ or install open_clip_torch "
                                    "(it ships the BPE list)") from None
        write_clip_vocabulary(default_bpe(), cache_dir)
    return CLIPTokenizer(str(cache_dir / "vocab.json"), str(cache_dir / "merges.txt"), model_max_length=MAX_LENGTH)


def is_hand_word(word: str) -> bool:
    """Whether a word (any case, trailing punctuation ignored) is hand-related, plurals and -ing forms included."""
    word = re.sub(r"[^a-z-]", "", word.lower())
    for part in [word, *word.split("-")]:
        if part and {part, part[:-1] if part.endswith("s") else part, part[:-2] if part.endswith("es") else part} & HAND_WORDS:
            return True
    return False


def word_token_positions(tokenizer: CLIPTokenizer, prompt: str) -> list[tuple[str, list[int]]]:
    """For each whitespace-separated word of the prompt, the CLIP sequence positions of its tokens (the start token
    is position 0). Words past the 77-token window get no positions."""
    positions, cursor = [], 1
    for word in fix_prompt(prompt).split():
        count = len(tokenizer.tokenize(word))
        positions.append((word, [p for p in range(cursor, cursor + count) if p < MAX_LENGTH - 1]))
        cursor += count
    return positions


def is_release_hand_word(word: str) -> bool:
    """The release's selection: one of hand, hands, gesture, finger, fingers, or a present participle."""
    return re.sub(r"[^a-z]", "", word.lower()) in RELEASE_HAND_WORDS or is_present_participle(word)


def hand_token_positions(tokenizer: CLIPTokenizer, prompt: str, rule: HandWordRule = "project") -> list[int]:
    """CLIP positions of the tokens of the prompt's hand words, punctuation tokens left out. `rule="project"`:
    the hand vocabulary, empty when there is none. `rule="release"`: the release's words among the first 75
    characters, and the first word when there is none (the release then still optimises one token)."""
    if rule not in ("project", "release"):
        raise ValueError(f"hand word rule must be 'project' or 'release', got {rule!r}")
    words = word_token_positions(tokenizer, prompt)
    if rule == "release":
        head = fix_prompt(prompt)[:RELEASE_PROMPT_CHARACTERS].split()  # the release tags these; the last may be cut
        chosen = [i for i, word in enumerate(head[:len(words)]) if is_release_hand_word(word)] or ([0] if words else [])
    else:
        chosen = [i for i, (word, _) in enumerate(words) if is_hand_word(word)]
    positions = []
    for i in chosen:
        word, places = words[i]
        tokens = tokenizer.tokenize(word)
        positions += [p for p, token in zip(places, tokens) if re.search(r"[a-z]", token.replace("</w>", ""))]
    return positions
