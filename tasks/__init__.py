"""Built-in task plugins (installed as ``harness_tasks``). Importing this package registers them."""

from . import dart  # noqa: F401
from . import wmt16_en_ro  # noqa: F401
from . import xsum  # noqa: F401
from . import commonsense_dialogue  # noqa: F401
