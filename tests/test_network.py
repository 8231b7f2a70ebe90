"""The what-if for a network: link presets, the step model on known numbers, and a prediction
built from a measured loopback run's own figures (its accuracy is printed by benchmarks/local_sgd.py)."""
import pytest

from costtrain.advice.network import (LINKS, Link, StepCosts, get_link, measure_loopback,
                                      predict_step, step_costs)
from costtrain.utils import CosttrainError


def test_link_presets_and_explicit_links():
    assert get_link("wifi") == LINKS["wifi"] == Link("wifi", 12.5e6, 3e-3)
    assert get_link("LAN").bandwidth == 125e6 and get_link("wan").latency == 0.04
    custom = get_link("300mbit,5ms")
    assert custom.bandwidth == pytest.approx(37.5e6) and custom.latency == pytest.approx(5e-3)
    assert get_link("1gbit/200us").latency == pytest.approx(2e-4)
    assert "100 Mbit/s, 3 ms" in LINKS["wifi"].describe()
    for bad in ("fast", "100,3", "0mbit,1ms"):
        with pytest.raises(CosttrainError, match="link"):
            get_link(bad)


def _costs(method, workers=2, H=1, compute=0.01, update=0.0, payload=1_000_000):
    return StepCosts(method=method, workers=workers, batch_size=64, compute=compute,
                     server_update=update, payload_bytes=payload, average_every=H,
                     worker_steps=100)


def test_local_sgd_step_is_compute_plus_ring_traffic_over_h():
    wifi = LINKS["wifi"]  # 12.5 MB/s, 3 ms
    p = predict_step(_costs("local-sgd", H=8), wifi, machines=4)
    ring = 2 * 3 / 4 * 1e6  # bytes in and out of each machine per average
    assert p.transfer_seconds == pytest.approx(ring / 12.5e6 / 8)
    assert p.latency_seconds == pytest.approx(3 * 3e-3 / 8)  # N-1 round trips per average
    assert p.seconds_per_step == pytest.approx(0.01 + ring / 12.5e6 / 8 + 9e-3 / 8)
    assert p.samples_per_second == pytest.approx(4 * 64 / p.seconds_per_step)
    assert "predicted" in p.label and p.kind == "predicted"
    one = predict_step(_costs("local-sgd", H=8), wifi, machines=1)  # nothing to send
    assert one.seconds_per_step == pytest.approx(0.01) and one.transfer_seconds == 0


def test_parameter_server_step_goes_through_the_servers_link():
    lan = LINKS["lan"]
    p = predict_step(_costs("ps-sync", update=0.002), lan, machines=4)
    assert p.seconds_per_step == pytest.approx(0.012 + 2 * 3 * 1e6 / 125e6 + 2e-4)
    measured_setup = predict_step(_costs("ps-sync", workers=3, update=0.002), lan)
    assert measured_setup.machines == 3  # every worker remote: 3 payloads each way
    assert measured_setup.transfer_seconds == pytest.approx(2 * 3 * 1e6 / 125e6)
    # async on a slow link: the server's link caps the steps of everyone
    a = predict_step(_costs("ps-async"), LINKS["wan"], machines=8)
    assert a.samples_per_second == pytest.approx(64 * 6.25e6 / 1e6)
    # sync local SGD (H = 1) moves less than the parameter server for 8 machines
    s = predict_step(_costs("local-sgd"), LINKS["wan"], machines=8)
    q = predict_step(_costs("ps-sync"), LINKS["wan"], machines=8)
    assert s.bytes_per_step < q.bytes_per_step and s.seconds_per_step < q.seconds_per_step
    with pytest.raises(CosttrainError, match="machines"):
        predict_step(_costs("ps-sync"), lan, machines=0)


def test_a_run_without_communication_cannot_be_predicted():
    from costtrain.result import RunResult
    with pytest.raises(CosttrainError, match="no communication figures"):
        step_costs(RunResult(method="baseline", config={}))


def test_loopback_is_measured():
    lo = measure_loopback(nbytes=4 << 20, pings=50)
    assert lo.bandwidth > 10e6 and 0 < lo.latency < 0.05
