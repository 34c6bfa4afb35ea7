"""drop ix_executions_workflow_id: ix_executions_workflow_created starts with the same column

Every lookup by workflow id (listing, retention per workflow) is served by the composite
index; the single-column one only cost a B-tree insert per stored execution (about 6 % of
SQLite's persisted throughput, bench/storage.py).

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_executions_workflow_id"))


def downgrade() -> None:
    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_executions_workflow_id"), ["workflow_id"], unique=False
        )
