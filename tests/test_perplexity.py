"""Perplexity in raw and ccnet mode against direct KenLM computations; model resolution."""

import json
import os
import pickle

import kenlm
import numpy as np
import pytest
import sentencepiece as spm
from test_normalization import ccnet_reference

from mc4_sampling import (
    DEFAULT_MODEL_DIR,
    ConfigError,
    Mc4Sampling,
    ModelNotFoundError,
    PerplexityModel,
    load_perplexity_model,
)
from mc4_sampling.kenlm_models import BERTIN_ES_BOUNDARIES
from mc4_sampling.plan import SamplingPlan

DOCS = [
    "el gato come pescado\nel perro come",
    "",
    "\n\n",
    "Una línea con ACENTOS, números 123 y puntuación…\n\nOtra línea",
    "palabras desconocidas xyzzy plugh",
]


@pytest.fixture(scope="session")
def tiny_sp(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("sp")
    corpus = folder / "corpus.txt"
    lines = [ccnet_reference(x) for x in DOCS[0].split("\n") + DOCS[3].split("\n")] * 20
    corpus.write_text("\n".join(x for x in lines if x), encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(folder / "tiny"), vocab_size=40, model_type="unigram",
        hard_vocab_limit=False, minloglevel=2,
    )
    return str(folder / "tiny.model")


def raw_reference(model: kenlm.Model, text: str) -> float:
    """BERTIN's computation, written out again."""
    log_score, length = 0.0, 0
    for line in text.split("\n"):
        log_score += model.score(line, bos=True, eos=True)
        length += len(line.split()) + 1
    return 10.0 ** (-log_score / length)


def ccnet_reference_perplexity(model: kenlm.Model, sp: spm.SentencePieceProcessor, text: str) -> float:
    log_score, length = 0.0, 0
    lines = [ccnet_reference(x) for x in text.split("\n")]
    for line in [x for x in lines if x] or [""]:
        pieces = sp.encode_as_pieces(line)
        log_score += model.score(" ".join(pieces), bos=True, eos=True)
        length += len(pieces) + 1
    return 10.0 ** (-log_score / length)


def test_raw_mode_equals_direct_kenlm(tiny_arpa):
    model = PerplexityModel(tiny_arpa, mode="raw")
    direct = kenlm.Model(tiny_arpa)
    got = model.perplexities(DOCS)
    np.testing.assert_allclose(got, [raw_reference(direct, d) for d in DOCS], rtol=1e-12)
    assert np.isfinite(got).all()
    # a hand check: "el gato come pescado" with the bigrams of the tiny model
    lp = -0.3 + -0.2 + -0.25 + -0.3 + (-0.9 + -0.1)  # <s> el, el gato, gato come, come pescado, backoff(pescado)+</s>
    assert model.perplexity("el gato come pescado") == pytest.approx(10 ** (-lp / 5))


def test_ccnet_mode_equals_reference(tiny_arpa, tiny_sp):
    model = PerplexityModel(tiny_arpa, tiny_sp)
    assert model.mode == "ccnet"
    direct, sp = kenlm.Model(tiny_arpa), spm.SentencePieceProcessor(model_file=tiny_sp)
    np.testing.assert_allclose(
        model.perplexities(DOCS), [ccnet_reference_perplexity(direct, sp, d) for d in DOCS], rtol=1e-12
    )


def test_empty_documents_have_a_defined_perplexity(tiny_arpa, tiny_sp):
    for model in (PerplexityModel(tiny_arpa), PerplexityModel(tiny_arpa, tiny_sp)):
        for text in ("", "\n", "   \n\t"):
            assert np.isfinite(model.perplexity(text)) and model.perplexity(text) > 0


def test_models_pickle_as_paths_and_reload(tiny_arpa, tiny_sp):
    model = PerplexityModel(tiny_arpa, tiny_sp).load()
    clone = pickle.loads(pickle.dumps(model))
    assert "_kenlm" not in clone.__dict__
    assert clone.perplexity(DOCS[0]) == model.perplexity(DOCS[0])
    assert clone.model_id == model.model_id


def test_identity_depends_on_content_not_location(tmp_path, tiny_arpa):
    copy = tmp_path / "tiny.arpa"
    copy.write_bytes(open(tiny_arpa, "rb").read())
    assert PerplexityModel(str(copy)).model_id == PerplexityModel(tiny_arpa).model_id
    other = tmp_path / "other" / "tiny.arpa"
    other.parent.mkdir()
    other.write_text(open(tiny_arpa).read().replace("-0.8\tel", "-0.7\tel"))
    assert PerplexityModel(str(other)).model_id != PerplexityModel(tiny_arpa).model_id


def test_missing_unreadable_and_corrupt_models(tmp_path, tiny_arpa):
    with pytest.raises(ModelNotFoundError, match="nope.arpa.bin"):
        load_perplexity_model(str(tmp_path / "nope.arpa.bin"))
    with pytest.raises(ModelNotFoundError, match="es.arpa.bin"):
        load_perplexity_model(str(tmp_path))  # a folder without <lang>.arpa.bin
    bad = tmp_path / "bad.arpa"
    bad.write_text("this is not an ARPA file\n")
    with pytest.raises(ModelNotFoundError, match="cannot load KenLM model"):
        PerplexityModel(str(bad)).perplexity("hola")
    if os.geteuid() != 0:  # root reads everything
        locked = tmp_path / "locked.arpa"
        locked.write_text("x")
        locked.chmod(0)
        with pytest.raises(ModelNotFoundError, match="not readable"):
            PerplexityModel(str(locked))
    with pytest.raises(ConfigError, match="needs a SentencePiece model"):
        PerplexityModel(tiny_arpa, mode="ccnet")
    with pytest.raises(ConfigError, match="perplexity_mode"):
        load_perplexity_model(tiny_arpa, mode="fancy")


def test_default_boundaries_are_declared_not_read_from_a_file_name(tmp_path, tiny_arpa):
    # a file merely named es.arpa.bin has no defaults
    es = tmp_path / "es.arpa.bin"
    es.write_bytes(open(tiny_arpa, "rb").read())
    assert load_perplexity_model(str(es), mode="raw").default_boundaries is None
    assert PerplexityModel(tiny_arpa).default_boundaries is None
    # the embedded model (the same content, wherever it lies) has none in raw mode: its model.json
    # declares its ccnet quartiles only
    embedded = load_perplexity_model()
    copy = tmp_path / "copy" / "es.arpa.bin"
    copy.parent.mkdir()
    copy.write_bytes(open(embedded.kenlm_path, "rb").read())
    for raw in (load_perplexity_model(str(copy), mode="raw"), load_perplexity_model(DEFAULT_MODEL_DIR, "es", "raw")):
        assert raw.model_id == embedded.model_id.split("+")[0]
        assert raw.default_boundaries is None and raw.default_factors is None
    assert load_perplexity_model(DEFAULT_MODEL_DIR, "es").default_boundaries == embedded.default_boundaries
    # so stepwise and gaussian with it ask for boundaries or a calibration file
    for method in ("stepwise", "gaussian"):
        config = Mc4Sampling(config_name="es", sampling_method=method, perplexity_model=DEFAULT_MODEL_DIR,
                             perplexity_mode="raw").config
        with pytest.raises(ConfigError, match=r"needs boundaries .* 'raw' mode, which has no default ones.*calibrate"):
            SamplingPlan.resolve(config, "es")


def test_a_folder_declares_its_defaults_per_mode(tmp_path, tiny_arpa, tiny_sp):
    (tmp_path / "ca.arpa.bin").write_bytes(open(tiny_arpa, "rb").read())
    (tmp_path / "ca.sp.model").write_bytes(open(tiny_sp, "rb").read())
    declaration = {"language": "ca", "modes": {"raw": {"boundaries": [10, 20, 30], "factors": {"stepwise": 2.5}},
                                               "ccnet": {"boundaries": [1, 2, 3], "width": 3.0}}}
    (tmp_path / "model.json").write_text(json.dumps(declaration))
    raw = load_perplexity_model(str(tmp_path), "ca", "raw")
    assert raw.default_boundaries == (10, 20, 30) and raw.default_factors == {"stepwise": 2.5}
    ccnet = load_perplexity_model(str(tmp_path), "ca", "ccnet")
    assert ccnet.default_boundaries == (1, 2, 3) and ccnet.default_width == 3.0
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "ca.arpa.bin").write_bytes(open(tiny_arpa, "rb").read())
    (bad / "model.json").write_text(json.dumps({"language": "ca", "mode": "raw", "boundaries": [3, 2, 1]}))
    with pytest.raises(ModelNotFoundError, match="model.json: boundaries for mode 'raw'"):
        load_perplexity_model(str(bad), "ca", "raw")


def test_folder_and_pair_specs(tmp_path, tiny_arpa, tiny_sp):
    (tmp_path / "ca.arpa.bin").write_bytes(open(tiny_arpa, "rb").read())
    (tmp_path / "ca.sp.model").write_bytes(open(tiny_sp, "rb").read())
    folder_model = load_perplexity_model(str(tmp_path), "ca")
    pair_model = load_perplexity_model((tiny_arpa, tiny_sp))
    assert folder_model.mode == pair_model.mode == "ccnet"
    assert folder_model.perplexity(DOCS[3]) == pair_model.perplexity(DOCS[3])


def test_hub_location_is_fetched_cached_and_loaded(loopback_hub, tiny_arpa, tiny_sp):
    hub = loopback_hub({"edugp/kenlm/wikipedia/es.arpa.bin": tiny_arpa,
                        "edugp/kenlm/wikipedia/es.sp.model": tiny_sp})
    model = load_perplexity_model("edugp/kenlm/wikipedia", "es")
    assert model.mode == "ccnet"
    assert model.perplexity(DOCS[0]) == PerplexityModel(tiny_arpa, tiny_sp).perplexity(DOCS[0])
    assert any("/edugp/kenlm/resolve/main/wikipedia/es.sp.model" in r for r in hub.requests)
    # raw mode fetches the KenLM file alone, and BERTIN's defaults are declared for this source
    raw = load_perplexity_model("hf://edugp/kenlm/wikipedia@main", "es", "raw")
    assert raw.sp_path is None and raw.default_boundaries == BERTIN_ES_BOUNDARIES
    with pytest.raises(ModelNotFoundError, match="ca.arpa.bin"):
        load_perplexity_model("edugp/kenlm/wikipedia", "ca")
    with pytest.raises(ModelNotFoundError, match="not found on the Hub"):
        load_perplexity_model("nobody/nothing", "es")


def test_vectorised_word_counts_equal_str_split():
    from mc4_sampling.perplexity import word_counts

    texts = ["", "uno", "  dos  tres ", "a\u00a0b\u2003c\x1cd", "\n\n", "fin", "x\ud800y z", ""]
    assert word_counts(texts).tolist() == [len(t.split()) for t in texts]
    assert word_counts([]).tolist() == []


PROSE = [
    "El pueblo se despertó temprano aquel domingo. Las campanas de la iglesia sonaban mientras los vecinos "
    "caminaban hacia la plaza, donde el mercado ya había abierto sus puestos de fruta y verdura.",
    "La biblioteca municipal amplía su horario durante el verano para que los estudiantes puedan preparar "
    "los exámenes. Además, ofrece talleres gratuitos de lectura para niños y adultos.",
    "Mi abuela siempre decía que el secreto de una buena sopa está en la paciencia: hay que dejar que las "
    "verduras se cocinen a fuego lento y no tener prisa por servirla.",
]
JUNK = {
    "English": "The quick brown fox jumps over the lazy dog. Click here to subscribe to our newsletter and "
    "get the latest news delivered straight to your inbox every morning.",
    "word salad": "ventana azul correr mesa lluvia después ordenador cebolla montaña rápido silla "
    "escalera trompeta nube cuchara ayer bosque",
    "boilerplate": "Inicio | Quiénes somos | Servicios | Contacto\nAviso legal | Política de cookies | "
    "Mapa del sitio\n© 2020 Todos los derechos reservados\nInicio | Quiénes somos | Servicios | Contacto",
    "spam": "COMPRAR BARATO viagra casino GRATIS $$$ ganar dinero rápido click aquí oferta oferta oferta "
    "préstamos sin aval bitcoin x100 GRATIS GRATIS",
}


def test_embedded_model_ranks_prose_below_low_quality_text():
    model = load_perplexity_model()
    worst_prose = max(model.perplexities(PROSE))
    for kind, text in JUNK.items():
        assert model.perplexity(text) > 2 * worst_prose, kind
    q1, q2, q3 = model.default_boundaries
    assert worst_prose < q2 < min(model.perplexities(list(JUNK.values())))
