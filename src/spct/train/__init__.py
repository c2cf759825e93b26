"""SPCT training: cold start (a bootstrap, not the paper's), RFT, rule-based GRPO and the meta RM.

Import the stage modules directly (``spct.train.grpo``); this package stays light
so :mod:`spct.config` can import :mod:`spct.train.config` without torch.
"""
