"""online endpoints and deployments

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('online_endpoints',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('provisioning_state', sa.String(length=32), nullable=False),
    sa.Column('spec', sa.JSON(), nullable=False),
    sa.Column('auth', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('online_deployments',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('endpoint_name', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('provisioning_state', sa.String(length=32), nullable=False),
    sa.Column('spec', sa.JSON(), nullable=False),
    sa.Column('runtime', sa.JSON(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('endpoint_name', 'name', name='uq_deployment_endpoint_name')
    )
    with op.batch_alter_table('online_deployments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_online_deployments_endpoint_name'), ['endpoint_name'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('online_deployments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_online_deployments_endpoint_name'))
    op.drop_table('online_deployments')
    op.drop_table('online_endpoints')
