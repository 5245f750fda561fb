"""Studies: each spec (``<name>.yaml``, package data) and, beside it, the study's own report module (``<name>.py``).

``unlearnbench study --spec <name>`` runs a spec through the generic
:mod:`unlearnbench.orchestration.study`; a spec's ``report: <name>`` names the module here whose
``write_report(study, table)`` adds what only that study has (its pre-registered decision rule, its figures).
Report modules sit above the orchestration layer: the study runner loads them by name, never by import.
"""
