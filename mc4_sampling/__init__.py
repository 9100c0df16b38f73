"""mc4-sampling: stream mC4 (or any ``datasets`` corpus) keeping documents by a quality score (KenLM
perplexity by default; fastText, transformers or a score column), as BERTIN did.

``import mc4_sampling`` registers the ``mc4-sampling`` builder with ``datasets``::

    import mc4_sampling
    from datasets import load_dataset
    ds = load_dataset("mc4-sampling", "es", sampling_method="gaussian", streaming=True,
                      data_dir=mc4_sampling.SAMPLE_DATA_DIR, split="train")
"""

from pathlib import Path

from .common.version import __version__  # noqa: E402,F401

#: Folder of the bundled Spanish sample, laid out like ``allenai/c4``'s ``multilingual/``.
SAMPLE_DATA_DIR = str(Path(__file__).with_name("data") / "sample")
#: A small folder laid out like ``HuggingFaceFW/fineweb-2`` (``data/spa_Latn/{train,test}/*.parquet``, FineWeb-2's
#: columns), 1 800 documents of the bundled sample: ``--source fineweb2 --location <it> --lang spa_Latn``.
SAMPLE_FINEWEB2_DIR = str(Path(__file__).with_name("data") / "fineweb2")

from .builder import Mc4Sampling, Mc4SamplingConfig  # noqa: E402
from .common.errors import OutputError  # noqa: E402
from .corpus import keep_weights, sample_dataset, score_texts  # noqa: E402
from .errors import (  # noqa: E402
    BadRecordError,
    ConfigError,
    DataNotFoundError,
    Mc4SamplingError,
    ModelNotFoundError,
)
from .kenlm_models import DEFAULT_MODEL_DIR, load_perplexity_model  # noqa: E402
from .languages import LANGUAGES  # noqa: E402
from .perplexity import PerplexityModel  # noqa: E402
from .registry import register as _register  # noqa: E402

REGISTERED = _register()

__all__ = [
    "BadRecordError",
    "ConfigError",
    "DEFAULT_MODEL_DIR",
    "DataNotFoundError",
    "LANGUAGES",
    "Mc4Sampling",
    "Mc4SamplingConfig",
    "Mc4SamplingError",
    "ModelNotFoundError",
    "OutputError",
    "PerplexityModel",
    "REGISTERED",
    "SAMPLE_DATA_DIR",
    "SAMPLE_FINEWEB2_DIR",
    "load_perplexity_model",
    "keep_weights",
    "sample_dataset",
    "score_texts",
]
