"""edgesim search on digits-cnn: a flash budget at 40 % of the uniform-int8 model's, plans that meet it and
beat every uniform plan that does, the same result serially and on a 2-worker Dask cluster, the chosen plan
run with TFLM's integer arithmetic, and bad input as one line with exit status 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
from dask.distributed import Client, LocalCluster

from simulator.budget import parse_budget
from simulator.cli import main
from simulator.compare import compare_plans
from simulator.deployment import deploy
from simulator.estimate import estimate
from simulator.execute.int_exec import dequantize, run_tflm
from simulator.fidelity import load_dataset
from simulator.hardware import load_hardware
from simulator.importers import load_model
from simulator.plan import apply_plan, load_plan, parse_plan
from simulator.search.evaluate import make_context
from simulator.search.front import lagrangian_sweep
from simulator.search.scheduler import DaskRunner, SerialRunner
from simulator.search.search import as_dict, run_search
from simulator.search.space import build_space

HW = "cortex-m4"


def _uniform(bits: int) -> object:
    quantize = {"pass": "quantize", "weights": {"bits": bits}, "activations": {"bits": 8}}
    return parse_plan({"name": f"uniform-int{bits}", "passes": [quantize]}, f"uniform-int{bits}")


@pytest.fixture(scope="module")
def setting():
    graph = load_model("digits-cnn")
    hw = load_hardware(HW)
    # the uniform baselines through compare (a separate path from the search's own evaluation)
    rows = compare_plans(graph, hw, [_uniform(8), _uniform(4), _uniform(2)])[1:]
    limit = int(0.4 * rows[0].flash_bytes)
    budget = parse_budget(f"flash_bytes={limit}")
    context = make_context(graph, hw)
    space = build_space(graph, hw)
    result = run_search(context, space, budget, SerialRunner(), "accuracy", seed=0)
    return graph, hw, rows, limit, budget, context, space, result


def test_plans_meet_the_budget_and_beat_the_uniform_ones(setting):
    graph, hw, rows, limit, _, _, _, result = setting
    assert rows[0].flash_bytes > limit  # uniform int8 does not fit, by construction of the budget
    chosen = result.chosen
    assert chosen is not None
    # the chosen plan, re-applied and re-estimated from its plan data, meets the budget
    plan = parse_plan(chosen.plan, chosen.name)
    est = estimate(deploy(apply_plan(graph, plan), hw, from_plan=True).graph, hw)
    assert est.flash_bytes == chosen.totals["flash_bytes"] <= limit
    fitting = [r for r in rows if r.flash_bytes <= limit]
    assert fitting, "uniform int2 fits 40 % of int8's flash"
    for r in fitting:
        assert chosen.accuracy > r.accuracy, r.plan
    # the front's best plan within budget is as accurate as the chosen one
    inside = [p for p in result.front if p.totals["flash_bytes"] <= limit]
    assert max(p.accuracy for p in inside) == chosen.accuracy
    # a real trade-off: the chosen plan mixes bit widths
    assert len({c.split("=")[1][:2] for c in chosen.plan["description"].split()}) > 1


def test_same_result_on_a_two_worker_dask_cluster(setting):
    _, _, _, _, budget, context, space, result = setting
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None)
    with cluster, Client(cluster) as client:
        distributed = run_search(context, space, budget, DaskRunner(client, "test"), "accuracy", seed=0)
    assert as_dict(distributed) == as_dict(result)


def test_chosen_plan_runs_in_tflm_mode(setting, tmp_path):
    graph, _, _, limit, _, _, _, _ = setting
    out = tmp_path / "out"
    assert main(["search", "digits-cnn", "--hw", HW, "--budget", f"flash_bytes={limit}", "--scheduler", "serial",
                 "-o", str(out)]) == 0  # fmt: skip
    report = json.loads((out / "search.json").read_text())
    chosen = report["chosen"]
    assert chosen["within_budget"] and (out / "front.png").stat().st_size > 0
    assert "tflm mode" in (out / "search.txt").read_text()
    # the written plan, loaded as `edgesim compare --plan` loads it, run sample by sample with run_tflm
    plan = load_plan(out / "front" / f"{chosen['name']}.yaml")
    deployed = deploy(apply_plan(graph, plan), load_hardware(HW), from_plan=True).graph
    data = load_dataset(graph)
    name = deployed.outputs[0]
    hits = 0
    for feed, label in zip(data.feeds, data.labels, strict=True):
        values, quant = run_tflm(deployed, feed)
        hits += int(np.argmax(dequantize(values[name], quant[name])) == label)
    assert report["tflm"]["accuracy"] == pytest.approx(hits / len(data.feeds))
    # integer execution stays close to the simulated fidelity the search optimised
    assert abs(report["tflm"]["accuracy"] - chosen["accuracy"]) < 0.05


def test_lagrangian_sweep_by_hand():
    # one unit: choices (noise, cost) (0, 4), (1, 2), (5, 1), (3, 3); (3, 3) is dominated by (1, 2)
    picks = lagrangian_sweep([[0.0, 1.0, 5.0, 3.0]], [[4.0, 2.0, 1.0, 3.0]])
    assert [p[0] for p in picks] == [0, 1, 2]


@pytest.mark.parametrize(
    ("space", "needle"),
    [
        ("bits: [3, 9, 17]\n", "bits: expected integers from 2 to 16, got 17"),
        ("bitz: [4]\n", "unknown field 'bitz'"),
        ("prune: [1.5]\n", "prune: expected none, a fraction in (0, 1) or N:M"),
        ("pinned: [nope]\n", "pinned: 'nope' matches no layer with weights"),
        ("bits: [4\n", "invalid YAML"),
    ],
)
def test_bad_space_is_one_line_exit_2(tmp_path, capsys, space, needle):
    path = tmp_path / "space.yaml"
    path.write_text(space)
    assert main(["search", "digits-cnn", "--hw", HW, "--budget", "flash_bytes=2K", "--space", str(path),
                 "--scheduler", "serial"]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err and needle in err


@pytest.mark.parametrize("budget", ["flash=2K", "flash_bytes=-1", "flash_bytes=lots"])
def test_bad_budget_is_one_line_exit_2(capsys, budget):
    assert main(["search", "digits-cnn", "--hw", HW, "--budget", budget, "--scheduler", "serial"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--budget" in err


def test_bad_scheduler_is_one_line_exit_2(capsys):
    assert main(["search", "digits-cnn", "--hw", HW, "--budget", "flash_bytes=2K", "--scheduler", "mpi"]) == 2
    assert "--scheduler 'mpi'" in capsys.readouterr().err
