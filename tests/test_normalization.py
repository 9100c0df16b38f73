"""CCNet normalisation, applied line by line."""

import re
import unicodedata

from mc4_sampling.normalization import UNICODE_PUNCT, normalize_document, normalize_line


def ccnet_reference(line: str) -> str:
    """An independent, regex-based rendering of CCNet's text_normalizer.normalize()."""
    line = line.strip()
    if not line:
        return line
    line = line.lower()
    line = "".join(c for c in unicodedata.normalize("NFD", line) if unicodedata.category(c) != "Mn")
    line = re.sub(r"\d", "0", line)
    line = "".join(UNICODE_PUNCT.get(c, c) for c in line)
    return re.sub("[" + "".join(map(chr, list(range(0, 32)) + list(range(127, 160)))) + "]", "", line)


def test_examples():
    assert normalize_line("  Él   dijo: «¡Hola!» — 1984…  ") == 'el   dijo: "¡hola!"  -  0000...'
    assert normalize_line("Año ２０２１，ñandú") == "ano 0000,nandu"
    assert normalize_line("tab\there\x07") == "tabhere"
    assert normalize_line("   ") == ""


def test_matches_reference_on_varied_text():
    texts = ["Canción Nº 5 — «Verano» (1999)…", "ÀÉÎÕÜ çñ ß Ωμέγα", "fin：¿qué？ ５％【x】", "\x00\x1fa\x7fb\x9fc"]
    for t in texts:
        assert normalize_line(t) == ccnet_reference(t)


def test_document_keeps_lines_apart_and_drops_empty_ones():
    doc = "Primera línea.\n\n  \nSegunda\tlínea 2\n"
    assert normalize_document(doc) == ["primera linea.", "segundalinea 0"]


def test_switches():
    assert normalize_line("Árbol", lower_case=False, strip_accents=False) == "Árbol"
    assert normalize_line("Árbol", lower_case=True, strip_accents=False) == "árbol"


def test_whole_document_path_equals_the_line_by_line_definition():
    import mc4_sampling
    from mc4_sampling.reader import iter_records
    from mc4_sampling.shards import shard_refs

    tricky = [
        "\x07  borde  \x07\n — guion — \n\x85\x9f\n٣٤ árabe\n\t\r\nÀ\u0301\u0303 ñ\nfin\r",
        "  \x07 \x07  \nlinea\n\n",
        "５％ “comillas” 【x】 … ¿qué? ¡sí!",
    ]
    shards = shard_refs(["es"], "validation", data_dir=mc4_sampling.SAMPLE_DATA_DIR)
    texts = tricky + [r["text"] for s in shards for _, r in iter_records(s.path)]
    for lower in (True, False):
        for accents in (True, False):
            for text in texts:
                by_line = [normalize_line(x, lower, accents) for x in text.split("\n")]
                assert normalize_document(text, lower, accents) == [x for x in by_line if x]


def test_whole_document_path_on_text_beyond_latin1():
    texts = ["precio 5€ → oferta “ya” ▸ más\nΑθήνα ２０ → \x00 nul", "€€ x → y\n\n→", "日本語 テキスト ١٢٣",
             "ΟΔΥΣΣΕΥΣ aΣ Σa İstanbul ÀÉÎ Straße", "ÉCOLE Ñandú ÆØÅ İ"]
    for text in texts:
        by_line = [normalize_line(x) for x in text.split("\n")]
        assert normalize_document(text) == [x for x in by_line if x]
