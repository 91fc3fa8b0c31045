"""The algorithms: concepts and their regions, formulas, exact AUROC from rank sums, INVERT's search,
Mann-Whitney statistics, result tables. Imports only invert_fast.ops (and files); never io, cases or apps.

Modules: validate (input checks), bits (packing), concepts (ConceptSet), regions, formula (Formula),
auroc, params (SearchParams), search (explain), stats (p-values), scoring (score), results
(Explanation(s), the labels table's schema).
"""
