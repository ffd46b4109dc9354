"""micrograd's API on pyad's tape: ``engine.Value`` and the ``nn`` module.

Change only the imports::

    from micrograd.engine import Value     # becomes
    from pyad.compat.micrograd.engine import Value

    from micrograd.nn import MLP           # becomes
    from pyad.compat.micrograd.nn import MLP
"""

from pyad.compat.micrograd import engine, nn
from pyad.compat.micrograd.engine import Value

__all__ = ["Value", "engine", "nn"]
