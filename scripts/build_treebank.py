"""Write the shipped fixture treebank ``trainer/artificial/data/es-tiny.conllu``: simple Spanish sentences in
CoNLL-U with Universal Dependencies annotation (ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC), made from
templates written for this project (no licence beyond the project's own).

Each template is a list of ``(form, lemma, upos, feats, head, deprel)`` rows (``head``: 1-based, 0 for the root);
slots ``{N}`` (a noun phrase's determiner and noun agree in gender and number), ``{V}`` ... are filled from small
word lists with a fixed seed, so the file is the same on every run:

    python scripts/build_treebank.py [OUTPUT]
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / "trainer" / "artificial" / "data" / "es-tiny.conllu"

# nouns: form, lemma, gender, number
NOUNS = [("perro", "perro", "Masc", "Sing"), ("gato", "gato", "Masc", "Sing"), ("niña", "niña", "Fem", "Sing"),
         ("libro", "libro", "Masc", "Sing"), ("casa", "casa", "Fem", "Sing"), ("mesa", "mesa", "Fem", "Sing"),
         ("hombre", "hombre", "Masc", "Sing"), ("mujer", "mujer", "Fem", "Sing"), ("tren", "tren", "Masc", "Sing"),
         ("ciudad", "ciudad", "Fem", "Sing"), ("maestro", "maestro", "Masc", "Sing"), ("flor", "flor", "Fem", "Sing"),
         ("niños", "niño", "Masc", "Plur"), ("casas", "casa", "Fem", "Plur"), ("árboles", "árbol", "Masc", "Plur"),
         ("amigas", "amiga", "Fem", "Plur"), ("coches", "coche", "Masc", "Plur"), ("cartas", "carta", "Fem", "Plur")]
DEFINITE = {("Masc", "Sing"): "el", ("Fem", "Sing"): "la", ("Masc", "Plur"): "los", ("Fem", "Plur"): "las"}
INDEFINITE = {("Masc", "Sing"): "un", ("Fem", "Sing"): "una", ("Masc", "Plur"): "unos", ("Fem", "Plur"): "unas"}
ADJECTIVES = [("grande", "grande", {"Sing": "grande", "Plur": "grandes"}),
              ("nuevo", "nuevo", None), ("rojo", "rojo", None), ("pequeño", "pequeño", None),
              ("viejo", "viejo", None), ("bonito", "bonito", None)]
# transitive verbs (3rd person singular present), with their infinitive
VERBS = [("come", "comer"), ("lee", "leer"), ("mira", "mirar"), ("busca", "buscar"), ("compra", "comprar"),
         ("escribe", "escribir"), ("pinta", "pintar"), ("vende", "vender")]
INTRANSITIVE = [("duerme", "dormir"), ("canta", "cantar"), ("trabaja", "trabajar"), ("llega", "llegar"),
                ("corre", "correr"), ("sale", "salir")]
NAMES = ["Ana", "Juan", "María", "Pedro", "Lucía", "Carlos", "Elena", "Pablo"]
SURNAMES = ["López", "García", "Martín", "Ruiz"]
PLACES = ["Madrid", "Sevilla", "Bilbao", "Valencia"]
ADVERBS = ["bien", "mucho", "tarde", "hoy", "aquí", "siempre"]
NUMBERS = [("dos", "2"), ("tres", "3"), ("cuatro", "4"), ("cinco", "5")]


def _adj(form: str, gender: str, number: str) -> str:
    table = dict((a[0], a) for a in ADJECTIVES)[form]
    if table[2] is not None:
        return table[2][number]
    stem = form[:-1]
    return stem + ("o" if gender == "Masc" else "a") + ("s" if number == "Plur" else "")


def _feats(gender: str, number: str, extra: str = "") -> str:
    parts = [f"Gender={gender}", f"Number={number}"] + ([extra] if extra else [])
    return "|".join(sorted(parts))


def _np(rng: random.Random, definite: bool = True, number: str | None = None):
    """A determiner and a noun that agree: (det row values, noun row values) without heads."""
    choices = [n for n in NOUNS if number is None or n[3] == number]
    form, lemma, gender, num = rng.choice(choices)
    table = DEFINITE if definite else INDEFINITE
    det = table[(gender, num)]
    det_lemma = "el" if definite else "uno"
    det_feats = _feats(gender, num, "Definite=Def" if definite else "Definite=Ind") + "|PronType=Art"
    return (det, det_lemma, "DET", det_feats), (form, lemma, "NOUN", _feats(gender, num)), gender, num


def _v(form: str, lemma: str) -> tuple:
    return (form, lemma, "VERB", "Mood=Ind|Number=Sing|Person=3|Tense=Pres|VerbForm=Fin")


PUNCT = (".", ".", "PUNCT", "PunctType=Peri")
COMMA = (",", ",", "PUNCT", "PunctType=Comm")


def _sentences(rng: random.Random):
    """Yield lists of ``(form, lemma, upos, feats, head, deprel)``, one per template in turn."""
    def t_transitive():
        d1, n1, _, _ = _np(rng, number="Sing")
        d2, n2, g2, num2 = _np(rng, definite=rng.random() < 0.5)
        v = rng.choice(VERBS)
        return [(*d1, 2, "det"), (*n1, 3, "nsubj"), (*_v(*v), 0, "root"), (*d2, 5, "det"), (*n2, 3, "obj"),
                (*PUNCT, 3, "punct")]

    def t_obl_amod():
        d1, n1, _, _ = _np(rng, number="Sing")
        d2, n2, g2, num2 = _np(rng, definite=False)
        d3, n3, _, _ = _np(rng)
        a = rng.choice(ADJECTIVES)[0]
        return [(*d1, 2, "det"), (*n1, 3, "nsubj"), (*_v(*rng.choice(VERBS)), 0, "root"), (*d2, 5, "det"),
                (*n2, 3, "obj"), (_adj(a, g2, num2), a, "ADJ", _feats(g2, num2), 5, "amod"),
                ("en", "en", "ADP", "_", 9, "case"), (*d3, 9, "det"), (*n3, 3, "obl"), (*PUNCT, 3, "punct")]

    def t_xcomp():
        d2, n2, _, _ = _np(rng)
        v = rng.choice(VERBS)
        return [("Mi", "mi", "DET", "Number=Sing|Number[psor]=Sing|Person=1|Poss=Yes|PronType=Prs", 2, "det"),
                ("hermano", "hermano", "NOUN", "Gender=Masc|Number=Sing", 4, "nsubj"),
                ("no", "no", "ADV", "Polarity=Neg", 4, "advmod"),
                ("quiere", "querer", "VERB", "Mood=Ind|Number=Sing|Person=3|Tense=Pres|VerbForm=Fin", 0, "root"),
                (v[1], v[1], "VERB", "VerbForm=Inf", 4, "xcomp"), (*d2, 7, "det"), (*n2, 5, "obj"),
                (*PUNCT, 4, "punct")]

    def t_iobj():
        d2, n2, _, _ = _np(rng, definite=False)
        s, o = rng.sample(NAMES, 2)
        return [(s, s, "PROPN", "_", 2, "nsubj"),
                ("dio", "dar", "VERB", "Mood=Ind|Number=Sing|Person=3|Tense=Past|VerbForm=Fin", 0, "root"),
                (*d2, 4, "det"), (*n2, 2, "obj"), ("a", "a", "ADP", "_", 6, "case"), (o, o, "PROPN", "_", 2, "iobj"),
                (*PUNCT, 2, "punct")]

    def t_cop():
        d1, n1, g, num = _np(rng)
        a = rng.choice(ADJECTIVES)[0]
        cop = "es" if num == "Sing" else "son"
        return [(*d1, 2, "det"), (*n1, 5, "nsubj"),
                (cop, "ser", "AUX", f"Mood=Ind|Number={num}|Person=3|Tense=Pres|VerbForm=Fin", 5, "cop"),
                ("muy", "muy", "ADV", "_", 5, "advmod"), (_adj(a, g, num), a, "ADJ", _feats(g, num), 0, "root"),
                (*PUNCT, 5, "punct")]

    def t_conj():
        d1, n1, _, _ = _np(rng, number="Sing")
        d2, n2, _, _ = _np(rng, number="Sing")
        v1, v2 = rng.sample(INTRANSITIVE, 2)
        return [(*d1, 2, "det"), (*n1, 3, "nsubj"), (*_v(*v1), 0, "root"), ("y", "y", "CCONJ", "_", 7, "cc"),
                (*d2, 6, "det"), (*n2, 7, "nsubj"), (*_v(*v2), 3, "conj"), (*PUNCT, 3, "punct")]

    def t_ccomp():
        d1, n1, _, _ = _np(rng, number="Sing")
        v = rng.choice(INTRANSITIVE)
        adv = rng.choice(ADVERBS)
        return [("Creo", "creer", "VERB", "Mood=Ind|Number=Sing|Person=1|Tense=Pres|VerbForm=Fin", 0, "root"),
                ("que", "que", "SCONJ", "_", 5, "mark"), (*d1, 4, "det"), (*n1, 5, "nsubj"), (*_v(*v), 1, "ccomp"),
                (adv, adv, "ADV", "_", 5, "advmod"), (*PUNCT, 1, "punct")]

    def t_nmod_nummod():
        d1, n1, _, _ = _np(rng, number="Sing")
        d2, n2, _, _ = _np(rng)
        w, num = rng.choice(NUMBERS)
        obj = rng.choice([n for n in NOUNS if n[3] == "Plur"])
        return [(*d1, 2, "det"), (*n1, 6, "nsubj"), ("de", "de", "ADP", "_", 5, "case"), (*d2, 5, "det"),
                (*n2, 2, "nmod"),
                ("tiene", "tener", "VERB", "Mood=Ind|Number=Sing|Person=3|Tense=Pres|VerbForm=Fin", 0, "root"),
                (w, w, "NUM", "NumType=Card", 8, "nummod"), (obj[0], obj[1], "NOUN", _feats(obj[2], obj[3]), 6, "obj"),
                (*PUNCT, 6, "punct")]

    def t_passive():
        d1, n1, g, num = _np(rng, number="Sing")
        agent = rng.choice(NAMES)
        part = {"Masc": "escrito", "Fem": "escrita"}[g]
        return [(*d1, 2, "det"), (*n1, 4, "nsubj:pass"),
                ("fue", "ser", "AUX", "Mood=Ind|Number=Sing|Person=3|Tense=Past|VerbForm=Fin", 4, "aux:pass"),
                (part, "escribir", "VERB", f"Gender={g}|Number=Sing|Tense=Past|VerbForm=Part|Voice=Pass", 0, "root"),
                ("por", "por", "ADP", "_", 6, "case"), (agent, agent, "PROPN", "_", 4, "obl:agent"),
                (*PUNCT, 4, "punct")]

    def t_advcl_expl():
        d, n, _, _ = _np(rng, number="Sing")
        return [("Cuando", "cuando", "SCONJ", "_", 2, "mark"),
                ("llueve", "llover", "VERB", "Mood=Ind|Number=Sing|Person=3|Tense=Pres|VerbForm=Fin", 5, "advcl"),
                (*COMMA, 5, "punct"),
                ("me", "yo", "PRON", "Case=Acc|Number=Sing|Person=1|PrepCase=Npr|PronType=Prs", 5, "expl:pv"),
                ("quedo", "quedar", "VERB", "Mood=Ind|Number=Sing|Person=1|Tense=Pres|VerbForm=Fin", 0, "root"),
                ("en", "en", "ADP", "_", 8, "case"), (*d, 8, "det"), (*n, 5, "obl"), (*PUNCT, 5, "punct")]

    def t_relcl():
        d1, n1, _, _ = _np(rng, number="Sing")
        v = rng.choice(INTRANSITIVE)
        adv1, adv2 = rng.sample(ADVERBS, 2)
        return [(*d1, 2, "det"), (*n1, 6, "nsubj"), ("que", "que", "PRON", "PronType=Rel", 4, "nsubj"),
                ("vive", "vivir", "VERB", "Mood=Ind|Number=Sing|Person=3|Tense=Pres|VerbForm=Fin", 2, "acl:relcl"),
                (adv1, adv1, "ADV", "_", 4, "advmod"), (*_v(*v), 0, "root"), (adv2, adv2, "ADV", "_", 6, "advmod"),
                (*PUNCT, 6, "punct")]

    def t_aux_conj():
        s = rng.choice(NAMES)
        (o1, l1, g1, n1), (o2, l2, g2, n2) = rng.sample(NOUNS, 2)
        return [(s, s, "PROPN", "_", 3, "nsubj"),
                ("ha", "haber", "AUX", "Mood=Ind|Number=Sing|Person=3|Tense=Pres|VerbForm=Fin", 3, "aux"),
                ("comprado", "comprar", "VERB", "Gender=Masc|Number=Sing|Tense=Past|VerbForm=Part", 0, "root"),
                (o1, l1, "NOUN", _feats(g1, n1), 3, "obj"), ("y", "y", "CCONJ", "_", 6, "cc"),
                (o2, l2, "NOUN", _feats(g2, n2), 4, "conj"), (*PUNCT, 3, "punct")]

    def t_flat():
        s, f = rng.choice(NAMES), rng.choice(SURNAMES)
        v = rng.choice(INTRANSITIVE)
        adv = rng.choice(ADVERBS)
        return [(s, s, "PROPN", "_", 3, "nsubj"), (f, f, "PROPN", "_", 1, "flat"), (*_v(*v), 0, "root"),
                (adv, adv, "ADV", "_", 3, "advmod"), (*PUNCT, 3, "punct")]

    def t_appos():
        p = rng.choice(PLACES)
        a = rng.choice(ADJECTIVES)[0]
        return [(p, p, "PROPN", "_", 7, "nsubj"), (*COMMA, 4, "punct"),
                ("una", "uno", "DET", "Definite=Ind|Gender=Fem|Number=Sing|PronType=Art", 4, "det"),
                ("ciudad", "ciudad", "NOUN", "Gender=Fem|Number=Sing", 1, "appos"), (*COMMA, 4, "punct"),
                ("es", "ser", "AUX", "Mood=Ind|Number=Sing|Person=3|Tense=Pres|VerbForm=Fin", 7, "cop"),
                (_adj(a, "Fem", "Sing"), a, "ADJ", "Gender=Fem|Number=Sing", 0, "root"), (*PUNCT, 7, "punct")]

    def t_csubj():
        v = rng.choice(VERBS)
        d, n, _, _ = _np(rng)
        return [("Es", "ser", "AUX", "Mood=Ind|Number=Sing|Person=3|Tense=Pres|VerbForm=Fin", 2, "cop"),
                ("importante", "importante", "ADJ", "Number=Sing", 0, "root"),
                (v[1], v[1], "VERB", "VerbForm=Inf", 2, "csubj"), (*d, 5, "det"), (*n, 3, "obj"),
                (*PUNCT, 2, "punct")]

    def t_hay():
        w, num = rng.choice(NUMBERS)
        obj = rng.choice([n for n in NOUNS if n[3] == "Plur"])
        d, n, _, _ = _np(rng, number="Sing")
        return [("Hay", "haber", "VERB", "Mood=Ind|Number=Sing|Person=3|Tense=Pres|VerbForm=Fin", 0, "root"),
                (w, w, "NUM", "NumType=Card", 3, "nummod"), (obj[0], obj[1], "NOUN", _feats(obj[2], obj[3]), 1, "obj"),
                ("en", "en", "ADP", "_", 6, "case"), (*d, 6, "det"), (*n, 1, "obl"), (*PUNCT, 1, "punct")]

    def t_advcl_cop():
        s = rng.choice(["Ella", "Él"])
        g = "Fem" if s == "Ella" else "Masc"
        adv = rng.choice(ADVERBS)
        return [(s, "él", "PRON", f"Gender={g}|Number=Sing|Person=3|PronType=Prs", 3, "nsubj"),
                ("está", "estar", "AUX", "Mood=Ind|Number=Sing|Person=3|Tense=Pres|VerbForm=Fin", 3, "cop"),
                ("cansada" if g == "Fem" else "cansado", "cansado", "ADJ", f"Gender={g}|Number=Sing", 0, "root"),
                ("porque", "porque", "SCONJ", "_", 5, "mark"),
                ("trabajó", "trabajar", "VERB", "Mood=Ind|Number=Sing|Person=3|Tense=Past|VerbForm=Fin", 3, "advcl"),
                (adv, adv, "ADV", "_", 5, "advmod"), (*PUNCT, 3, "punct")]

    def t_obl_nmod():
        d1, n1, _, _ = _np(rng)
        v = rng.choice(INTRANSITIVE)
        s = rng.choice(NAMES)
        return [(s, s, "PROPN", "_", 2, "nsubj"), (*_v(*v), 0, "root"), ("con", "con", "ADP", "_", 5, "case"),
                (*d1, 5, "det"), (*n1, 2, "obl"), ("de", "de", "ADP", "_", 7, "case"),
                (rng.choice(PLACES), None, "PROPN", "_", 5, "nmod"), (*PUNCT, 2, "punct")]

    templates = [t_transitive, t_obl_amod, t_xcomp, t_iobj, t_cop, t_conj, t_ccomp, t_nmod_nummod, t_passive,
                 t_advcl_expl, t_relcl, t_aux_conj, t_flat, t_appos, t_csubj, t_hay, t_advcl_cop, t_obl_nmod]
    # frequent patterns more often, as in real text
    weights = [6, 4, 2, 2, 4, 3, 2, 2, 1, 1, 2, 2, 2, 1, 1, 2, 1, 2]
    while True:
        yield rng.choices(templates, weights)[0]()


def build(n: int = 120, seed: int = 2026) -> str:
    rng = random.Random(seed)
    out = ["# Spanish fixture treebank written for mc4-sampling's tests (scripts/build_treebank.py); "
           "Universal Dependencies v2 style", ""]
    for i, rows in zip(range(n), _sentences(rng)):
        forms = [r[0] for r in rows]
        forms[0] = forms[0][:1].upper() + forms[0][1:]
        text = " ".join(forms).replace(" .", ".").replace(" ,", ",")
        out.append(f"# sent_id = es-tiny-{i + 1:03d}")
        out.append(f"# text = {text}")
        for k, (form, lemma, upos, feats, head, deprel) in enumerate(rows):
            form = forms[k]
            lemma = lemma if lemma is not None else form
            xpos = "_"
            out.append("\t".join([str(k + 1), form, lemma, upos, xpos, feats or "_", str(head), deprel, "_", "_"]))
        out.append("")
    return "\n".join(out)


def main(argv: list[str]) -> int:
    output = Path(argv[0]) if argv else DEFAULT_OUTPUT
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(build(), encoding="utf-8")
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
