"""The orchestration layer: runs the grid and reports it.

The runner (``runner``), the cluster launcher (``launcher``: one submitit job per run), the command line (``cli``),
the leaderboard (``leaderboard``), equal-budget tuning (``tuning``) and progress lines (``progress``). It imports
``methods`` and ``metrics``; nothing below imports it.
"""
