"""uniremoval: one model that removes haze, rain and blur from real-world photos.

Public API (imported lazily, so ``import uniremoval`` is cheap)::

    from uniremoval import Restorer, load_model
    restorer = Restorer.from_pretrained("default")   # or a path to a model .json
    clean = restorer(photo)                          # numpy array, PIL image or tensor
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Restorer", "load_model", "save_model", "__version__"]

if TYPE_CHECKING:
    from .modelfile import load_model, save_model
    from .restorer import Restorer


def __getattr__(name: str) -> Any:
    if name == "Restorer":
        from .restorer import Restorer

        return Restorer
    if name in ("load_model", "save_model"):
        from . import modelfile

        return getattr(modelfile, name)
    raise AttributeError(f"module 'uniremoval' has no attribute {name!r}")
