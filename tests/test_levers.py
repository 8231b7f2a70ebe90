"""The levers: compile, mixed precision, channels_last and the batch-size scaling rule reach the
trainers from Python and the command line, refuse what the hardware cannot run fast (with the
CPU's flags faked), and a lever is recommended only when it measured faster beyond noise."""
from __future__ import annotations

import math
import random

import pytest
import torch

from costtrain import cli
from costtrain.advice.advise import lever_plan
from costtrain.advice.payoff import Trial, break_even_samples, conclusion, judge, pick
from costtrain.data.models import build_model
from costtrain.hogwild import train_hogwild
from costtrain.train import levers
from costtrain.train.baseline import train_baseline
from costtrain.utils import CosttrainError

AVX2_ONLY = frozenset({"fpu", "sse2", "avx", "avx2", "fma"})
AVX512_NO_BF16 = AVX2_ONLY | {"avx512f", "avx512bw"}
AMX = AVX512_NO_BF16 | {"avx512_bf16", "amx_bf16", "amx_tile"}


@pytest.fixture
def tiny(fmnist):
    """512 training and 256 test images of the session's Fashion-MNIST sample."""
    import dataclasses
    return dataclasses.replace(fmnist, train_x=fmnist.train_x[:512], train_y=fmnist.train_y[:512],
                               test_x=fmnist.test_x[:256], test_y=fmnist.test_y[:256])


# --- compile -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kw,match", [
    (dict(compile="fastest"), "compile must be False, True or a torch.compile mode"),
    (dict(compile="reduce-overhead"), "CUDA graphs: CUDA only"),
    (dict(amp="fp8"), "amp must be None, 'bf16' or 'fp16'"),
    (dict(amp="fp16"), "amp='fp16' is for CUDA GPUs"),
    (dict(channels_last=True), "MLP has no Conv2d layer"),
    (dict(base_batch=0), "base_batch must be an integer >= 1"),
])
def test_bad_levers_are_refused_before_training(tiny, kw, match):
    calls = []
    with pytest.raises(CosttrainError, match=match):
        train_baseline("mlp", tiny, on_progress=lambda *a: calls.append(a), **kw)
    assert calls == []


def test_compile_without_a_cxx_compiler_is_refused(tiny, monkeypatch):
    monkeypatch.setenv("PATH", "")
    monkeypatch.delenv("CXX", raising=False)
    with pytest.raises(CosttrainError, match="needs? .*C\\+\\+ compiler|C\\+\\+ compiler and none"):
        train_baseline("mlp", tiny, compile=True)


# --- bf16 and the CPU's flags --------------------------------------------------------------------

def test_cpu_flags_are_read_from_cpuinfo():
    flags = levers.cpu_flags()
    try:
        text = open("/proc/cpuinfo").read()
    except OSError:
        assert flags == frozenset()
        return
    if "flags" in text or "Features" in text:
        assert flags and all(isinstance(f, str) for f in flags)


@pytest.mark.parametrize("flags,native,words", [
    (AVX2_ONLY, False, "AVX2 only"),
    (AVX512_NO_BF16, False, "AVX-512 without BF16"),
    (AMX, True, "amx_bf16, avx512_bf16"),
    (frozenset({"fp", "asimd", "bf16"}), True, "bf16"),  # Arm with the BF16 extension
    (frozenset(), False, "torch reports"),  # no /proc/cpuinfo: torch's capability, not confirmed
])
def test_native_bf16_from_flags(flags, native, words):
    assert levers.native_bf16(flags) == (native, levers.native_bf16(flags)[1])
    assert levers.native_bf16(flags)[0] is native and words in levers.native_bf16(flags)[1]


def test_bf16_on_a_cpu_without_it_is_refused_before_the_data_loads(monkeypatch, tmp_path):
    """The refusal comes first: the data folder named here does not even exist."""
    monkeypatch.setattr(levers, "cpu_flags", lambda: AVX2_ONLY)
    with pytest.raises(CosttrainError) as e:
        train_baseline("simple", "mnist", data_root=str(tmp_path / "nothing"), amp="bf16")
    assert str(e.value).startswith("amp='bf16': this CPU has no native bf16 (AVX2 only); bf16 "
                                   "would be much slower here")
    assert "force_amp=True / --force-amp" in str(e.value)
    with pytest.raises(CosttrainError, match="no native bf16"):
        train_hogwild("simple", "mnist", data_root=str(tmp_path / "nothing"), amp="bf16")


def test_bf16_refusal_from_the_command_line(monkeypatch, capsys):
    monkeypatch.setattr(levers, "cpu_flags", lambda: AVX2_ONLY)
    assert cli.main(["run", "--amp", "bf16", "--subset", "200", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "this CPU has no native bf16 (AVX2 only)" in err and "--force-amp" in err


def test_forced_bf16_trains_and_native_bf16_is_accepted(tiny, monkeypatch):
    monkeypatch.setattr(levers, "cpu_flags", lambda: AVX2_ONLY)
    r = train_baseline("mlp", tiny, amp="bf16", force_amp=True)
    assert r.status == "ok" and r.config["amp"] == "bf16" and r.samples == 512
    assert math.isfinite(r.test_loss)
    monkeypatch.setattr(levers, "cpu_flags", lambda: AMX)
    levers.check_levers(levers.make_levers(amp="bf16"), torch.device("cpu"))  # no error
    assert ("bf16", {"amp": "bf16"}) in lever_plan(build_model("mlp"))
    monkeypatch.setattr(levers, "cpu_flags", lambda: AVX2_ONLY)
    monkeypatch.setattr("costtrain.advice.advise.native_bf16", levers.native_bf16)
    assert ("bf16", {"amp": "bf16"}) not in lever_plan(build_model("mlp"))


# --- channels_last and batch size --------------------------------------------------------------

def test_channels_last_on_a_conv_net_gives_a_result_of_the_same_shape(tiny):
    net = build_model("simple")
    plain = train_baseline("simple", tiny, seed=3)
    r = train_baseline(net, tiny, channels_last=True, seed=3)
    assert net.conv2.weight.is_contiguous(memory_format=torch.channels_last)
    assert r.config["channels_last"] is True and r.status == "ok"
    assert r.samples == plain.samples
    assert {k: len(v) for k, v in r.loss_curve.items()} == \
        {k: len(v) for k, v in plain.loss_curve.items()}
    assert r.loss_curve["loss"][0] == pytest.approx(plain.loss_curve["loss"][0], rel=1e-3)
    assert abs(r.test_accuracy - plain.test_accuracy) < 0.05


def test_base_batch_applies_the_linear_scaling_rule(tiny):
    r = train_baseline("mlp", tiny, batch_size=128, base_batch=64, lr=0.01)
    assert r.config["lr"] == pytest.approx(0.02) and r.config["base_batch"] == 64
    from costtrain.train.engine import make_optimizer
    with pytest.raises(CosttrainError, match="set its learning rate yourself"):
        train_baseline("mlp", tiny, base_batch=64, optimizer=make_optimizer("adam", 1e-3))


# --- the command line --------------------------------------------------------------------------

def _run_args(*argv):
    return cli.build_parser(["run"]).parse_args(["run", *argv])


def test_lever_flags_parse_and_reach_the_trainers():
    a = _run_args("--compile", "--amp", "bf16", "--channels-last", "--force-amp",
                  "--base-batch", "32")
    kw = cli.run_kwargs(a)
    assert (kw["compile"], kw["amp"], kw["channels_last"], kw["force_amp"], kw["base_batch"]) \
        == ("default", "bf16", True, True, 32)
    assert cli.run_kwargs(_run_args("--compile", "max-autotune"))["compile"] == "max-autotune"
    plain = cli.run_kwargs(_run_args("--method", "hogwild"))
    assert (plain["compile"], plain["amp"], plain["channels_last"]) == (False, None, False)
    with pytest.raises(SystemExit):
        _run_args("--amp", "fp8")


@pytest.mark.parametrize("method", ["ps", "local-sgd"])
def test_levers_with_the_distributed_methods_are_refused_clearly(method):
    with pytest.raises(CosttrainError, match="the levers apply to --method baseline and hogwild"):
        cli.run_kwargs(_run_args("--method", method, "--compile"))


def test_a_lever_that_breaks_inside_torch_is_recorded_and_advise_goes_on(fmnist, monkeypatch):
    """A corrupt compiler cache makes torch raise from deep inside (here: ImportError, "file
    too short", as a truncated kernel library does): the lever is named with the error and
    advise still recommends, on the levers that ran."""
    import torch

    from costtrain.advice import advise
    from costtrain.advice.advise import Probe, recommend

    def broken(*args, **kwargs):
        raise ImportError("/tmp/kernel.so: file too short")
    monkeypatch.setattr(torch, "compile", broken)
    monkeypatch.setattr(advise, "cxx_compiler", lambda: "c++")
    monkeypatch.setattr(advise, "COMPILE_GUESS", 0.5)  # it fails at once: plan no minutes for it
    advice = recommend("mlp", fmnist, budget_seconds=24, progress=False, levers=True,
                       probes=[Probe("baseline 1 thread", "baseline", {"threads": 1})])
    assert advice.recommended is not None and advice.levers is not None
    why = [x for x in advice.levers.skipped if x.startswith("compile")]
    assert why and "ImportError" in why[0] and "file too short" in why[0], advice.levers.skipped
    assert "compile" not in {v.trial.label for v in advice.levers.verdicts}
    assert "compile" not in advice.recommended.job


# --- the verdicts advise rests on (made-up measurements) ---------------------------------------

JOB = 120_000


def test_a_lever_measured_slower_is_dropped():
    v = judge(Trial("bf16", [900, 950, 920], [1000, 1010, 990]), job_samples=JOB)
    assert not v.kept and v.why.startswith("slower")


def test_a_lever_within_noise_is_dropped():
    v = judge(Trial("channels_last", [1020, 1100, 980], [1000, 1050, 990]), job_samples=JOB)
    assert not v.kept and v.why.startswith("within noise")


def test_a_lever_faster_in_every_alternating_pair_is_kept_through_a_slow_spell():
    """A slow spell hits both runs of a pair: the ranges of the rates overlap, the pairs do not
    (notebook 01b's channels_last: 1.25x to 1.48x in every pair, ranges overlapping)."""
    base, on = [1000, 700, 1010], [1300, 900, 1400]
    assert min(on) < max(base)  # the unpaired ranges overlap
    v = judge(Trial("channels_last", on, base), job_samples=JOB)
    assert v.kept and "faster in each of its 3 alternating pairs" in v.why
    v = judge(Trial("channels_last", [1300, 690, 1400], base), job_samples=JOB)
    assert not v.kept and "not faster in 1 of its 3 alternating pairs" in v.why
    # slower by the medians, but faster in one pair: within noise, not "slower" (01b's bf16)
    v = judge(Trial("bf16", [900, 750, 950], base), job_samples=JOB)
    assert not v.kept and v.why.startswith("within noise") and "faster in 1 and" in v.why


def test_compile_that_does_not_pay_back_within_the_job_is_dropped():
    t = Trial("compile", [1100, 1110, 1105], [1000, 1005, 998], extra_setup=30.0)
    v = judge(t, job_samples=JOB)
    even = break_even_samples(30.0, 1000, 1105)
    assert not v.kept and even > JOB and f"{even:,.0f} samples" in v.why
    assert judge(t, job_samples=2 * even).kept  # a longer job pays it back


def test_a_lever_that_learns_less_from_the_same_samples_is_dropped():
    """A 4x batch steps twice as fast but loses 4 points at equal samples (measured so on the
    sparse model): not a win by time to an accuracy. One point less is within the slack."""
    fast = dict(rates=[2100, 2050, 2200], base_rates=[1000, 1020, 990])
    v = judge(Trial("batch 256 (lr x4)", **fast, accuracy=0.675, base_accuracy=0.718),
              job_samples=JOB)
    assert not v.kept and v.why.startswith("learns less") and "4.3 points" in v.why
    assert judge(Trial("batch 256", **fast, accuracy=0.71, base_accuracy=0.718),
                 job_samples=JOB).kept
    assert judge(Trial("batch 256", **fast), job_samples=JOB).kept  # accuracy not measured


def test_pick_takes_the_soonest_kept_lever_and_never_a_slower_one():
    verdicts = [judge(Trial("slow", [500, 510], [1000, 1000]), job_samples=JOB),
                judge(Trial("noisy", [1200, 900], [1000, 1010]), job_samples=JOB),
                judge(Trial("good", [1300, 1320], [1000, 1010]), job_samples=JOB),
                judge(Trial("better but compiles", [1500, 1490], [1000, 1010], 5.0),
                      job_samples=JOB)]
    best = pick(verdicts)
    assert best.trial.label == "better but compiles"
    assert best.speedup.low > 1 and best.job_seconds < best.base_seconds
    assert pick(verdicts[:2]) is None
    text = conclusion(verdicts, "the mlp")
    assert text.startswith("on this machine, for the mlp, keep good and better but compiles")
    assert "slow did not pay (slower" in text and "noisy did not pay (within noise" in text


def test_no_made_up_lever_that_measured_slower_or_within_noise_is_ever_picked():
    rng = random.Random(0)
    for _ in range(300):
        trials = []
        for i in range(rng.randint(1, 4)):
            base = [rng.uniform(800, 1200) for _ in range(3)]
            trials.append(Trial(f"lever {i}", [b * rng.uniform(0.7, 1.4) for b in base], base,
                                rng.choice([0.0, 0.0, 5.0, 40.0])))
        best = pick([judge(t, job_samples=rng.choice([1e3, 1e5, 1e7])) for t in trials])
        if best is not None:
            assert all(r > b for r, b in zip(best.trial.rates, best.trial.base_rates))
            assert best.job_seconds < best.base_seconds


def test_compiling_for_the_cpu_silences_the_no_cuda_warning_only_then():
    """torch's C++-extension logger warns on a cold CPU compile that no CUDA runtime exists and
    names a machine path (it reached the notebooks' outputs): compiling for the CPU keeps it to
    errors; an eager net leaves it alone."""
    import logging
    log = logging.getLogger("torch.utils.cpp_extension")
    log.setLevel(logging.NOTSET)
    levers.Fast(build_model("simple"), levers.make_levers(), torch.device("cpu"), 64)
    assert log.level == logging.NOTSET
    levers.Fast(build_model("simple"), levers.make_levers(compile="default"), torch.device("cpu"), 64)
    assert log.level == logging.ERROR
