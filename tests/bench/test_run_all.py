"""``make bench`` runs every benchmark script and none of the helpers they share."""

from pathlib import Path

from bench.run_all import bench_scripts, invocations


def test_every_script_runs_and_shared_helpers_do_not() -> None:
    names = [path.name for path in bench_scripts()]
    assert "storage.py" in names and "ablation.py" in names
    assert "run_all.py" not in names and not [name for name in names if name.startswith("_")]
    assert names == sorted(names)


def test_soft_targets_reads_the_run_that_ablation_kept_before_it(tmp_path) -> None:
    """``soft_targets.py`` needs ``--keep``; without the shared run ``make bench`` stopped there."""
    commands = invocations(tmp_path)
    scripts = [Path(command[1]).name for command in commands]
    keeps = {Path(c[1]).name: c[c.index("--keep") + 1] for c in commands if "--keep" in c}
    assert keeps == {"ablation.py": str(tmp_path), "soft_targets.py": str(tmp_path)}
    assert scripts.index("ablation.py") < scripts.index("soft_targets.py")
    assert all(len(command) == 2 for command in commands if Path(command[1]).name not in keeps)
