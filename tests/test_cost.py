import json
import os

import pytest

from costtrain.advice.compare import run_comparison
from costtrain.advice.cost import (INSTANCES, PRICE_PER_KWH, PRICES_ENV, as_fraction, attach_cost,
                                   cost_table, price_basis, time_to_target)
from costtrain.advice.energy import (LAPTOP_WATTS, EnergyMeter, EnergyReading, estimate,
                                     rapl_joules, rapl_zones, read_rapl)
from costtrain.advice.plots import plot_accuracy_vs_time, plot_cost_to_target
from costtrain.advice.report import summary
from costtrain.result import RunResult, load_results, save_results
from costtrain.train.baseline import train_baseline
from costtrain.utils import CosttrainError


def zone(root, name, label, energy, wrap=1_000_000):
    z = root / name
    z.mkdir(parents=True)
    (z / "name").write_text(label + "\n")
    (z / "energy_uj").write_text(f"{energy}\n")
    (z / "max_energy_range_uj").write_text(f"{wrap}\n")
    return z


def known_run(**kw) -> RunResult:
    """A result with round numbers: 2 s set-up, 10 s training, 1 s evaluation."""
    r = RunResult(method="baseline", config={"epochs": 1}, setup_seconds=2.0, train_seconds=10.0,
                  eval_seconds=1.0, samples=3000,
                  eval_curve={"samples": [1000, 2000, 3000], "seconds": [3.0, 6.0, 9.0],
                              "accuracy": [0.5, 0.7, 0.8], "loss": [1.0, 0.8, 0.6]})
    for k, v in kw.items():
        setattr(r, k, v)
    return r


# ---------------------------------------------------------------- RAPL on a fake powercap folder
def test_rapl_reads_top_level_packages_only(tmp_path):
    zone(tmp_path, "intel-rapl:0", "package-0", 5_000)
    zone(tmp_path, "intel-rapl:0:0", "core", 4_000)  # part of package 0: must not double count
    zone(tmp_path, "intel-rapl:1", "package-1", 7_000)
    readings, why = read_rapl(tmp_path)
    assert why is None
    assert readings == {"intel-rapl:0": (5_000, 1_000_000), "intel-rapl:1": (7_000, 1_000_000)}


def test_rapl_counter_wrap_around(tmp_path):
    start = {"intel-rapl:0": (999_000, 1_000_000), "intel-rapl:1": (10, 1_000_000)}
    end = {"intel-rapl:0": (1_000, 1_000_000), "intel-rapl:1": (2_010, 1_000_000)}
    assert rapl_joules(start, end) == pytest.approx((2_000 + 2_000) / 1e6)


def test_psys_zone_is_used_alone(tmp_path):
    zone(tmp_path, "intel-rapl:0", "package-0", 1)
    zone(tmp_path, "intel-rapl:1", "psys", 2)
    assert [z.name for z in rapl_zones(tmp_path)] == ["intel-rapl:1"]


def test_energy_meter_measures_with_rapl(tmp_path):
    z = zone(tmp_path, "intel-rapl:0", "package-0", 999_500_000, wrap=1_000_000_000)
    with EnergyMeter(rapl_root=tmp_path, use_nvml=False) as meter:
        (z / "energy_uj").write_text("2500000\n")  # wrapped: 0.5 J + 2.5 J
    assert meter.reading.source == "measured: rapl"
    assert meter.reading.measured
    assert meter.reading.joules == pytest.approx(3.0)


def test_unreadable_rapl_falls_back_to_estimate(tmp_path):
    z = zone(tmp_path, "intel-rapl:0", "package-0", 1)
    (z / "energy_uj").unlink()
    (z / "energy_uj").mkdir()  # reading it fails with an OSError, as a permission error would
    with EnergyMeter(30.0, rapl_root=tmp_path, use_nvml=False) as meter:
        pass
    r = meter.reading
    assert r.source.startswith("estimated: 30 W x ") and not r.measured
    assert r.joules == pytest.approx(30.0 * r.seconds)
    assert any("cannot read" in n for n in r.details["notes"])


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root reads files whatever their mode")
def test_rapl_permission_error_is_explained(tmp_path):
    z = zone(tmp_path, "intel-rapl:0", "package-0", 1)
    (z / "energy_uj").chmod(0)
    readings, why = read_rapl(tmp_path)
    assert readings == {} and "root only" in why


def test_no_powercap_folder(tmp_path):
    readings, why = read_rapl(tmp_path / "absent")
    assert readings == {} and "no RAPL zones" in why


def test_estimate_and_bad_watts():
    e = estimate(10.0, 50.0)
    assert e.joules == 500.0 and e.source == "estimated: 50 W x 10.0 s" and e.average_watts == 50
    with pytest.raises(CosttrainError, match="watts"):
        EnergyMeter(0)


# ---------------------------------------------------------------- prices
def test_default_basis_is_laptop_electricity(monkeypatch):
    monkeypatch.delenv(PRICES_ENV, raising=False)
    b = price_basis()
    assert (b.name, b.usd_per_kwh, b.watts) == ("electricity", PRICE_PER_KWH, LAPTOP_WATTS)
    assert b.cost(3600, 3.6e6) == pytest.approx(PRICE_PER_KWH)  # 1 kWh


def test_instance_basis_bills_wall_time():
    b = price_basis("aws-c7i.xlarge")
    assert b.cost(1800, 1e9) == pytest.approx(INSTANCES["aws-c7i.xlarge"]["usd_per_hour"] / 2)
    assert "2026-11" in b.describe()
    with pytest.raises(CosttrainError, match="unknown instance.*aws-c7i.large"):
        price_basis("no-such-box")
    with pytest.raises(CosttrainError, match="price per kWh"):
        price_basis(price_per_kwh=-1)


def test_price_file_from_environment(tmp_path, monkeypatch):
    f = tmp_path / "prices.json"
    f.write_text(json.dumps({"electricity": {"usd_per_kwh": 0.5},
                             "instances": {"home-box": {"usd_per_hour": 0.01, "vcpus": 8}}}))
    monkeypatch.setenv(PRICES_ENV, str(f))
    assert price_basis().usd_per_kwh == 0.5
    assert price_basis("home-box").usd_per_hour == 0.01
    assert price_basis("aws-g5.xlarge").usd_per_hour == INSTANCES["aws-g5.xlarge"]["usd_per_hour"]


def test_price_file_toml_and_errors(tmp_path):
    t = tmp_path / "p.toml"
    t.write_text("[electricity]\nusd_per_kwh = 0.4\nwatts = 60\n")
    b = price_basis(prices=t)
    assert (b.usd_per_kwh, b.watts) == (0.4, 60.0)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(CosttrainError, match="cannot read price file"):
        price_basis(prices=bad)
    with pytest.raises(CosttrainError, match="not found"):
        price_basis(prices=tmp_path / "missing.json")
    wrong = tmp_path / "wrong.json"
    wrong.write_text('{"gpus": {}}')
    with pytest.raises(CosttrainError, match="may only hold"):
        price_basis(prices=wrong)


def test_target_accuracy_as_fraction():
    assert as_fraction(0.8) == 0.8 and as_fraction(80) == 0.8 and as_fraction(None) is None
    for bad in (0, -1, 101):
        with pytest.raises(CosttrainError, match="target accuracy"):
            as_fraction(bad)


# ---------------------------------------------------------------- cost of a run
def test_time_to_target_includes_setup():
    r = known_run()
    assert time_to_target(r, 0.7) == {"wall_seconds": 8.0, "train_seconds": 6.0, "samples": 2000}
    assert time_to_target(r, 70) == time_to_target(r, 0.7)
    assert time_to_target(r, 0.81) is None


def test_attach_cost_with_known_numbers(monkeypatch):
    monkeypatch.delenv(PRICES_ENV, raising=False)
    r = known_run()
    c = attach_cost(r, target_accuracy=0.7)
    joules = LAPTOP_WATTS * 13.0  # estimated over set-up + train + eval
    assert c["energy_joules"] == pytest.approx(joules)
    assert c["energy_source"] == "estimated: 45 W x 13.0 s"
    assert c["cost"] == pytest.approx(joules / 3.6e6 * PRICE_PER_KWH)
    assert c["time_to_target_seconds"] == 8.0 and c["samples_to_target"] == 2000
    assert c["cost_to_target"] == pytest.approx(LAPTOP_WATTS * 8.0 / 3.6e6 * PRICE_PER_KWH)
    assert r.cost is c and "to 70 % accuracy: 8.0 s wall" in c["summary"]
    assert c["summary"] in summary(r)

    inst = attach_cost(known_run(), target_accuracy=0.9, basis=price_basis("aws-c7i.large"))
    assert inst["cost"] == pytest.approx(INSTANCES["aws-c7i.large"]["usd_per_hour"] * 13 / 3600)
    assert inst["cost_to_target"] is None and "90 % accuracy not reached" in inst["summary"]
    assert attach_cost(known_run())["cost_to_target"] is None

    measured = known_run()
    attach_cost(measured, energy=EnergyReading(130.0, 13.0, "measured: rapl"))
    again = attach_cost(measured, target_accuracy=0.7)  # re-priced: the measured energy stays
    assert again["energy_source"] == "measured: rapl" and again["average_watts"] == 10.0
    assert again["cost_to_target"] == pytest.approx(10.0 * 8.0 / 3.6e6 * PRICE_PER_KWH)

    reached, missed = known_run(), known_run()
    attach_cost(reached, target_accuracy=0.7)
    attach_cost(missed, target_accuracy=0.9)
    lines = cost_table([reached, missed, known_run()]).splitlines()
    assert lines[2].split()[-2:] == ["8", "$0.000020"]  # 45 W x 8 s at $0.20/kWh
    assert lines[3].endswith("not reached") and lines[4].split()[-6:] == ["-"] * 6


def test_real_run_carries_cost_through_json(fmnist, tmp_path):
    with EnergyMeter() as meter:
        r = train_baseline("mlp", fmnist, epochs=1, threads=1, eval_every=1000, seed=0)
    attach_cost(r, target_accuracy=0.3, energy=meter.reading)
    assert r.cost["seconds"] >= r.train_seconds > 0
    assert r.cost["energy_source"].split(":")[0] in ("measured", "estimated")
    assert r.cost["time_to_target_seconds"] is not None  # an MLP passes 30 % within an epoch
    assert r.cost["time_to_target_seconds"] <= r.setup_seconds + r.train_seconds + 1e-4
    back = load_results(save_results([r], tmp_path / "r.json"))[0]
    assert back.cost == json.loads(json.dumps(r.cost))


def test_comparison_attaches_cost(fmnist):
    rs = run_comparison(fmnist, model="mlp", total_epochs=1, eval_every=1500,
                        only=["baseline 1 thread"], target_accuracy=0.99)
    assert len(rs) == 1 and rs[0].cost["energy_joules"] > 0
    assert rs[0].cost["target_accuracy"] == 0.99 and rs[0].cost["cost_to_target"] is None


def test_plots_are_written(tmp_path):
    a, b = known_run(), known_run(setup_seconds=5.0, method="hogwild",
                                  config={"processes": 2, "epochs_per_process": 1})
    for r in (a, b):
        attach_cost(r, target_accuracy=0.75)
    fig = plot_accuracy_vs_time([a, b], target=0.75)
    ax = fig.axes[0]
    assert len(ax.lines) == 3  # two runs and the target line
    assert list(ax.lines[1].get_xdata()) == [8.0, 11.0, 14.0]  # wall = set-up + training
    p1 = plot_accuracy_vs_time([a, b], tmp_path / "figs" / "acc.png")
    b.cost["cost_to_target"] = None
    p2 = plot_cost_to_target([a, b], tmp_path / "figs" / "cost.png")
    assert p1.stat().st_size > 1000 and p2.stat().st_size > 1000
    texts = [t.get_text() for t in plot_cost_to_target([a, b]).axes[0].texts]
    assert texts[1] == "not reached" and texts[0].startswith("$")


def test_money_keeps_two_significant_digits_below_a_cent():
    from costtrain.advice.cost import money
    assert [money(x) for x in (1.5, 0.000125, 2.2e-5, None)] == ["$1.50", "$0.00013",
                                                                 "$0.000022", "-"]


def test_nvml_absent_or_unusable_is_explained():
    from costtrain.advice.energy import read_nvml
    readings, why = read_nvml()
    if readings:  # a machine with an NVIDIA GPU and nvidia-ml-py: millijoule counters
        assert why is None and all(v >= 0 for v in readings.values())
    else:
        assert "nvidia-ml-py" in why or "NVML" in why
