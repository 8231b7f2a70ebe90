"""Process machinery: starting, supervising and reusing worker processes; no training here.

* ``procs``: spawn workers, supervise them (deadlines, stalls, signals), turn a failure into
  an exception naming the worker;
* ``pool``: warm workers kept across runs in one Python process or notebook kernel;
* ``shared``: read-only tensors shared with workers outside ``/dev/shm``;
* ``guards``: what must hold before any process starts (cores, threads, memory, cgroup
  limits, a model spawn can pickle) and the divergence rule every method applies;
* ``group``: joining a ``torch.distributed`` (gloo) group and talking over it;
* ``_testing``: worker functions for the tests.

May import: the records at the package's top (``errors``, ``utils``, ``methods``, ``result``,
``measure``). Nothing here knows a dataset, a net or a trainer.
"""
