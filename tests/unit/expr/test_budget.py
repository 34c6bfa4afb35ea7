"""conv3n.expr.budget: steps, clock and size of one evaluation, under a test clock."""

import pytest

from conv3n import expr
from conv3n.expr import budget, limits


class FakeClock:
    """Stands in for the monotonic clock of conv3n.expr.budget."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(budget, "monotonic", fake)
    return fake


def test_a_fresh_budget_holds_the_limits(clock):
    fresh = budget.Budget()
    assert fresh.steps == limits.MAX_STEPS
    assert fresh.space == limits.MAX_BUILT
    assert fresh.deadline == clock.now + limits.MAX_SECONDS


def test_iterate_yields_every_item_and_counts_one_step_each(clock):
    spent = budget.Budget()
    assert list(spent.iterate({"a": 1, "b": 2})) == ["a", "b"]
    assert spent.steps == limits.MAX_STEPS - 2


def test_iterate_refuses_what_cannot_be_iterated(clock):
    with pytest.raises(expr.EvalError, match="cannot iterate over a null"):
        list(budget.Budget().iterate(None))


def test_running_out_of_steps_is_an_error(clock):
    spent = budget.Budget()
    spent.steps = 3
    with pytest.raises(expr.EvalError, match="more than 2,000,000 iteration steps"):
        list(spent.iterate(range(10)))


def test_the_clock_is_read_every_sixteen_steps(clock):
    spent = budget.Budget()
    clock.now += limits.MAX_SECONDS + 1
    items = spent.iterate(range(100))
    taken: list[int] = []
    with pytest.raises(expr.EvalError, match=r"evaluation took longer than 2\.0 s"):
        taken.extend(items)
    assert 1 <= len(taken) <= 16


def test_tick_runs_out_of_time_like_iteration(clock):
    spent = budget.Budget()
    clock.now += limits.MAX_SECONDS + 1

    def sixteen_ticks() -> None:
        for _ in range(16):
            spent.tick()

    with pytest.raises(expr.EvalError, match="took longer"):
        sixteen_ticks()


def test_a_call_result_reads_the_clock_at_once(clock):
    spent = budget.Budget()
    assert spent.made(1) == 1
    clock.now += limits.MAX_SECONDS + 0.001
    with pytest.raises(expr.EvalError, match="took longer"):
        spent.made(1)


def test_a_slow_call_in_an_expression_is_stopped_after_it_returns(clock, monkeypatch):
    def slow(value):
        clock.now += 1.5
        return value

    monkeypatch.setitem(expr.FUNCTIONS, "abs", slow)
    compiled = expr.compile_expression("[abs(1), abs(2)]")
    with pytest.raises(expr.EvalError, match=r"took longer than 2\.0 s"):
        expr.evaluate(compiled, expr.Scope())


def test_keep_charges_an_item_plus_the_full_size(clock):
    spent = budget.Budget()
    shared = "x" * 100
    spent.keep([shared, shared])
    assert spent.space == limits.MAX_BUILT - (16 + 2 * 16 + 200)


def test_made_charges_two_levels_and_checks_lengths(clock):
    spent = budget.Budget()
    spent.made([["ab", "cd"], "efg"])
    assert spent.space == limits.MAX_BUILT - (2 * 16 + 2 * 16 + 3)
    with pytest.raises(expr.EvalError, match="list longer than 1,000,000 items"):
        spent.made([0] * (limits.MAX_ITEMS + 1))


def test_running_out_of_space_is_an_error(clock):
    spent = budget.Budget()
    spent.charge(limits.MAX_BUILT)
    with pytest.raises(expr.EvalError, match="values built are too large"):
        spent.charge(1)


def test_key_counts_a_step_and_keeps_the_value(clock):
    spent = budget.Budget()
    assert spent.key("ab") == "ab"
    assert spent.steps == limits.MAX_STEPS - 1
    assert spent.space == limits.MAX_BUILT - 18
