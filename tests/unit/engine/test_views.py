"""`NodeViews`: `$node` made from node records on first read."""

from datetime import UTC, datetime

from conv3n import expr
from conv3n.engine.views import NodeViews
from conv3n.model import ErrorInfo, NodeRecord, NodeStatus

AT = datetime(2030, 1, 1, tzinfo=UTC)


def test_a_view_holds_what_the_record_says():
    views = NodeViews()
    error = ErrorInfo(type="block_error", message="no", node="a")
    views.set(
        "a",
        NodeRecord(
            status=NodeStatus.ERROR,
            error=error,
            attempts=2,
            started_at=AT,
            finished_at=AT,
            duration_ms=1.5,
            ports=[],
        ),
    )
    assert views["a"] == {
        "data": None,
        "status": "error",
        "error": error.model_dump(),
        "started_at": AT,
        "finished_at": AT,
        "duration_ms": 1.5,
        "attempts": 2,
    }
    assert views["a"] is views["a"]  # made once


def test_a_node_finished_again_shows_its_new_record():
    views = NodeViews()
    views.set("a", NodeRecord(status=NodeStatus.RUNNING))
    assert views["a"]["status"] == "running"
    views.set("a", NodeRecord(status=NodeStatus.SUCCESS, data={"x": 1}))
    assert views["a"]["data"] == {"x": 1}
    assert views["a"]["status"] == "success"


def test_views_are_a_mapping_in_finishing_order():
    views = NodeViews()
    for node_id in ("b", "a"):
        views.set(node_id, NodeRecord(status=NodeStatus.SKIPPED))
    assert list(views) == ["b", "a"]
    assert len(views) == 2
    assert "a" in views
    assert "c" not in views
    assert views.get("c") is None


def test_expressions_read_views_like_objects():
    views = NodeViews()
    views.set("a", NodeRecord(status=NodeStatus.SUCCESS, data={"x": 41}))
    scope = expr.Scope(node=views)
    render = expr.compile_config("{{ [$node.a.data.x + 1, $node.missing, keys($node)] }}").render
    assert render(scope) == [42, None, ["a"]]
