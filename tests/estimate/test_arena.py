"""The activation arena planner on graphs small enough to plan by hand (alignment 1 unless stated)."""

from __future__ import annotations

from simulator.estimate.arena import plan_arena
from simulator.graph import Graph, Node, Tensor


def _graph(nodes, inputs, outputs):
    names = set(inputs) | {o for n in nodes for o in n.outputs}
    return Graph("g", nodes, {n: Tensor(n, (1,)) for n in names}, inputs, outputs)


def test_chain_reuses_memory_of_dead_tensors():
    # x(100) -A-> a(200) -B-> b(50): x dies after A, so b can take x's place above a
    g = _graph([Node("A", "Relu", ["x"], ["a"]), Node("B", "Relu", ["a"], ["b"])], ["x"], ["b"])
    sizes = {"x": 100, "a": 200, "b": 50}
    plan = plan_arena(g, sizes.__getitem__, alignment=1)
    offsets = plan.offsets()
    assert offsets == {"a": 0, "x": 200, "b": 200}
    assert plan.peak_ram_bytes == 300
    assert plan.live_bytes() == [300, 250]


def test_residual_add_keeps_the_skip_tensor_alive():
    # x(64) -c1-> a(64) -c2-> b(64); add(x, b) -> y(64): x lives to the add, so three buffers at step 1
    nodes = [
        Node("c1", "Relu", ["x"], ["a"]),
        Node("c2", "Relu", ["a"], ["b"]),
        Node("add", "Add", ["x", "b"], ["y"]),
    ]
    g = _graph(nodes, ["x"], ["y"])
    plan = plan_arena(g, lambda n: 64, alignment=1)
    # lifetimes: x [0,2], a [0,1], b [1,2], y [2,2]; at step 1 x, a, b are live; at step 2 x, b, y
    assert plan.live_bytes() == [128, 192, 192]
    assert plan.peak_ram_bytes == 192
    # y may reuse a's slot (a died at step 1)
    assert plan.offsets()["y"] == plan.offsets()["a"]


def test_branches_and_concat():
    # x(40) feeds two branches p(30), q(20), concatenated into c(50)
    nodes = [
        Node("P", "Relu", ["x"], ["p"]),
        Node("Q", "Relu", ["x"], ["q"]),
        Node("cat", "Concat", ["p", "q"], ["c"], {"axis": 1}),
    ]
    g = _graph(nodes, ["x"], ["c"])
    sizes = {"x": 40, "p": 30, "q": 20, "c": 50}
    plan = plan_arena(g, sizes.__getitem__, alignment=1)
    # by size: c(50)@0 [step 2]; x(40) [0,1] -> 0 (no time overlap with c); p(30) [0,2] overlaps both -> 50;
    # q(20) [1,2] overlaps x(0..40), c(0..50), p(50..80) -> 80
    assert plan.offsets() == {"c": 0, "x": 0, "p": 50, "q": 80}
    assert plan.peak_ram_bytes == 100


def test_reshape_aliases_its_input():
    # x(32) -relu-> a(32) -reshape-> r (same buffer) -relu-> y(32)
    nodes = [
        Node("R1", "Relu", ["x"], ["a"]),
        Node("flat", "Reshape", ["a", "shape"], ["r"]),
        Node("R2", "Relu", ["r"], ["y"]),
    ]
    g = Graph(
        "g",
        nodes,
        {**{n: Tensor(n, (1,)) for n in ("x", "a", "r", "y")}, "shape": Tensor("shape", (1,), "int64", constant=True)},
        ["x"],
        ["y"],
    )
    plan = plan_arena(g, lambda n: 32, alignment=1)
    assert len(plan.buffers) == 3  # x, a (= r), y
    assert plan.offsets()["r"] == plan.offsets()["a"]
    # a lives until R2 reads its alias at step 2; x dies at step 0 so y reuses x's place
    assert plan.peak_ram_bytes == 64


def test_alignment_rounds_sizes_up():
    g = _graph([Node("A", "Relu", ["x"], ["a"])], ["x"], ["a"])
    plan = plan_arena(g, lambda n: 10, alignment=16)
    assert plan.peak_ram_bytes == 32


def _brute_force(plan_in, sizes):
    """The greedy-by-size placement written the obvious way (every placed buffer checked for every new
    one): a second implementation for the indexed one in arena.py."""
    placed = []
    for b in sorted(plan_in.buffers, key=lambda b: (-sizes[b.name], b.first_step, b.name)):
        overlapping = sorted((p for p in placed if p[1] <= b.last_step and b.first_step <= p[2]), key=lambda p: p[3])
        offset = 0
        for _, _, _, other_offset, other_size in overlapping:
            if offset + b.size_bytes <= other_offset:
                break
            offset = max(offset, other_offset + other_size)
        placed.append((b.name, b.first_step, b.last_step, offset, b.size_bytes))
    return {name: offset for name, _, _, offset, _ in placed}


def test_indexed_placement_equals_brute_force_on_random_graphs():
    import random

    rng = random.Random(7)
    for trial in range(40):
        n = rng.randint(1, 60)
        nodes, tensors = [], ["x"]
        for i in range(n):
            reads = rng.sample(tensors, k=min(len(tensors), rng.randint(1, 3)))
            nodes.append(Node(f"n{i}", "Add" if len(reads) > 1 else "Relu", reads, [f"t{i}"]))
            tensors.append(f"t{i}")
        outputs = [f"t{n - 1}"] + rng.sample(tensors[1:], k=min(2, n))
        g = _graph(nodes, ["x"], list(dict.fromkeys(outputs)))
        sizes = {name: rng.choice([16, 32, 48, 64, 128, 1000]) for name in tensors}
        plan = plan_arena(g, sizes.__getitem__, alignment=16)
        assert {b.name: b.offset for b in plan.buffers} == _brute_force(plan, sizes), trial
        # the timeline by its definition
        assert plan.live_bytes() == [
            sum(b.size_bytes for b in plan.buffers if b.first_step <= s <= b.last_step) for s in range(plan.steps)
        ]


def test_ten_thousand_layer_chain():
    """A chain of 10,000 equal layers needs two buffers at a time (input and output of the running layer):
    the plan ping-pongs between two offsets. Its time is in benchmarks/bench_estimate.py (scaling 1k -> 10k)."""
    n = 10_000
    nodes = [Node(f"n{i}", "Relu", [f"t{i - 1}" if i else "x"], [f"t{i}"]) for i in range(n)]
    g = _graph(nodes, ["x"], [f"t{n - 1}"])
    plan = plan_arena(g, lambda name: 100, alignment=16)
    assert plan.peak_ram_bytes == 2 * 112
    assert {b.offset for b in plan.buffers} == {0, 112}
    assert max(plan.live_bytes()) == 2 * 112 and len(plan.live_bytes()) == n


def test_live_bytes_matches_the_per_step_sum():
    """The one-pass timeline equals the definition (bytes of every buffer alive at the step), summed here
    step by step over random lifetimes, some reaching past the last step."""
    import random

    from simulator.estimate.arena import ArenaPlan, Buffer

    rng = random.Random(7)
    steps = 40
    buffers = []
    for k in range(60):
        first = rng.randrange(steps)
        buffers.append(Buffer(f"t{k}", rng.randrange(1, 5000), first, first + rng.randrange(0, 12), 0))
    plan = ArenaPlan(buffers, steps)
    expected = [sum(b.size_bytes for b in buffers if b.first_step <= s <= b.last_step) for s in range(steps)]
    assert plan.live_bytes() == expected


def test_placement_matches_the_plain_greedy_scan_on_zoo_models():
    """The vectorised overlap search places every buffer where the plain greedy scan (each placed buffer
    checked in turn, as TFLM's planner reads) would, on real graphs with branches and long-lived skips."""
    from simulator.estimate import estimate, prepare
    from simulator.hardware import load_hardware
    from simulator.importers import load_model

    hw = load_hardware("cortex-m7")
    for model in ("resnet-8", "mobilenet-v2", "squeezenet-1.1", "ds-cnn"):
        plan = estimate(prepare(load_model(model)), hw, precision="int8").arena
        order = sorted(plan.buffers, key=lambda b: (-b.size_bytes, b.first_step, b.name))
        placed = []
        for b in order:
            offset = 0
            alive = sorted((p for p in placed if p[1] <= b.last_step and b.first_step <= p[2]), key=lambda p: p[0])
            for start, _, _, size in alive:
                if offset + b.size_bytes <= start:
                    break
                offset = max(offset, start + size)
            placed.append((offset, b.first_step, b.last_step, b.size_bytes))
            assert offset == b.offset, (model, b.name)
