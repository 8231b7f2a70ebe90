"""Shared fixtures: small real data (the Fashion-MNIST files, subsampled; WordNet's nouns)
and writers of small files in the same formats (IDX, WordNet's data.noun)."""
from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from costtrain.data.datasets import DataNotFoundError, load_dataset

# Whole files that need a notebook, a browser, torchrun or multi-second fault injection: every
# test in them is `slow` (left out of `make check`; `make test` runs everything). Single slow
# tests elsewhere are listed in SLOW_TESTS or carry @pytest.mark.slow themselves.
SLOW_FILES = {
    "test_browser.py": "drives Chromium through the notebooks",
    "test_hogwild_notebook.py": "executes a notebook",
    "test_failure_matrix.py": "injects every fault into real runs",
    "test_hogwild_faults.py": "injects faults into Hogwild! runs",
    "test_ps_faults.py": "kills parameter-server ranks",
    "test_local_sgd_faults.py": "kills local-SGD ranks, starts torchrun",
    "test_ps_torchrun.py": "starts torchrun",
}

# Single tests that took about 5 s or more each on 2 busy cores (pytest --durations), by file.
SLOW_TESTS = {  # file -> tests that train, spawn or inject faults for many seconds each
    "test_network.py": {
        "test_prediction_of_a_loopback_run_is_built_from_its_own_measurements",
    },
    "test_api_refusals.py": {
        "test_a_second_threads_job_on_the_warm_pool_is_refused_and_the_first_finishes",
    },
    "test_advise.py": {
        "test_cli_advise",
        "test_cli_advise_for_several_machines",
        "test_recommend_end_to_end_respects_budget_and_measurements",
    },
    "test_class_collect.py": {
        "test_collect_merges_real_runs_refuses_bad_files_and_keeps_the_valid",
    },
    "test_cli.py": {
        "test_compare_prints_tables_costs_and_figures",
        "test_compare_repeats_alternate_and_report_medians_ranges_and_noise",
        "test_run_baseline_prints_summary_and_writes_json",
        "test_run_ps_sync_with_scaling_and_momentum_from_the_shell",
    },
    "test_data.py": {
        "test_share_memory_maps_the_data_in_workers_outside_dev_shm",
    },
    "test_decision.py": {
        "test_the_card_names_the_machine_the_choice_and_its_command",
    },
    "test_levers.py": {
        "test_advise_tunes_the_levers_of_its_pick_and_says_which_it_keeps",
        "test_compile_reports_its_seconds_apart_and_trains",
        "test_compile_warm_up_leaves_batchnorm_statistics_alone",
    },
    "test_local_sgd.py": {
        "test_average_every_step_equals_large_batch_sgd",
        "test_local_sgd_trains_and_counts_its_communication",
        "test_cli_failed_run_is_a_clear_error_and_keeps_the_partial_result",
        "test_cli_runs_local_sgd_and_its_json_holds_the_communication",
        "test_parameter_server_counts_its_messages",
    },
    "test_parameter_server.py": {
        "test_accuracy_by_seed_rows_add_up",
        "test_async_trains_and_records_staleness",
        "test_bounded_staleness_drops_old_gradients",
        "test_cli_failed_run_is_a_clear_error_and_keeps_the_partial_result",
        "test_cli_runs_the_parameter_server",
        "test_model_class_spawn_cannot_import_is_refused_before_any_process",
        "test_sync_equals_large_batch_sgd",
        "test_two_concurrent_runs_do_not_collide",
    },
    "test_pool.py": {
        "test_a_failure_closes_the_pool_and_the_next_run_gets_a_fresh_one",
        "test_a_stopped_worker_is_named_within_the_timeout",
        "test_interpreter_exit_closes_the_pool_and_a_killed_parent_leaves_none",
        "test_warm_up_starts_the_workers_once_so_no_run_pays_for_them",
    },
    "test_procs.py": {
        "test_a_stopped_worker_is_a_failure_within_the_stall_timeout",
        "test_keyboard_interrupt_terminates_every_child",
        "test_worker_exception_names_worker_and_stops_others",
        "test_worker_killed_by_signal_does_not_hang",
    },
    "test_widgets.py": {
        "test_a_live_plot_is_redrawn_during_training_from_progress_messages",
    },
}
# Module fixtures that train real runs first: every test using one is slow.
SLOW_FIXTURES = {"test_class_collect.py": "real_runs", "test_decision.py": "advice"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        name = item.path.name
        if (name in SLOW_FILES or item.originalname in SLOW_TESTS.get(name, ())
                or SLOW_FIXTURES.get(name) in item.fixturenames):
            item.add_marker(pytest.mark.slow)

# The licence header of WordNet's data files: lines indented by two spaces (abridged here).
WORDNET_HEADER = ("  1 This software and database is being provided to you, the LICENSEE, by  \n"
                  "  2 Princeton University under the following license.  \n"
                  "  3   \n")


def write_idx(path: Path, array: np.ndarray, gz: bool = True) -> Path:
    """Write `array` (uint8) as an IDX file, gzipped when `gz`."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def make_idx_dataset(folder: Path, n_train: int = 60, n_test: int = 20, gz: bool = True,
                     seed: int = 0) -> Path:
    """A tiny but well-formed MNIST-style IDX dataset; class k images are brighter with k."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("t10k", n_test)):
        y = np.arange(n) % 10
        x = (rng.integers(0, 40, (n, 28, 28)) + y[:, None, None] * 20).astype(np.uint8)
        sfx = ".gz" if gz else ""
        write_idx(folder / f"{split}-images-idx3-ubyte{sfx}", x, gz)
        write_idx(folder / f"{split}-labels-idx1-ubyte{sfx}", y.astype(np.uint8), gz)
    return folder


@pytest.fixture(scope="session")
def fmnist():
    """Fashion-MNIST, 3,000 training and 1,000 test images (stratified, fixed seed)."""
    return load_dataset("fashion-mnist", subset=3000, test_subset=1000, seed=0)


@pytest.fixture
def idx_dir(tmp_path) -> Path:
    return make_idx_dataset(tmp_path / "mini")


def data_noun_line(offset: int, lex: int, lemmas: list[str], gloss: str,
                   pointers: int = 1) -> str:
    """One line of WordNet's data.noun (wndb(5)): hex word count, pointers, ``| gloss``."""
    words = " ".join(f"{w} 0" for w in lemmas)
    ptrs = "".join(f" @ {offset + 1 + i:08d} n 0000" for i in range(pointers))
    return f"{offset:08d} {lex:02d} n {len(lemmas):02x} {words} {pointers:03d}{ptrs} | {gloss}  \n"


def write_data_noun(folder: Path, lines: list[str], header: bool = True) -> Path:
    """A data.noun in `folder` from `lines` (see :func:`data_noun_line`), licence first."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "data.noun"
    path.write_text((WORDNET_HEADER if header else "") + "".join(lines), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def wordnet():
    """WordNet 3.0's nouns (wordnet-supersense) from the installed package; skipped only where
    it is not installed outside CI (CI installs it: .ci/run, make data)."""
    try:
        return load_dataset("wordnet-supersense")
    except DataNotFoundError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI must provide WordNet (.ci/run installs wordnet-base): {exc}")
        pytest.skip("WordNet 3.0 is not installed here (sudo apt-get install wordnet-base, or "
                    "COSTTRAIN_DATA / WNSEARCHDIR naming a folder with its data.noun)")
