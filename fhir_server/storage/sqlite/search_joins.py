"""Tests that follow references or compartments: chains, ``_has`` and compartment membership.

As in search_sql.py, each gives a correlated condition on the outer ``resource`` row and, when
the inner test has candidates, candidates of its own built by walking from the inner test's
candidates along the references (so ``subject:Patient.name=smith`` starts from the few Patients
named Smith, not from every Observation). Targets and sources must be current resources.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fhir_server.search.model import ChainTest, CompartmentTest, HasTest
from fhir_server.storage.sqlite.sql_fragments import CompiledTest, Sql, all_of, in_list

if TYPE_CHECKING:  # the compiler calls back into this module
    from fhir_server.storage.sqlite.search_sql import SearchCompiler


def chain(
    compiler: SearchCompiler, test: ChainTest, alias: str, types: tuple[str, ...]
) -> CompiledTest:
    """``alias`` references (through ``param``) a current target satisfying the inner test."""
    ref, target = compiler.alias("x"), compiler.alias("t")
    allowed = test.target_types or test.param.targets
    pids = in_list(f"{ref}.pid", compiler.pids(types, test.param.code))
    inner = compiler.test(test.test, target, allowed)
    on_target = [Sql(f"{target}.deleted = 0")]
    if allowed:
        on_target.append(in_list(f"{target}.type", allowed))
    on_target.append(inner.condition)
    target_ok = all_of(on_target)
    link = f"{target}.type = {ref}.target_type AND {target}.id = {ref}.target_id"
    where = all_of([Sql(f"{ref}.rid = {alias}.rid"), pids, target_ok])
    condition = Sql(
        f"EXISTS (SELECT 1 FROM idx_reference {ref} INDEXED BY idx_reference_rid "
        f"JOIN resource {target} ON {link} "
        f"WHERE {where.text})",
        where.params,
    )
    if inner.candidates is None:
        return CompiledTest(condition, None)
    start = inner.candidates
    candidates = Sql(
        f"SELECT {ref}.rid AS rid FROM ({start.text}) {target}_in "
        f"CROSS JOIN resource {target} ON {target}.rid = {target}_in.rid "
        f"CROSS JOIN idx_reference {ref} INDEXED BY idx_reference_target "
        f"ON {link} AND {pids.text} WHERE {target_ok.text}",
        (*start.params, *pids.params, *target_ok.params),
    )
    return CompiledTest(condition, candidates)


def has(compiler: SearchCompiler, test: HasTest, alias: str) -> CompiledTest:
    """``alias`` is referenced, through ``param``, by a current source satisfying the test."""
    ref, source = compiler.alias("x"), compiler.alias("s")
    types = (test.source_type,)
    pids = in_list(f"{ref}.pid", compiler.pids(types, test.param.code))
    inner = compiler.test(test.test, source, types)
    source_ok = all_of(
        [
            Sql(f"{source}.type = ?", (test.source_type,)),
            Sql(f"{source}.deleted = 0"),
            inner.condition,
        ]
    )
    where = all_of(
        [
            pids,
            Sql(f"{ref}.target_id = {alias}.id AND {ref}.target_type = {alias}.type"),
            source_ok,
        ]
    )
    condition = Sql(
        f"EXISTS (SELECT 1 FROM idx_reference {ref} INDEXED BY idx_reference_target "
        f"JOIN resource {source} "
        f"ON {source}.rid = {ref}.rid WHERE {where.text})",
        where.params,
    )
    if inner.candidates is None:
        return CompiledTest(condition, None)
    start, target = inner.candidates, compiler.alias("t")
    candidates = Sql(
        f"SELECT {target}.rid AS rid FROM ({start.text}) {source}_in "
        f"CROSS JOIN resource {source} ON {source}.rid = {source}_in.rid "
        f"CROSS JOIN idx_reference {ref} INDEXED BY idx_reference_rid "
        f"ON {ref}.rid = {source}.rid AND {pids.text} "
        f"CROSS JOIN resource {target} ON {target}.type = {ref}.target_type "
        f"AND {target}.id = {ref}.target_id WHERE {source_ok.text}",
        (*start.params, *pids.params, *source_ok.params),
    )
    return CompiledTest(condition, candidates)


def compartment(compiler: SearchCompiler, test: CompartmentTest, alias: str) -> CompiledTest:
    """Membership of the compartment (``Patient/123/Observation``)."""
    key = (test.compartment_type, test.compartment_id)
    member = compiler.alias("m")
    condition = Sql(
        f"EXISTS (SELECT 1 FROM idx_compartment {member} INDEXED BY idx_compartment_rid "
        f"WHERE {member}.rid = {alias}.rid "
        f"AND {member}.comp_type = ? AND {member}.comp_id = ?)",
        key,
    )
    candidates = Sql("SELECT rid FROM idx_compartment WHERE comp_type = ? AND comp_id = ?", key)
    return CompiledTest(condition, candidates)
