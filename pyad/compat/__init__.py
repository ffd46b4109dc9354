"""Compatibility layers: the APIs of two well-known pure-Python engines, recorded on pyad's tape.

Code written for one of them runs with only its imports changed:

* Eli Bendersky's ``rad.py`` ("Reverse-mode automatic differentiation: a tutorial")::

      from rad import Var, exp, log, sin            # before
      from pyad.compat.rad import Var, exp, log, sin  # after

  ``Var(v)``, ``.v``, ``.gv``, ``.grad(gv)``, ``.predecessors``, and the module functions
  ``exp``, ``log``, ``sin``, ``div`` and ``ensure_var``.

* Andrej Karpathy's micrograd::

      from micrograd.engine import Value                  # before
      from micrograd.nn import Neuron, Layer, MLP
      from pyad.compat.micrograd.engine import Value      # after
      from pyad.compat.micrograd.nn import Neuron, Layer, MLP

  ``Value`` with ``.data``, ``.grad``, ``.backward()``, ``+ - * / **``, ``relu()``, ``tanh()``,
  ``exp()`` and ``log()``; ``Module``, ``Neuron``, ``Layer`` and ``MLP`` with micrograd's
  constructors, initialisation and results.

Both classes are subclasses of :class:`pyad.Var`, so their objects also work with every pyad
function (``pyad.exp``, ``pyad.dot``, ...), whose results keep the class of the first Var
argument, and on explicit tapes (``with pyad.Tape():``). What cannot carry over is listed in
each module's docstring.
"""
