"""Your machine, your decision: a one-page decision card from ``costtrain advise``.

:func:`decision_card` turns an :class:`~costtrain.advice.advise.Advice` (short probes of every method
on this machine, the whole job predicted from them and ranked by one-off time) into
``decision_card.md`` and ``decision_card.png``: the machine, the recommended configuration and
its command line, the predicted one-off time (set-up + training; evaluation not included) and
cost, with ranges when the probes were repeated, the runner-up, and what would change the
answer. It names a winner only when the probes can tell: one probe each gives "fastest
predicted" and says to repeat; overlapping ranges of repeated probes say "within noise". Every number on the card comes from the advice's own probes; the rules of thumb are
computed from them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .cost import money


def _machine(hw: dict[str, Any]) -> str:
    gpu = f", GPU {hw['gpu']}" if hw.get("gpu") else ", no GPU"
    return (f"{hw.get('cpu', '?')}, {hw.get('cores', '?')} cores{gpu}; "
            f"Python {hw.get('python', '?')}, torch {hw.get('torch', '?')}")


def _seconds(row) -> str:
    if row.predicted_seconds is None:
        return "-"
    if row.predicted_range:
        lo, hi = row.predicted_range
        return f"{row.predicted_seconds:.1f} s [{lo:.1f}-{hi:.1f}]"
    return f"{row.predicted_seconds:.1f} s"


def _times(row, rec, of: str) -> str:
    """`` (1.48x the recommended time)``: `row`'s predicted time against `rec`'s, if both have one."""
    if not (row.predicted_seconds and rec.predicted_seconds):
        return ""
    return f" ({row.predicted_seconds / rec.predicted_seconds:.2f}x {of})"


def _probe(advice, method: str, test=lambda r: True):
    """The fastest ok probe (steady samples/s) of `method` that passes `test`, or None."""
    found = [r for r in advice.probes if r.status == "ok" and r.method == method and test(r)]
    return max(found, key=lambda r: r.steady_samples_per_second, default=None)


def verdict(advice) -> tuple[str, str]:
    """How sure the card may be: the word for the top row and, where the probes cannot tell it
    from the runner-up, the sentence that says so (the fair-verdict rules: one probe each names
    no winner; overlapping ranges of repeated probes are within noise)."""
    from .predict import within_noise
    ok = [r for r in advice.rows if r.status == "ok"]
    rec = advice.recommended
    if rec is None or len(ok) < 2:
        return "Recommended", ""
    second = ok[1]
    ratio = _times(second, rec, "its time")
    noisy = within_noise(rec, second)
    if noisy is None:
        return ("Fastest predicted, one probe each",
                f"One probe each names no winner: the runner-up, {second.label}, is predicted "
                f"at {_seconds(second)}{ratio}. Repeat the probes (`costtrain advise --repeats 3`, "
                "or `repeats=3`) before trusting the order.")
    if noisy:
        return ("Recommended, within noise of the runner-up",
                f"The repeated probes' predicted ranges of {rec.label} and {second.label} "
                f"({_seconds(second)}{ratio}) overlap: either is a fine choice.")
    return "Recommended", ""


def what_would_change(advice) -> list[str]:
    """Rules of thumb for this machine, each computed from the advice's own probes."""
    out = []
    one = _probe(advice, "baseline", lambda r: r.threads == 1 and r.device == "cpu")
    many = _probe(advice, "baseline", lambda r: r.threads > 1 and r.device == "cpu")
    hog = _probe(advice, "hogwild", lambda r: r.device == "cpu")
    if one and many:
        out.append(f"**More cores.** One process with {many.threads} threads trained "
                   f"{many.steady_samples_per_second / one.steady_samples_per_second:.2f}x as "
                   f"many samples/s as with 1 thread (ideal: {many.threads}x): this net gains "
                   "little from more threads; more cores pay off through more processes.")
    if hog and (many or one):
        ref = many or one
        procs = hog.config.get("processes", "?")
        ratio = hog.steady_samples_per_second / ref.steady_samples_per_second
        out.append(f"**More processes.** Hogwild! with {procs} processes trained {ratio:.2f}x the "
                   f"samples/s of the best single process, after {hog.setup_seconds:.1f} s of "
                   f"set-up against {ref.setup_seconds:.1f} s: "
                   + ("the longer the job, the less the start-up matters." if ratio > 1 else
                      "it trained no faster even once started, so a longer job does not make it "
                      "pay on this machine; more cores or a sparse model might."))
    gpu = _probe(advice, "baseline", lambda r: r.device != "cpu")
    if gpu and (many or one):
        out.append(f"**A GPU.** The GPU probe ({gpu.label}) trained "
                   f"{gpu.steady_samples_per_second / (many or one).steady_samples_per_second:.2f}x "
                   "the CPU's best samples/s; larger batches or a bigger net use a GPU better.")
    elif not advice.hardware.get("gpu"):
        out.append("**A GPU.** None here. A small net at batch 64 keeps a GPU waiting on kernel "
                   "launches; a larger batch or a bigger model is what a GPU speeds up.")
    out.append("**A sparse model.** If each step of your model touches only a few weights "
               "(embeddings, hashed features), Hogwild!'s workers rarely collide and it can scale "
               "much better than on this dense net (notebook 03b measures it on your machine).")
    ps = _probe(advice, "ps-sync") or _probe(advice, "ps-async")
    if ps and ps.extra.get("comm_share") is not None:
        line = (f"**A network link.** On this machine's loopback the parameter server's workers "
                f"spent {100 * ps.extra['comm_share']:.0f} % of their time communicating")
        try:
            from .network import measured_seconds_per_step, predict
            wifi = predict(ps, "wifi", 2).seconds_per_step / measured_seconds_per_step(ps)
            line += (f"; on two machines over Wi-Fi each step is predicted to take {wifi:.1f}x "
                     "as long: talk less (local SGD, notebook 05).")
        except Exception:  # a probe without the communication figures the model needs
            line += "."
        out.append(line)
    return out


def card_markdown(advice) -> str:
    """The decision card as Markdown."""
    job = advice.job
    target = job.get("target_accuracy")
    lines = ["# Your machine, your decision", "",
             f"**Machine:** {_machine(advice.hardware)}.", "",
             f"**Job:** {job.get('dataset', '?')}, {job.get('epochs', '?')} epoch(s) = "
             f"{job.get('samples', 0):,} samples, batch {job.get('batch_size', '?')}"
             + (f", target {100 * target:.1f} % test accuracy" if target else "") + ".", ""]
    rec = advice.recommended
    ok = [r for r in advice.rows if r.status == "ok"]
    if rec is None:
        lines += ["**No recommendation:** no configuration could be probed within the budget of "
                  f"{advice.budget_seconds:.0f} s. Raise the budget and run again.", ""]
    else:
        cost = "-" if rec.predicted_cost is None else money(rec.predicted_cost)
        word, sure = verdict(advice)
        lines += [f"**{word}:** {rec.label}, predicted {_seconds(rec)} one-off (set-up + "
                  f"training{' to the target' if target and rec.reaches_target else ''}), {cost} "
                  f"({advice.basis.describe()}).", "",
                  f"    {rec.command()}", ""]
        if sure:
            lines += [f"**How sure:** {sure}", ""]
        elif len(ok) > 1:
            second = ok[1]
            lines += [f"**Runner-up:** {second.label}, {_seconds(second)}"
                      f"{_times(second, rec, 'the recommended time')}.", ""]
        lines += [f"**Why:** {advice.justification}", ""]
    lines += ["| rank | configuration | predicted set-up + training | predicted cost | expected acc % "
              "| measured samples/s |", "|---|---|---|---|---|---|"]
    for r in advice.rows:
        lines.append(f"| {r.rank if r.status == 'ok' else r.status} | {r.label} | {_seconds(r)} | "
                     f"{'-' if r.predicted_cost is None else money(r.predicted_cost)} | "
                     f"{'-' if r.expected_accuracy is None else f'{100 * r.expected_accuracy:.1f}'} "
                     f"| {r.samples_per_second:,.0f} |")
    lines += ["", "## What would change the answer", ""]
    lines += [f"- {t}" for t in what_would_change(advice)]
    lines += ["", f"*Predicted from {len(advice.probes)} short probe(s) measured on this machine "
              f"in {advice.elapsed_seconds:.0f} s (budget {advice.budget_seconds:.0f} s). "
              "Throughput is measured; accuracies are extrapolated and a rough guide.*"]
    if advice.notes:
        lines += [""] + [f"- note: {n}" for n in advice.notes]
    return "\n".join(lines) + "\n"


def card_figure(advice, path: str | Path) -> Path:
    """The card as one PNG: the machine, the recommendation with its command, time and cost,
    what would change the answer, and the ranked predictions."""
    import re
    import textwrap

    from matplotlib.figure import Figure
    rows = [r for r in advice.rows if r.status == "ok" and r.predicted_seconds is not None]
    rec = advice.recommended
    text = textwrap.wrap(f"Machine: {_machine(advice.hardware)}", 100)
    if rec is not None:
        cost = "-" if rec.predicted_cost is None else money(rec.predicted_cost)
        word, sure = verdict(advice)
        text += [f"{word}: {rec.label}, predicted {_seconds(rec)} (set-up + training), "
                 f"{cost}", f"  {rec.command()}"]
        text += textwrap.wrap(re.sub(r"`", "", sure), 100)
    else:
        text += ["No configuration could be probed within the budget: raise it and run again."]
    text += ["", "What would change the answer:"]
    for rule in what_would_change(advice):
        plain = re.sub(r"\*\*(.+?)\*\*", r"\1", rule)
        text += textwrap.wrap(plain, 100, initial_indent="- ", subsequent_indent="  ")
    fig = Figure(figsize=(9, 1.0 + 0.17 * len(text) + 0.3 * max(len(rows), 1) + 0.8),
                 layout="constrained")
    top, bottom = fig.subplots(2, 1, height_ratios=[0.6 + 0.17 * len(text),
                                                    0.8 + 0.3 * max(len(rows), 1)])
    top.axis("off")
    top.text(0, 1, "Your machine, your decision", fontsize=13, fontweight="bold", va="top",
             transform=top.transAxes)
    top.text(0, 0.88, "\n".join(text), fontsize=7.5, va="top", family="monospace",
             transform=top.transAxes)
    if rows:
        secs = [r.predicted_seconds for r in rows]
        err = [[max(0.0, s - (r.predicted_range or (s, s))[0]) for s, r in zip(secs, rows)],
               [max(0.0, (r.predicted_range or (s, s))[1] - s) for s, r in zip(secs, rows)]]
        bottom.barh([r.label for r in rows], secs, xerr=err, capsize=2,
                    color=["tab:green" if r is rec else "tab:gray" for r in rows])
        bottom.invert_yaxis()
        bottom.set_xlabel("predicted one-off seconds for the whole job, set-up + training "
                          "(green: recommended)")
    else:
        bottom.axis("off")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


def decision_card(advice, out_dir: str | Path, name: str = "decision_card") -> tuple[Path, Path]:
    """Write ``NAME.md`` and ``NAME.png`` into `out_dir`; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    md = out / f"{name}.md"
    md.write_text(card_markdown(advice), encoding="utf-8")
    return md, card_figure(advice, out / f"{name}.png")
