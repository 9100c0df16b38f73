"""Make ``load_dataset("mc4-sampling", ...)`` find this package's builder.

``datasets`` resolves a dataset name first among its packaged builders, a private mapping
``datasets.packaged_modules._PACKAGED_DATASETS_MODULES`` (name -> (module path, hash)). Adding
our builder there lets ``load_dataset`` use it without a loading script. The packaged-module
factory then looks for data files in ``data_dir`` (or the working directory), which our builder
does not use, so for our name alone it returns the module without that search.
"""

from __future__ import annotations

import hashlib
import warnings

from .common.version import __version__

NAME = "mc4-sampling"
MODULE = "mc4_sampling.builder"


def register() -> bool:
    """Register the builder under ``mc4-sampling``; warn and return False when impossible."""
    try:
        from datasets import load as datasets_load, packaged_modules
        from datasets.data_files import DataFilesDict, DataFilesList, sanitize_patterns  # noqa: F401 (_patterns)

        registry = packaged_modules._PACKAGED_DATASETS_MODULES
        if not isinstance(registry, dict):
            raise TypeError(f"_PACKAGED_DATASETS_MODULES is a {type(registry).__name__}, not a dict")
        module_hash = hashlib.sha256(f"{MODULE}-{__version__}".encode()).hexdigest()
        registry[NAME] = (MODULE, module_hash)
        factory = datasets_load.PackagedDatasetModuleFactory
        if not getattr(factory.get_module, "_mc4_sampling", False):
            original = factory.get_module

            def get_module(self):
                if self.name == NAME:  # data_files (source="files") go to the builder as written
                    return datasets_load.DatasetModule(
                        MODULE, module_hash, {"dataset_name": NAME, "data_files": _patterns(self.data_files)}
                    )
                return original(self)

            get_module._mc4_sampling = True
            factory.get_module = get_module
        return True
    except (ImportError, AttributeError, TypeError) as e:
        import datasets

        warnings.warn(
            f"mc4_sampling could not register the '{NAME}' builder with datasets {datasets.__version__} "
            f"({e}); load_dataset('{NAME}', ...) will not work. Use the builder directly: "
            "mc4_sampling.Mc4Sampling(config_name='es', ...).as_streaming_dataset(split='train')",
            RuntimeWarning,
            stacklevel=3,
        )
        return False


def _patterns(data_files):
    """``load_dataset``'s ``data_files`` as a ``DataFilesDict`` of the patterns as written (not resolved by
    ``datasets``: the corpus source lists them, locally, over HTTP(S) or on the Hub)."""
    from datasets.data_files import DataFilesDict, DataFilesList, sanitize_patterns

    if data_files is None:
        return DataFilesDict()
    return DataFilesDict({split: DataFilesList(list(patterns), [None] * len(patterns))
                          for split, patterns in sanitize_patterns(data_files).items()})
