"""Verbatim excerpts of allenai/reward-bench (Apache-2.0, see LICENSE in this folder).

Source: https://github.com/allenai/reward-bench at commit 05a9005efb607249822c193590c8ecab87c77052
(2026-01-31, the newest stored snapshot). Each module names the file and lines it copies.
Modifications (Apache-2.0 s.4(b)): functions that are nested inside ``main()`` upstream are lifted
to module level with their bodies unchanged apart from indentation and, where the closure read
local variables, those variables made parameters; code fragments of ``main()`` are wrapped in a
named function. Every such change is marked ``# spct:`` where it happens.
"""
