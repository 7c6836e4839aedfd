"""ferroq's tables: :mod:`~ferroq_core.tables.base` (the shared metadata and the migration
step type), then one module per feature with its tables and its step. The order of the steps
is :data:`ferroq_core.schema.MIGRATIONS`."""
