"""Which Ray a command runs on: the cluster it is told to join, one already running on this
machine, or a new local one. Never a second cluster beside a running one: it would only compete
with it for the cores, and Ray refuses sizing arguments for a cluster it would join anyway."""

from __future__ import annotations

import os


def connect(address: str | None = None, *, num_cpus: int | None = None) -> str | None:
    """Join the cluster at ``address``, else at ``RAY_ADDRESS``, else one already running on this
    machine (a head started with ``ray start``, or this is the head node after ``ray attach``:
    :func:`running_head`); only when there is none, start a local one with ``num_cpus`` logical
    CPUs. The dashboard stays on (Train V2 needs it to release stopped trials' placement groups)
    with Ray's token auth. Returns the dashboard's address, or None when Ray was already
    initialised in this process."""
    import ray

    if ray.is_initialized():
        return None
    joining = address or os.environ.get("RAY_ADDRESS") or running_head()
    if joining:
        return ray.init(address=joining).dashboard_url
    context = ray.init(
        address="local",  # a stale record of a stopped head must not turn this into a join
        num_cpus=num_cpus,
        include_dashboard=True,
        log_to_driver=False,
    )
    return context.dashboard_url


def running_head() -> str | None:
    """The address of a head started with ``ray start`` on this machine, if it still runs. Ray
    records the last one started in its temp dir (``$RAY_TMPDIR/ray``, ``/tmp/ray`` by default)
    and keeps the record after the head is gone, so the record only counts while a GCS process
    serves that address."""
    from ray._private.services import find_bootstrap_address, find_gcs_addresses

    recorded = find_bootstrap_address(None)
    return recorded if recorded and recorded in find_gcs_addresses() else None


def dashboard_hint(url: str | None) -> str:
    where = f"http://{url}" if url else "the cluster's dashboard"
    token = os.environ.get("RAY_AUTH_TOKEN_PATH", "~/.ray/auth_token")
    if os.environ.get("RAY_AUTH_TOKEN"):
        token = "$RAY_AUTH_TOKEN"
    return (
        f"Ray dashboard: {where} (token auth is on: the token is in {token}); "
        "trial gauges are the specdistill_* series in its Metrics view"
    )
