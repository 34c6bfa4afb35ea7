"""initial schema

Revision ID: 0001
Revises: (none)
"""

import sqlalchemy as sa
from alembic import op

from conv3n.storage import tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "documents",
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("document", tables.JSONText(), nullable=False),
        sa.PrimaryKeyConstraint("hash", name=op.f("pk_documents")),
    )
    op.create_table(
        "executions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("workflow_id", sa.String(length=64), nullable=True),
        sa.Column("workflow_version", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("mode", sa.String(length=32), nullable=False),
        sa.Column("input", tables.JSONText(), nullable=True),
        sa.Column("output", tables.JSONText(), nullable=True),
        sa.Column("error", tables.JSONText(), nullable=True),
        sa.Column("response", tables.JSONText(), nullable=True),
        sa.Column("nodes", tables.JSONText(), nullable=True),
        sa.Column("document_hash", sa.String(length=64), nullable=True),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("parent_id", sa.String(length=64), nullable=True),
        sa.Column("started_at", tables.UTCDateTime(), nullable=True),
        sa.Column("finished_at", tables.UTCDateTime(), nullable=True),
        sa.Column("duration_ms", sa.Double(), nullable=True),
        sa.Column("wake_at", tables.UTCDateTime(), nullable=True),
        sa.Column("owner", sa.String(length=128), nullable=True),
        sa.Column("lease_until", tables.UTCDateTime(), nullable=True),
        sa.Column("created_at", tables.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_executions")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_executions_idempotency_key")),
    )
    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_executions_status_created", ["status", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_executions_workflow_created", ["workflow_id", "created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_executions_workflow_id"), ["workflow_id"], unique=False
        )

    op.create_table(
        "secrets",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("nonce", sa.String(length=32), nullable=False),
        sa.Column("ciphertext", sa.Text(), nullable=False),
        sa.Column("created_at", tables.UTCDateTime(), nullable=False),
        sa.Column("updated_at", tables.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_secrets")),
    )
    op.create_table(
        "trigger_state",
        sa.Column("workflow_id", sa.String(length=64), nullable=False),
        sa.Column("trigger_key", sa.String(length=255), nullable=False),
        sa.Column("next_fire_at", tables.UTCDateTime(), nullable=True),
        sa.Column("last_fire_at", tables.UTCDateTime(), nullable=True),
        sa.Column("fire_count", sa.BigInteger(), nullable=False),
        sa.Column("cursor", tables.JSONText(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        sa.Column("lease_until", tables.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("workflow_id", "trigger_key", name=op.f("pk_trigger_state")),
    )
    op.create_table(
        "webhook_inbox",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("path", sa.String(length=255), nullable=False),
        sa.Column("webhook_id", sa.String(length=255), nullable=True),
        sa.Column("request", tables.JSONText(), nullable=False),
        sa.Column("execution_id", sa.String(length=64), nullable=True),
        sa.Column("response", tables.JSONText(), nullable=True),
        sa.Column("received_at", tables.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_inbox")),
    )
    with op.batch_alter_table("webhook_inbox", schema=None) as batch_op:
        batch_op.create_index("ix_webhook_inbox_dedupe", ["path", "webhook_id"], unique=True)
        batch_op.create_index("ix_webhook_inbox_received", ["received_at"], unique=False)

    op.create_table(
        "workflows",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=True),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", tables.UTCDateTime(), nullable=False),
        sa.Column("updated_at", tables.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflows")),
    )
    op.create_table(
        "large_results",
        sa.Column("execution_id", sa.String(length=64), nullable=False),
        sa.Column("node_id", sa.String(length=128), nullable=False),
        sa.Column("data", tables.JSONText(), nullable=False),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["executions.id"],
            name=op.f("fk_large_results_execution_id_executions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("execution_id", "node_id", name=op.f("pk_large_results")),
    )
    op.create_table(
        "node_attempts",
        sa.Column("execution_id", sa.String(length=64), nullable=False),
        sa.Column("node_id", sa.String(length=128), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("error", tables.JSONText(), nullable=True),
        sa.Column("retry_in_s", sa.Double(), nullable=True),
        sa.Column("failed_at", tables.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["executions.id"],
            name=op.f("fk_node_attempts_execution_id_executions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "execution_id", "node_id", "attempt", name=op.f("pk_node_attempts")
        ),
    )
    op.create_table(
        "node_results",
        sa.Column("execution_id", sa.String(length=64), nullable=False),
        sa.Column("node_id", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("data", tables.JSONText(), nullable=True),
        sa.Column("data_bytes", sa.BigInteger(), nullable=False),
        sa.Column("data_external", sa.Boolean(), nullable=False),
        sa.Column("error", tables.JSONText(), nullable=True),
        sa.Column("ports", tables.JSONText(), nullable=True),
        sa.Column("effects", tables.JSONText(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("started_at", tables.UTCDateTime(), nullable=True),
        sa.Column("finished_at", tables.UTCDateTime(), nullable=True),
        sa.Column("duration_ms", sa.Double(), nullable=True),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["executions.id"],
            name=op.f("fk_node_results_execution_id_executions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("execution_id", "node_id", name=op.f("pk_node_results")),
    )
    op.create_table(
        "workflow_versions",
        sa.Column("workflow_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", tables.JSONText(), nullable=False),
        sa.Column("created_at", tables.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workflow_id"],
            ["workflows.id"],
            name=op.f("fk_workflow_versions_workflow_id_workflows"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workflow_id", "version", name=op.f("pk_workflow_versions")),
    )


def downgrade() -> None:
    op.drop_table("workflow_versions")
    op.drop_table("node_results")
    op.drop_table("node_attempts")
    op.drop_table("large_results")
    op.drop_table("workflows")
    with op.batch_alter_table("webhook_inbox", schema=None) as batch_op:
        batch_op.drop_index("ix_webhook_inbox_received")
        batch_op.drop_index("ix_webhook_inbox_dedupe")

    op.drop_table("webhook_inbox")
    op.drop_table("trigger_state")
    op.drop_table("secrets")
    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_executions_workflow_id"))
        batch_op.drop_index("ix_executions_workflow_created")
        batch_op.drop_index("ix_executions_status_created")

    op.drop_table("executions")
    op.drop_table("documents")
