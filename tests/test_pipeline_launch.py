"""A single-node training task runs one rank per process under torchrun, with ZeRO across them.

The GPU pod of a pipeline task sees its 8 GPUs; ``train_stage`` must launch 8 ranks, not train on
GPU 0 alone. Here the same code path runs with ``procs=2`` on CPU (gloo): the task's own command
line under ``torchrun --standalone``, checked by what the ranks leave behind.
"""

import json
import os

import pytest

torch = pytest.importorskip("torch")

from spct.pipeline.launch import DIST_VARS, LaunchFailed, launch_command, launch_local  # noqa: E402
from spct.pipeline.stages import Tracking, train_stage  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def test_a_single_node_task_trains_as_two_ranks_with_the_optimizer_state_partitioned(tmp_path, mlflow_server, monkeypatch):
    import mlflow
    from safetensors.torch import load_file

    # What a local pipeline run leaves in the task's environment must not reach the ranks.
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("MASTER_PORT", "1")
    client = mlflow.MlflowClient(mlflow_server)
    parent = client.create_run(client.create_experiment(f"launch-{tmp_path.name}")).info.run_id
    out = tmp_path / "coldstart"
    summary = train_stage(
        "coldstart", "tiny",
        ["coldstart.steps=2", "coldstart.batch_size=4", "coldstart.micro_batch_size=2", "train.zero_stage=2",
         "train.checkpoint_every=2"],
        "tiny", out, Tracking(mlflow_server, parent), procs=2,
    )  # fmt: skip

    assert summary["procs_per_node"] == 2 and summary["world_size"] == 2 and summary["steps"] == 2
    assert "launching 2 ranks" in (out / "launch.log").read_text()
    # ZeRO-2 over the two ranks: each holds its own half of the fp32 master weights and Adam state.
    ckpt = out / "checkpoints" / "step-00000002" / "ds"
    halves = []
    for rank in (0, 1):
        state = torch.load(ckpt / f"zero_pp_rank_{rank}_mp_rank_00_optim_states.pt", map_location="cpu",
                           weights_only=False)["optimizer_state_dict"]
        assert state["partition_count"] == [2]
        halves.append(sum(t.numel() for t in state["single_partition_of_fp32_groups"]))
    trained = sum(t.numel() for t in load_file(out / "model" / "model.safetensors").values())
    assert halves[0] == halves[1] and trained <= sum(halves) < trained + 2 * 64  # alignment padding only
    # Rank 0's curves and summary reach the task's MLflow stage run.
    runs = client.search_runs([client.get_run(parent).info.experiment_id],
                              f"tags.mlflow.parentRunId = '{parent}'")
    assert len(runs) == 1
    stage = runs[0].data
    assert stage.metrics["final/world_size"] == 2 and stage.params["procs_per_node"] == "2"
    assert [m.step for m in client.get_metric_history(runs[0].info.run_id, "loss")] == [1, 2]
    assert json.loads((out / "stage.json").read_text())["summary"]["world_size"] == 2


def test_a_failing_rank_stops_the_task_with_its_last_lines(tmp_path):
    args = ["coldstart", "--config", "tiny", "--out", str(tmp_path / "x"), "--set", "coldstart.data=builtin:no-such-set"]
    with pytest.raises(LaunchFailed) as err:
        launch_local(args, 2, log=tmp_path / "launch.log")
    assert "2 ranks under torchrun exited" in str(err.value) and "no-such-set" in str(err.value)
    assert "no-such-set" in (tmp_path / "launch.log").read_text()


def test_the_launch_command_is_torchrun_standalone_around_this_environments_spct():
    cmd = launch_command(["grpo", "--config", "a100"], 8)
    assert cmd[1:6] == ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node=8", "--no-python"]
    assert os.path.basename(cmd[6]) == "spct" and cmd[7:] == ["grpo", "--config", "a100"]
    assert "RANK" in DIST_VARS and "WORLD_SIZE" in DIST_VARS and "MASTER_PORT" in DIST_VARS
    with pytest.raises(ValueError, match="procs must be >= 1"):
        launch_command(["grpo"], 0)
