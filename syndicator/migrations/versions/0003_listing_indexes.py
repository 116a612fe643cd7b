"""indexes for the CLI's newest-first listings by state and by target

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_deliveries_state_id", "deliveries", ["state", "id"], unique=False)
    op.create_index("ix_publish_log_target_id", "publish_log", ["target", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_publish_log_target_id", table_name="publish_log")
    op.drop_index("ix_deliveries_state_id", table_name="deliveries")
