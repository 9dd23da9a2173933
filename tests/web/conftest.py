from __future__ import annotations

import pytest

from flowgraph.security import access
from tests.helpers import copy_store

PASSWORDS = {"root": "root-password-1", "ana": "ana-password-1", "al": "al-password-12",
             "rita": "rita-password-1", "reg": "reg-password-1", "aud": "aud-password-1"}  # fmt: skip
ROLES = {"root": "admin", "ana": "analyst", "al": "analyst", "rita": "risk_manager", "reg": "regulator", "aud": "auditor"}


@pytest.fixture(scope="module")
def web_store(scored_sample, tmp_path_factory):
    """A copy of the scored sample with users and workbench passwords."""
    from flowgraph.web.auth import set_password

    store = copy_store(scored_sample, tmp_path_factory.mktemp("web") / "store")
    for name, role in ROLES.items():
        access.add_user(store, name, role, "test")
        set_password(store, name, PASSWORDS[name], "test")
    return store


@pytest.fixture(scope="module")
def flow_back_alert(web_store):
    """The flow-back alert whose disbursement has the largest forward flow."""
    import polars as pl

    from flowgraph.rules.alerts import read_alerts

    df = read_alerts(web_store).filter(pl.col("kind") == "flow_back")
    return df.sort("path_count", "alert_id", descending=[True, False])["alert_id"][0]
