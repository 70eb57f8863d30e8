"""A tiny WordNet database in WordNet's own file format (nltk's WordNetCorpusReader reads it), laid
out as nltk's downloader lays out the real one: <folder>/corpora/wordnet/. Two noun synsets:
{dog, domestic_dog, Canis_familiaris} and {hound, hound-dog}, and a verb synset {run, go}."""

from pathlib import Path

SYNSETS = {
    "noun": [["dog", "domestic_dog", "Canis_familiaris"], ["hound", "hound-dog"]],
    "verb": [["run", "go"]],
    "adj": [],
    "adv": [],
}
LEX = {"noun": 5, "verb": 38, "adj": 0, "adv": 2}  # lexnames index of noun.animal, verb.motion, ...
POS = {"noun": "n", "verb": "v", "adj": "a", "adv": "r"}


def write_tiny_wordnet(folder: Path) -> Path:
    root = folder / "corpora" / "wordnet"
    root.mkdir(parents=True, exist_ok=True)
    names = ["adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal"]
    names += [f"noun.x{i}" for i in range(6, 38)] + ["verb.motion"]
    (root / "lexnames").write_text("".join(f"{i:02d}\t{name}\t{i % 4 + 1}\n" for i, name in enumerate(names)))
    for suffix, synsets in SYNSETS.items():
        data, index = "  1 tiny WordNet for tests\n", {}
        for lemmas in synsets:
            offset = len(data.encode())
            words = " ".join(f"{lemma} 0" for lemma in lemmas)
            frames = " 00" if suffix == "verb" else ""
            data += f"{offset:08d} {LEX[suffix]:02d} {POS[suffix]} {len(lemmas):02x} {words} 000{frames} | a gloss\n"
            for lemma in lemmas:
                index.setdefault(lemma.lower(), []).append(offset)
        (root / f"data.{suffix}").write_text(data)
        (root / f"index.{suffix}").write_text(
            "".join(
                f"{lemma} {POS[suffix]} {len(offs)} 0 {len(offs)} 0 {' '.join(f'{o:08d}' for o in offs)}  \n"
                for lemma, offs in sorted(index.items())
            )
        )
        (root / f"{suffix}.exc").write_text("")
    (root / "index.sense").write_text("")
    (root / "cntlist.rev").write_text("")
    return folder
