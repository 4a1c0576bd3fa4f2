"""What `callbridge serve` does once it has started: the objects start-up made (modules,
the app, models) leave the cyclic collector's sight, so a full collection during calls
does not stop the event loop for a few hundred milliseconds (measured 289 ms at the start
of 80 calls, bench/bridge_load.py --agent voicelive). Hosts that embed the server keep
their collector as it is."""

from __future__ import annotations

import gc

import pytest
import uvicorn

from callbridge.server import DrainingServer, EmbeddedServer


async def _app(scope: dict[str, object], receive: object, send: object) -> None:
    return None


@pytest.mark.parametrize(
    ("server_class", "frozen"), [(DrainingServer, True), (EmbeddedServer, False)]
)
async def test_a_started_service_freezes_what_start_up_made(
    server_class: type[DrainingServer], frozen: bool
) -> None:
    config = uvicorn.Config(_app, host="127.0.0.1", port=0, lifespan="off", log_config=None)
    config.load()
    server = server_class(config)
    server.lifespan = config.lifespan_class(config)  # as uvicorn's Server.serve sets it up
    gc.unfreeze()
    try:
        await server.startup()
        assert server.started
        assert (gc.get_freeze_count() > 1000) is frozen
    finally:
        await server.shutdown()
        gc.unfreeze()  # this test process goes on with its collector whole
