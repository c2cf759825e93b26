"""Data: loaders for every source into :class:`spct.types.Example`, the built-in
verifiable dataset, reasoning-gym tasks, and curation into train/eval parquet with a manifest."""

from spct.data.curate import CurateConfig, Manifest, curate, read_curated
from spct.data.errors import DataError, Skipped
from spct.data.hh_rlhf import load_hh_rlhf
from spct.data.judgebench import load_judgebench
from spct.data.load import FORMATS, detect_format, load, load_builtin, load_reasoning_gym
from spct.data.ppe import load_ppe_correctness, load_ppe_preference
from spct.data.preference import load_preference, load_spct
from spct.data.reasoning_gym import generate_reasoning_gym
from spct.data.records import LoadResult
from spct.data.rewardbench import load_rewardbench, load_rewardbench2
from spct.data.rm_bench import load_rm_bench
from spct.data.rmb import load_rmb
from spct.data.synthetic import correct_answer, generate_verifiable

__all__ = [
    "FORMATS",
    "CurateConfig",
    "DataError",
    "LoadResult",
    "Manifest",
    "Skipped",
    "correct_answer",
    "curate",
    "detect_format",
    "generate_reasoning_gym",
    "generate_verifiable",
    "load",
    "load_builtin",
    "load_hh_rlhf",
    "load_judgebench",
    "load_ppe_correctness",
    "load_ppe_preference",
    "load_preference",
    "load_reasoning_gym",
    "load_rewardbench",
    "load_rewardbench2",
    "load_rm_bench",
    "load_rmb",
    "load_spct",
    "read_curated",
]
