"""components, pipeline step cache, schedules

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('components',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('version', sa.String(length=64), nullable=False),
    sa.Column('version_num', sa.Integer(), nullable=True),
    sa.Column('spec', sa.JSON(), nullable=False),
    sa.Column('archived', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name', 'version', name='uq_component_name_version')
    )
    with op.batch_alter_table('components', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_components_name'), ['name'], unique=False)

    op.create_table('pipeline_step_cache',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('reuse_key', sa.String(length=64), nullable=False),
    sa.Column('identity', sa.String(length=512), nullable=False),
    sa.Column('job_name', sa.String(length=255), nullable=False),
    sa.Column('fingerprint', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('pipeline_step_cache', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pipeline_step_cache_identity'), ['identity'], unique=False)
        batch_op.create_index(batch_op.f('ix_pipeline_step_cache_reuse_key'), ['reuse_key'], unique=False)

    op.create_table('schedules',
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('spec', sa.JSON(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('state', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )


def downgrade() -> None:
    op.drop_table('schedules')
    with op.batch_alter_table('pipeline_step_cache', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pipeline_step_cache_reuse_key'))
        batch_op.drop_index(batch_op.f('ix_pipeline_step_cache_identity'))
    op.drop_table('pipeline_step_cache')
    with op.batch_alter_table('components', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_components_name'))
    op.drop_table('components')
