"""The benchmarks' own scoring code, to pin spct's scorers against (tests/test_eval_official.py).

Each module says where its code comes from: the repository, the file, the function and lines,
and the commit it was read at (the newest stored snapshot). Code is vendored verbatim only where
the licence allows it (allenai/reward-bench: Apache-2.0, its LICENSE beside it); the others
(THU-KEG/RM-Bench, Zhou-Zoey/RMB-Reward-Model-Benchmark, ScalerLab/JudgeBench) carry no licence
file in their repositories, so they are transcribed: the same computation, written here, with a
line-by-line reference to the original.

Nothing here imports spct: the tests convert spct's ``Outcome``s to each official function's
input format and compare the numbers.
"""
