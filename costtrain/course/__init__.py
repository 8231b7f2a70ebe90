"""Notebook support, and the one place the notebooks import from (the course's façade).

``from costtrain.course import run_panel, train_hogwild, md, ...``: every name a lesson uses is
listed in :data:`EXPORTS` and imported on first use, so moving a module inside the package
never rewrites a lesson. The modules here:

* ``arc`` (the notebooks in order, objectives, reference times, takeaways, links),
  ``widgets`` (controls that set values, a Run button, a live plot), ``exercises`` (checking
  a guess, worked answers), ``claims`` (sentences checked on the reader's run),
  ``scoreboard`` (the course's runs in one table);
* ``notebooks`` (the papermill runner), ``handout`` (the teacher's kit as HTML),
  ``classroom`` (``costtrain class collect``), ``diagrams`` (the SVG diagrams), ``student``
  (the students' copies without outputs: ``costtrain student``).

May import: everything below it (the records, :mod:`costtrain.run`, :mod:`costtrain.data`,
:mod:`costtrain.train`, :mod:`costtrain.advice`); a trainer through the registry or the
public names of the package's top level.
"""
from __future__ import annotations

import importlib
from typing import Any

_FROM = {
    "costtrain": ("train_baseline train_hogwild train_parameter_server train_local_sgd "
                  "load_dataset build_model"),  # the trainers: the method registry's rows
    "costtrain.utils": "CosttrainError hardware_info num_cores threads_per_process",
    "costtrain.methods": "split_work",
    "costtrain.measure": "busy_note steady_rate time_to_accuracy",
    "costtrain.run.procs": "WorkerError",
    "costtrain.run.pool": "close_all ready_server warm_up",
    "costtrain.data.datasets": "tensor_dataset",
    "costtrain.data.sparse": ("Collisions SLOT_NS SparseLinear batch_row_probability "
                              "expected_row_overlap make_sparse_synthetic step_footprint"),
    # the loops a lesson shows (inspect.getsource) and the original project's API
    "costtrain.train.hogwild": "worker",
    "costtrain.train.ps_ranks": "serve work",
    "costtrain.train.local_sgd": "train_rank",
    "costtrain.train.legacy": "chart_losses log_elapsed_time train_model",
    "costtrain.train.levers": "Fast cxx_compiler has_conv make_levers native_bf16 reset_compiled",
    "costtrain.advice.prose": ("listing machine_note md noise_sentence one_run_sentence pct "
                               "ranking_sentence rate ratio_sentence secs span target_sentence "
                               "values"),
    "costtrain.advice.report": "format_table repeats_table results_table run_header summary",
    "costtrain.advice.plots": ("plot_accuracy_vs_time plot_cost_to_target plot_losses "
                               "plot_worker_losses"),
    "costtrain.advice.noise": "alternate first_verdict median_index speedup_verdict spread",
    "costtrain.advice.payoff": "Trial break_even_samples conclusion judge pick",
    "costtrain.advice.compare": ("comparison_plan counterpart not_compared oversubscribed "
                                 "longer_job run_comparison takeovers"),
    "costtrain.advice.cost": "attach_cost money price_basis",
    "costtrain.advice.network": ("LINKS get_link measure_loopback measured_seconds_per_step "
                                 "predict step_costs"),
    "costtrain.advice.advise": "recommend",
    "costtrain.course.arc": "TYPICAL_ACCURACY closing opening",
    "costtrain.course.exercises": "check_prediction worked_answer",
    "costtrain.course.claims": "CANNOT_TELL claim",
    "costtrain.advice.decision": ("check_landed decision_card fastest_once_started job_line "
                                  "verdict what_would_change"),
    "costtrain.advice.takeover": "samples_text",
    "costtrain.data.models": "multiply_adds",
    "costtrain.course.widgets": "NoWrap epoch_splits ready_workers run_panel",
    "costtrain.course.notebooks": "check_parameters",
}
EXPORTS: dict[str, str] = {name: module for module, names in _FROM.items()
                           for name in names.split()}  # public name -> its module
__all__ = sorted(EXPORTS)


def __getattr__(name: str) -> Any:
    if name in EXPORTS:
        return getattr(importlib.import_module(EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *EXPORTS])
