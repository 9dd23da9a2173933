"""Labelled synthetic banks (``flowgraph generate``) and detection quality on them (``flowgraph evaluate``).

Modules, in import order (each imports only from those above it):

``constants``   the data year, amount limits, the rule defaults the labels are built for
``vocabulary``  names, cities and districts, industries, products: plain word lists
``world``       :class:`~flowgraph.synthetic.world.World` (parties, accounts, relations,
                loans, repayments, grades as parallel lists) and the ``Builder`` that adds
                to it consistently
``loans``       repayment plans, defaults, settlement and the quarterly manual grades
``background``  the background population and the ordinary loans
``cases/``      the labelled case types: ``kit`` (the ``Case`` a type returns and the
                helpers it builds with), one module per family (``flow_back``,
                ``other_rules``, ``negatives``), and ``registry`` — the one list of types
``traffic``     background transactions with a daily and weekly rhythm
``writer``      external ids and the contract CSV files
``labels``      ``labels.parquet``, each flow-back label checked with the engine's
                brute-force reference (:mod:`flowgraph.engine.flow_back_reference`)
``generate``    the public entry: ``generate(out_dir, scale=, seed=, progress=)``,
                ``SCALES``, ``Scale``
``evaluate``    ingest a generated bank, score it, compare alerts with its labels

Adding a case type
------------------
Write one function ``def my_case(kit: CaseKit) -> Case`` in the module of its family under
``cases/`` (see :mod:`flowgraph.synthetic.cases.kit` for the helpers: a fresh borrower, a
single-tranche loan with its repayment schedule, fresh intermediaries, increasing times,
chains), then add one line to ``CASE_TYPES`` in :mod:`flowgraph.synthetic.cases.registry`
with the label name (the ``typology`` column) and the rule kind that must fire (``None``
for a negative control). Nothing else lists case types: ``TYPOLOGIES``, the labels, the
counts ``generate`` returns and ``evaluate``'s per-typology table all follow the registry.
Case types share one random stream in registry order, and their parties and accounts
shift every id, so adding a type changes the generated files of every seed: expected, as
long as the tests of ``tests/synthetic`` (labels hold, data consistent) keep passing.

Consistency
-----------
A generated bank holds together the way a real one does (``tests/synthetic/
test_consistency.py`` checks every rule on banks of two seeds): ids, id numbers and keys
never collide; every reference resolves; nobody pays themselves; money moves through an
account only after it was opened, never through a dormant one; every event falls in the
data year; a loan's tranches add up to it and come before maturity; repayments come after
the first disbursement, before maturity, and never add up to more than is owed; every
loan has one manual grade per quarter end after its first disbursement, the grade the
default classification rule gives for its overdue days; a party lives in one city
(region, address and a company's name agree); loans carry their borrower's region and
industry; account kinds fit their owners; relations join parties of fitting kinds, once
per family pair, one spouse each, a parent 16+ years older, and start only once both are
born (18, where the relation needs an adult).

Background invariant
--------------------
Every background transaction is smaller than ``BACKGROUND_MAX`` (50 000.00 CNY) and every
disbursement is at least ``MIN_DISBURSEMENT`` (2 000 000.00 CNY), so
``BACKGROUND_MAX * 4 <= MIN_DISBURSEMENT * 0.1``: no background transfer can be a hop of a
path at the default rule parameters (window 30 days, max 5 hops, every hop amount at least
10 % of the disbursed amount, link depth 1, all relation types), whatever the topology of
the background graph. Only injected case transactions are that large, each case lives on
its own loan with a fresh borrower and fresh intermediary accounts (fresh parties with
unique phone numbers and addresses, no relations except the intended one), so cases do not
interact. Ordinary (non-case) loans have a single borrower each, and their first repayment
is more than 30 days after their last tranche. Case loans have a single tranche.

Relations are written in one direction only (e.g. ``(person, company, legal_rep)``,
``(parent, child, parent)``); consumers must treat them as undirected links.
``disbursement_id`` is always explicit: ``<loan_id>:<account_id>:<ts_ms>``.
"""
