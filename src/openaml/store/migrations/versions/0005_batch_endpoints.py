"""batch endpoints and deployments

Revision ID: 0005_batch_endpoints
Revises: 0004_users_secrets
"""
import sqlalchemy as sa
from alembic import op

revision = '0005_batch_endpoints'
down_revision = '0004_users_secrets'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('batch_endpoints',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('provisioning_state', sa.String(length=32), nullable=False),
    sa.Column('spec', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('batch_deployments',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('endpoint_name', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('provisioning_state', sa.String(length=32), nullable=False),
    sa.Column('spec', sa.JSON(), nullable=False),
    sa.Column('runtime', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('endpoint_name', 'name', name='uq_batch_deployment_endpoint_name')
    )
    with op.batch_alter_table('batch_deployments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_batch_deployments_endpoint_name'), ['endpoint_name'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('batch_deployments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_batch_deployments_endpoint_name'))
    op.drop_table('batch_deployments')
    op.drop_table('batch_endpoints')
