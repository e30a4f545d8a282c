"""``make bench`` runs every benchmark script and none of the helpers they share."""

from bench.run_all import bench_scripts


def test_every_script_runs_and_shared_helpers_do_not() -> None:
    names = [path.name for path in bench_scripts()]
    assert "storage.py" in names and "ablation.py" in names
    assert "run_all.py" not in names and not [name for name in names if name.startswith("_")]
    assert names == sorted(names)
