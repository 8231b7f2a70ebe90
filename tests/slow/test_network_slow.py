"""A prediction built from a measured loopback run's own figures (the slow half of
test_network.py)."""
import pytest

from costtrain.advice.network import (measure_loopback, measured_seconds_per_step, predict,
                                      step_costs)


def test_prediction_of_a_loopback_run_is_built_from_its_own_measurements(fmnist):
    """A measured local SGD run predicted on the measured loopback: the compute part is the run's
    own per-step compute, the bytes are its averaging payload spread over H steps, and the parts
    add up. (How close the prediction lands to the measured step is a timing claim; it is
    printed by benchmarks/local_sgd.py, not asserted here.)"""
    from costtrain.train.local_sgd import train_local_sgd
    r = train_local_sgd("simple", fmnist, workers=2, average_every=2, epochs=1, seed=3)
    lo = measure_loopback()
    p = predict(r, lo)
    costs = step_costs(r)
    assert p.machines == 2 and measured_seconds_per_step(r) > 0
    assert p.compute_seconds == pytest.approx(costs.compute) and costs.compute > 0
    assert p.bytes_per_step == pytest.approx(2 * (2 - 1) / 2 * costs.payload_bytes / 2)
    assert p.seconds_per_step == pytest.approx(
        p.compute_seconds + p.transfer_seconds + p.latency_seconds)
    assert predict(r, "wan").seconds_per_step > p.seconds_per_step
    t = predict(r, "wan", machines=8, target_accuracy=0.3)
    assert t.seconds_to_target is not None and t.samples_to_target <= r.samples
