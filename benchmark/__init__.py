"""unlearnbench: the reference benchmark of machine unlearning in class-conditional diffusion models."""

from __future__ import annotations

__version__ = "0.1.0"


def check_own_datasets_package() -> None:
    """Stop with a clear message if ``import datasets`` resolves to Hugging Face's package instead of ours.

    The suite's data package is the top-level ``datasets`` of this repository (the design card's layout). If
    Hugging Face ``datasets`` is installed and earlier on ``sys.path`` it would be imported instead.
    """
    import datasets

    if not getattr(datasets, "UNLEARNBENCH_DATASETS", False):
        raise ImportError(
            f"'import datasets' found {getattr(datasets, '__file__', '?')}, not unlearnbench's data package. "
            "Hugging Face's 'datasets' is shadowing it: run the suite from its own virtual environment "
            "(`make venv`), or `pip uninstall datasets` there, or install unlearnbench with `pip install -e .` "
            "so that its package comes first."
        )


check_own_datasets_package()
