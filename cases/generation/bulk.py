"""Many rows of one table in one INSERT, for the generation workers' commits.

``QuerySet.bulk_create`` builds a model instance per row and runs every value through the
SQL compiler: most of a worker's storage time per image, which on a GPU comes by the
thousand a second (and, on SQLite, time spent holding its one write lock).
:func:`insert_rows` takes plain rows, prepares each value with its field as
``bulk_create`` does, and sends one statement per batch the database allows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, models


def insert_rows(
    model: type[models.Model], rows: Sequence[dict[str, Any]], *, key: str | tuple[str, ...] = ()
) -> dict[Any, int]:
    """INSERT ``rows`` into ``model``'s table: each row maps every concrete field but the
    primary key, by attname, to its value. No ``save()``, signals or field defaults.

    With ``key`` (a unique attname, or attnames that together are unique), returns each
    row's new primary key by its value of ``key`` (a tuple of values for several): read back
    by value, since neither PostgreSQL nor SQLite promises RETURNING rows in the order of
    VALUES. Call it inside a transaction.
    """
    connection = connections[DEFAULT_DB_ALIAS]  # the wrapper itself, not the per-thread proxy
    fields = [field for field in model._meta.concrete_fields if not field.primary_key]
    names = {field.attname for field in fields}
    for row in rows:
        if row.keys() != names:
            missing, unknown = sorted(names - row.keys()), sorted(row.keys() - names)
            raise ValueError(f"a {model.__name__} row lacks {missing} and has unknown {unknown}")
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    placeholders = f"({', '.join(['%s'] * len(fields))})"
    names_of_key = (key,) if isinstance(key, str) else key
    returning = ""
    if names_of_key:
        by_attname = {field.attname: field.column for field in fields}
        returned = [model._meta.pk.column, *(by_attname[name] for name in names_of_key)]
        returning = f" RETURNING {', '.join(quote(column) for column in returned)}"
    # A value object several rows share (a timepoint's w, on its image and on its SEG) is
    # prepared once: preparing a JSON value is encoding it, a third of a millisecond for
    # 512 floats. Keyed by id(), valid while ``rows`` holds the objects.
    prepared: dict[tuple[str, int], Any] = {}

    def prepare(field: models.Field, value: Any) -> Any:
        if not isinstance(value, (list, dict)):
            return field.get_db_prep_save(value, connection)
        if (field.attname, id(value)) not in prepared:
            prepared[field.attname, id(value)] = field.get_db_prep_save(value, connection)
        return prepared[field.attname, id(value)]

    ids: dict[Any, int] = {}
    batch = max(connection.ops.bulk_batch_size(fields, rows), 1)
    with connection.cursor() as cursor:
        for start in range(0, len(rows), batch):
            part = rows[start : start + batch]
            cursor.execute(
                f"INSERT INTO {quote(model._meta.db_table)} ({columns}) "
                f"VALUES {', '.join([placeholders] * len(part))}{returning}",
                [prepare(field, row[field.attname]) for row in part for field in fields],
            )
            if names_of_key:
                ids.update(
                    (tuple(values) if len(values) > 1 else values[0], pk)
                    for pk, *values in cursor.fetchall()
                )
    return ids
