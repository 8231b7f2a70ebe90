"""Many runs measured, predicted and advised: what a reader decides with.

* ``noise`` (repeats, medians, ranges, verdicts) and ``prose`` (sentences from runs);
* ``energy``, ``cost`` (price, energy, cost to a target), ``report`` (tables), ``plots``;
* ``compare`` (the main job: every method side by side), ``network`` (predicted time on N
  machines), ``predict`` (probes to predictions), ``payoff`` (does a lever pay),
  ``advise`` (probe, predict, recommend) and ``decision`` (the decision card).

May import: the records at the package's top, :mod:`costtrain.run`, :mod:`costtrain.data`
and :mod:`costtrain.train` (a trainer only through the method registry's rows).
"""
