"""The trainers: one training loop per method, and what the loops share.

Reading order: ``baseline`` (one process: the loop every method must beat), ``hogwild``
(lock-free shared memory: its ``worker`` is the loop each process runs), ``ps_ranks`` (the
parameter server's ``serve`` and ``work``) driven by ``parameter_server``, ``local_sgd``
(workers average their models every H steps). Beside them: ``engine`` (batches, evaluation,
loss logs), ``levers`` (compile, mixed precision, channels_last), ``launch`` (starting the
ranks of a distributed run), ``comm`` (communication counters), ``legacy`` (the original
project's ``train_model`` API on top of Hogwild!).

May import: the records at the package's top, :mod:`costtrain.run` and :mod:`costtrain.data`.
"""
